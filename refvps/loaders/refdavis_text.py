"""Ref-DAVIS17 referring expressions: the Khoreva et al. text files and their converted JSON.

Raw form: four text files (annotator 1 / 2, first-frame / full-video expressions), one line per
(video, object): ``<video> <obj_id> "<expression>"``. They are parsed exactly as ReferFormer's
``tools/data/convert_davis_to_ytvos.py`` does: annotator 1 files are UTF-8, annotator 2 files
latin-1; the line is stripped, split on whitespace, the expression is the rest joined by single
spaces minus its first and last character (the quotes); the video-name typos in
:data:`~refvps.formats.REFDAVIS_NAME_FIXES` are fixed; each video's entries are stably sorted
by the obj_id *string* (so ``"10" < "2"``).

Converted form (``meta_expressions/<split>/meta_expressions.json``): per video the four files'
lists are zipped object by object (truncating to the shortest list, as the converter does) into
expression ids ``4 * i + k`` where i is the object's position and k the run (anno_k).
Inference scripts give run k's expression ``4 * i + k`` to the model and write its mask as
proposal ``i + 1``, so that is the proposal expected for the object (the Hungarian matching of
the protocol may pick another one).
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from refvps.errors import Problem
from refvps.formats import REFDAVIS_NAME_FIXES, REFDAVIS_RUNS


@dataclass(frozen=True)
class RunExpression:
    """The expression run ``run`` used for one object, and the proposal id it was written to."""

    text: str
    expected_proposal: int


def read_expression_file(path: Path, encoding: str) -> tuple[dict[str, list[dict]], list[Problem]]:
    """``{video: [{"exp": text, "obj_id": id}, ...]}`` of one text file (converter semantics)."""
    videos: dict[str, list[dict]] = {}
    try:
        with open(path, encoding=encoding) as handle:  # universal newlines, like readlines()
            lines = handle.readlines()
    except FileNotFoundError:
        return {}, [Problem(str(path), "file not found")]
    except UnicodeDecodeError as exc:
        return {}, [Problem(str(path), f"not valid {encoding} text ({exc})")]
    problems = []
    for number, line in enumerate(lines, 1):
        tokens = line.strip().split()
        if not tokens:
            continue  # the official converter crashes on blank lines; they carry nothing
        if len(tokens) < 2:
            problems.append(Problem(f"{path}:{number}", "expected '<video> <obj_id> \"<text>\"'"))
            continue
        video = REFDAVIS_NAME_FIXES.get(tokens[0], tokens[0])
        videos.setdefault(video, []).append({"exp": " ".join(tokens[2:])[1:-1],
                                             "obj_id": tokens[1]})
    for video, entries in videos.items():
        videos[video] = sorted(entries, key=lambda entry: entry["obj_id"])
    return videos, problems


def read_text_annotations(text_dir: Path) -> tuple[list[dict[str, list[dict]]], list[Problem]]:
    """The four runs' parsed files, in run order anno_0..anno_3."""
    runs, problems = [], []
    for name, encoding, _annotator, _kind in REFDAVIS_RUNS:
        videos, found = read_expression_file(text_dir / name, encoding)
        runs.append(videos)
        problems += found
    return runs, problems


def convert_expressions(runs: list[dict[str, list[dict]]], videos: list[str],
                        frames: dict[str, list[str]] | None = None) -> dict:
    """The converted ``meta_expressions.json`` content for ``videos`` (converter semantics)."""
    out = {}
    for video in videos:
        expressions = {}
        for group in zip(*(run.get(video, []) for run in runs)):
            for entry in group:
                expressions[str(len(expressions))] = dict(entry)
        out[video] = {"expressions": expressions, "frames": list((frames or {}).get(video, []))}
    return {"videos": out}


def read_converted(path: Path) -> tuple[dict, list[Problem]]:
    """The ``videos`` object of a converted ``meta_expressions.json``."""
    try:
        with open(path, encoding="utf-8") as handle:
            data = json.load(handle)
    except FileNotFoundError:
        return {}, [Problem(str(path), "file not found")]
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        return {}, [Problem(str(path), f"malformed JSON ({exc})")]
    videos = data.get("videos") if isinstance(data, dict) else None
    if not isinstance(videos, dict):
        return {}, [Problem(str(path), "missing the 'videos' object")]
    return videos, []


def run_expressions(videos: dict) -> dict[tuple[str, int, int], RunExpression]:
    """``(video, run, obj_id) -> RunExpression`` from converted ``videos`` (JSON key order)."""
    table = {}
    n_runs = len(REFDAVIS_RUNS)
    for video, record in videos.items():
        expressions = record.get("expressions", {}) if isinstance(record, dict) else {}
        for position, exp in enumerate(expressions.values()):
            if not isinstance(exp, dict):
                continue
            try:
                obj_id = int(exp.get("obj_id"))
            except (TypeError, ValueError):
                continue
            run, index = position % n_runs, position // n_runs
            table.setdefault((video, run, obj_id), RunExpression(str(exp.get("exp", "")), index + 1))
    return table
