"""Reading the JSON metadata files of a dataset, turning failures into :class:`Problem` s."""
from __future__ import annotations

import json
from pathlib import Path

from refvps.errors import Problem


def read_json_object(path: Path, problems: list[Problem]) -> dict | None:
    """The JSON object in ``path``; None (and a problem appended) when absent or malformed."""
    try:
        with open(path, encoding="utf-8") as handle:
            data = json.load(handle)
    except FileNotFoundError:
        problems.append(Problem(str(path), "file not found"))
        return None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        problems.append(Problem(str(path), f"malformed JSON ({exc})"))
        return None
    if not isinstance(data, dict):
        problems.append(Problem(str(path), "expected a JSON object at the top"))
        return None
    return data


def read_videos(path: Path, problems: list[Problem]) -> dict:
    """The ``videos`` object of a ``meta_expressions.json`` (empty, with a problem, if unusable)."""
    data = read_json_object(path, problems)
    if data is None:
        return {}
    videos = data.get("videos")
    if not isinstance(videos, dict):
        problems.append(Problem(str(path), "missing the 'videos' object"))
        return {}
    return videos


def video_record_problems(where: str, record: object) -> list[Problem]:
    """Problems of one ``meta_expressions.json`` video record: frame names and expression texts."""
    if not isinstance(record, dict):
        return [Problem(where, "video record is not an object")]
    problems = []
    frames = record.get("frames")
    if not isinstance(frames, list) or not frames or not all(isinstance(f, str) for f in frames):
        problems.append(Problem(where, "'frames' must be a non-empty list of frame names"))
    elif len(set(frames)) != len(frames):
        problems.append(Problem(where, "duplicate names in 'frames'"))
    expressions = record.get("expressions")
    if not isinstance(expressions, dict) or not expressions:
        problems.append(Problem(where, "'expressions' must be a non-empty object"))
        return problems
    for exp_id, exp in expressions.items():
        if not isinstance(exp, dict) or not isinstance(exp.get("exp"), str) \
                or not exp["exp"].strip():
            problems.append(Problem(where, f"expression {exp_id!r} has no text ('exp')"))
    return problems
