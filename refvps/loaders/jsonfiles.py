"""Reading a dataset's JSON and text metadata: every value typed and checked, failures as Problems.

Each problem names the file and the JSON path of the value, e.g.
``.../meta_expressions.json: videos.clip3.anno_frames``, and says what was expected and what
was found. Checks are typed (``1.7``, ``NaN``, ``true`` and ``"1"`` are not integers), catch
duplicates, and never raise: a benchmark's ``validate`` collects them all.

Hand-written rather than through ``jsonschema``: on a MeViS-sized ``meta_expressions.json``
(23k expressions) ``jsonschema`` took about 3 s, and its messages quote whole frame lists.
"""
from __future__ import annotations

import json
import os
from collections import Counter
from pathlib import Path
from typing import Any, Iterable

from refvps.errors import Problem
from refvps.inputs import file_problem

MAX_SHOWN = 60  # characters of a bad value quoted in a message


def show(value: Any) -> str:
    """A short JSON rendering of ``value`` for a message."""
    try:
        text = json.dumps(value, ensure_ascii=False)
    except (TypeError, ValueError):
        text = repr(value)
    return text if len(text) <= MAX_SHOWN else text[:MAX_SHOWN - 3] + "..."


def is_int(value: Any) -> bool:
    """A JSON integer (not a bool, not a float such as 1.7 or NaN)."""
    return isinstance(value, int) and not isinstance(value, bool)


def duplicates(values: Iterable) -> list:
    """Values occurring more than once, in first-occurrence order."""
    counts = Counter(values)
    return [v for v in dict.fromkeys(values) if counts[v] > 1]


class JsonChecker:
    """Typed reads of one file's values; each failure is appended to ``problems`` as a Problem
    at ``<file>: <json path>`` and the read returns None."""

    def __init__(self, path: str | Path, problems: list[Problem]):
        self.path = str(path)
        self.problems = problems

    def where(self, keys: tuple) -> str:
        return f"{self.path}: {'.'.join(str(k) for k in keys)}" if keys else self.path

    def fail(self, keys: tuple, what: str) -> None:
        self.problems.append(Problem(self.where(keys), what))

    def object(self, value: Any, keys: tuple, *, non_empty: bool = False) -> dict | None:
        if not isinstance(value, dict):
            return self.fail(keys, f"must be an object, got {show(value)}")
        if non_empty and not value:
            return self.fail(keys, "must be a non-empty object, got {}")
        return value

    def strings(self, value: Any, keys: tuple, *, what: str = "names",
                non_empty: bool = True, unique: bool = True) -> list[str] | None:
        """A list of non-empty strings (``what`` names them in messages)."""
        kind = f"a {'non-empty ' if non_empty else ''}list of {what}"
        if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
            return self.fail(keys, f"must be {kind}, got {show(value)}")
        if non_empty and not value:
            return self.fail(keys, f"must be {kind}, got []")
        if unique and (dup := duplicates(value)):
            return self.fail(keys, f"duplicate {what}: {', '.join(map(show, dup[:5]))}")
        return value

    def ints(self, value: Any, keys: tuple, *, what: str = "integers", non_empty: bool = False,
             unique: bool = False, minimum: int | None = None,
             maximum: int | None = None) -> list[int] | None:
        kind = f"a {'non-empty ' if non_empty else ''}list of {what}"
        if not isinstance(value, list):
            return self.fail(keys, f"must be {kind}, got {show(value)}")
        bad = [v for v in value if not is_int(v) or (minimum is not None and v < minimum)
               or (maximum is not None and v > maximum)]
        if bad:
            limits = "" if minimum is None else f" in {minimum}..{maximum}" if maximum else \
                f" >= {minimum}"
            return self.fail(keys, f"must be {kind}{limits}, got {show(value)} "
                                   f"({show(bad[0])} is not)")
        if non_empty and not value:
            return self.fail(keys, f"must be {kind}, got []")
        if unique and (dup := duplicates(value)):
            return self.fail(keys, f"duplicate {what}: {', '.join(map(show, dup[:5]))}")
        return value

    def integer(self, value: Any, keys: tuple, *, minimum: int | None = None) -> int | None:
        if not is_int(value) or (minimum is not None and value < minimum):
            kind = "an integer" if minimum is None else f"an integer >= {minimum}"
            return self.fail(keys, f"must be {kind}, got {show(value)}")
        return value

    def text(self, value: Any, keys: tuple) -> str | None:
        if not isinstance(value, str) or not value.strip():
            return self.fail(keys, f"must be a non-empty text, got {show(value)}")
        return value


def read_json(path: Path, problems: list[Problem], *, required: bool = True) -> Any:
    """The JSON value in ``path`` (None, with a problem appended, when unusable)."""
    reason = file_problem(path)
    if reason is not None:
        if reason != "file not found" or required:
            problems.append(Problem(str(path), reason))
        return None
    try:
        with open(path, encoding="utf-8") as handle:
            return json.load(handle)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        problems.append(Problem(str(path), f"malformed JSON ({exc})"))
    except RecursionError:
        problems.append(Problem(str(path), "malformed JSON (nested too deeply)"))
    except OSError as exc:
        problems.append(Problem(str(path), f"cannot be read ({exc.strerror or exc})"))
    return None


def read_json_object(path: Path, problems: list[Problem], *, required: bool = True) -> dict | None:
    """The JSON object in ``path``; None (and a problem appended) when absent or malformed."""
    data = read_json(path, problems, required=required)
    if data is None:
        return None
    if not isinstance(data, dict):
        problems.append(Problem(str(path), f"expected a JSON object at the top, got "
                                           f"{type(data).__name__ if not isinstance(data, list) else 'a list'}"))
        return None
    return data


def read_videos(path: Path, problems: list[Problem]) -> dict:
    """The ``videos`` object of a ``meta_expressions.json`` (empty, with a problem, if unusable)."""
    data = read_json_object(path, problems)
    if data is None:
        return {}
    videos = data.get("videos")
    if not isinstance(videos, dict):
        problems.append(Problem(f"{path}: videos", "missing the 'videos' object"
                                if videos is None else f"must be an object, got {show(videos)}"))
        return {}
    return videos


def read_name_list(path: Path, problems: list[Problem], what: str = "name") -> list[str] | None:
    """The names of a split list (one per line, stripped, blank lines skipped, order kept);
    a name listed twice is a problem naming its lines. None when the file is unusable."""
    reason = file_problem(path)
    if reason is not None:
        problems.append(Problem(str(path), reason))
        return None
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        problems.append(Problem(str(path), f"not UTF-8 text ({exc})"))
        return None
    except OSError as exc:
        problems.append(Problem(str(path), f"cannot be read ({exc.strerror or exc})"))
        return None
    lines: dict[str, list[int]] = {}
    for number, line in enumerate(text.splitlines(), 1):
        if line.strip():
            lines.setdefault(line.strip(), []).append(number)
    for name, numbers in lines.items():
        if len(numbers) > 1:
            problems.append(Problem(f"{path}:{numbers[1]}", f"{what} {name!r} is listed "
                                    f"{len(numbers)} times (lines {', '.join(map(str, numbers))}); "
                                    "it would be scored more than once"))
    return list(lines)


def read_split_list(path: Path, problems: list[Problem], what: str,
                    not_found: str = "split list not found") -> list[str] | None:
    """A split list that must exist and name at least one ``what`` (problems appended);
    None when it cannot be read at all."""
    if not os.path.lexists(path):
        problems.append(Problem(str(path), not_found))
        return None
    names = read_name_list(path, problems, what)
    if names is not None and not names:
        problems.append(Problem(str(path), f"the split list names no {what}"))
    return names


def check_video_record(check: JsonChecker, video: str, record: Any) -> bool:
    """Check one ``meta_expressions.json`` video record (frame names, expression texts);
    True when it has the structure tasks are built from (a blank text is reported, but does
    not stop the checks that walk the record)."""
    keys = ("videos", video)
    if check.object(record, keys) is None:
        return False
    frames = check.strings(record.get("frames"), (*keys, "frames"), what="frame names")
    expressions = check.object(record.get("expressions"), (*keys, "expressions"), non_empty=True)
    usable = frames is not None and expressions is not None
    for exp_id, exp in (expressions or {}).items():
        exp_keys = (*keys, "expressions", exp_id)
        if check.object(exp, exp_keys) is None:
            usable = False
        elif check.text(exp.get("exp"), (*exp_keys, "exp")) is None:
            usable = usable and isinstance(exp.get("exp"), str)
    return usable


def well_formed(record: Any) -> bool:
    """Whether a video record passes :func:`check_video_record` (without reporting)."""
    return check_video_record(JsonChecker("", []), "", record)
