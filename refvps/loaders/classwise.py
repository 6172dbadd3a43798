"""Class-averaged benchmarks (REM's BURST and VSPW-stuff protocols), averaged the way REM does.

REM appends each unit's score to a per-class list in the order it scores the units, takes
``np.mean`` of every list, then ``np.mean`` over the classes in first-appearance order. Doing the
same reductions in the same order keeps the result bit-identical (a pandas ``groupby().mean()``
may differ in the last bits).
"""
from __future__ import annotations

from abc import abstractmethod
from pathlib import Path
from typing import ClassVar

import numpy as np
import pandas as pd

from refvps.loaders.base import Benchmark, Query
from refvps.loaders.layouts import detect_layout


def class_means(units: pd.DataFrame, key: str, column: str) -> dict[str, float]:
    """Per-class ``np.mean`` of ``column``, classes in first-appearance order of ``units``."""
    lists: dict[str, list[float]] = {}
    for cls, value in zip(units[key], units[column]):
        lists.setdefault(cls, []).append(value)
    return {cls: float(np.mean(np.array(values, dtype=np.float64)))
            for cls, values in lists.items()}


def class_averaged(units: pd.DataFrame, key: str, column: str) -> float:
    """Mean over classes of the per-class mean of ``column`` (NaN with no units)."""
    means = class_means(units, key, column)
    if not means:
        return float("nan")
    return float(np.mean(np.array(list(means.values()), dtype=np.float64)))


class ClassAveragedBenchmark(Benchmark):
    """A REM-style "the <class>" benchmark: J only, class-averaged, REM or standard layout.

    Subclasses give :meth:`rem_relpath` (where REM's scripts write a prediction); the standard
    layout is the base ``<video>/<query_id>/<frame>.png``. ``layout="auto"`` picks the one the
    predictions store uses (see :func:`refvps.loaders.layouts.detect_layout`).
    """

    headline = ("J",)
    compute_f = False
    class_key = "class"
    layouts: ClassVar[tuple[str, ...]] = ("rem", "standard")

    def __init__(self, root: str | Path, split: str | None = None, decay_mode: str = "davis2017",
                 layout: str = "auto"):
        super().__init__(root, split, decay_mode)
        if layout not in ("auto", *self.layouts):
            raise ValueError(f"{self.name}: unknown prediction layout {layout!r}; choose auto, "
                             f"{', '.join(self.layouts)}")
        self.layout = layout

    @abstractmethod
    def rem_relpath(self, query: Query, frame: str) -> str:
        """Where REM's inference script writes the prediction of ``query`` on ``frame``."""

    def prediction_relpath(self, query: Query, frame: str) -> str:
        if self.layout == "rem":
            return self.rem_relpath(query, frame)
        return super().prediction_relpath(query, frame)

    def bind_predictions(self, store) -> None:
        if self.layout != "auto":
            return
        queries = self.queries()
        standard = super().prediction_relpath
        self.layout, _ = detect_layout(store, {
            "rem": lambda: [self.rem_relpath(q, f) for q in queries for f in q.frames],
            "standard": lambda: [standard(q, f) for q in queries for f in q.frames]})

    def aggregate(self, frames: pd.DataFrame, units: pd.DataFrame) -> tuple[dict, dict]:
        metrics, tables = super().aggregate(frames, units)
        metrics["J"] = class_averaged(units, self.class_key, "J")
        metrics["n_classes"] = len(class_means(units, self.class_key, "J"))
        metrics["prediction_layout"] = self.layout
        return metrics, tables
