"""Pick which of a benchmark's prediction layouts a predictions store uses.

Some benchmarks accept more than one layout (REM's folders and the standard
``<video>/<query_id>/<frame>.png``), possibly inside one wrapper folder such as ``burst_valtest/``.
The layout is chosen by how many of a sample of the required files each candidate finds.
"""
from __future__ import annotations

from typing import Callable, Sequence

SAMPLE_SIZE = 400


def spread_sample(items: Sequence, size: int = SAMPLE_SIZE) -> list:
    """Up to ``size`` items spread evenly over ``items`` (not just its head)."""
    if len(items) <= size:
        return list(items)
    step = len(items) / size
    return [items[int(i * step)] for i in range(size)]


def detect_layout(store, layouts: dict[str, Callable[[], list[str]]]) -> tuple[str, str]:
    """(layout name, wrapper prefix) whose required files ``store`` holds most of.

    ``layouts`` maps each layout name, in order of preference, to a function returning its
    required relative paths. The chosen wrapper prefix (``""`` or ``"<folder>/"``) is set on the
    store. With no hit at all the first layout is returned, so the presence check then reports
    the files that layout needs.
    """
    files = store.raw_files()
    tops = sorted({f.split("/", 1)[0] + "/" for f in files if "/" in f})
    best = (0, next(iter(layouts)), "")
    for name, required in layouts.items():
        sample = spread_sample(required())
        for prefix in ["", *tops]:
            hits = sum(1 for path in sample if prefix + path in files)
            if hits > best[0]:
                best = (hits, name, prefix)
    _, name, prefix = best
    store.prefix = prefix
    return name, prefix
