"""The one unit convention of refvps output: scores are fractions in [0, 1], percent on request.

Every score refvps computes, stores and prints (J, F, J&F, recall, decay, TC, empty-prediction
rate; mAP, AP, overall / mean IoU, precision@K; VSPW mIoU and VC) is a fraction: the per-frame
kernels, ``summary.json``, the per-unit tables, run records, and the output of ``eval``, ``runs``, ``report``, ``compare`` and ``leaderboard``. ``--percent``
on those commands multiplies scores by 100, the way papers print them (TC then reads as REM's
"Temp. Con." in percent points). Counts (``TC_units``, ``n_classes``, ...) are never scaled.
The published numbers are stored as printed (percent) and converted on reading.
"""
from __future__ import annotations

import math
import re

import pandas as pd

SCORE = re.compile(r"^(J&F|J|F|TC)(_(recall|decay|mean|std))?$|^empty_pred_rate$"
                   r"|^(mAP|AP50|AP75|AP_[SML]|oIoU|mIoU|VC8|VC16|pixel_acc|class_acc|fwIoU)$"
                   r"|^P@0\.[5-9]$")
"""Keys that hold a score (a fraction); everything else numeric is a count or a label."""
FRACTION, PERCENT = "fraction", "percent"


def is_score(key: str) -> bool:
    return bool(SCORE.match(str(key)))


def factor(percent: bool) -> float:
    return 100.0 if percent else 1.0


def scale_metrics(metrics: dict, percent: bool) -> dict:
    """A copy of a metrics dict with its score values in the chosen unit."""
    return {k: (v * factor(percent) if is_score(k) and _number(v) else v)
            for k, v in metrics.items()}


def scale_table(table: pd.DataFrame, percent: bool, columns=None) -> pd.DataFrame:
    """A copy of ``table`` with its score columns (or ``columns``) in the chosen unit."""
    table = table.copy()
    names = columns if columns is not None else [c for c in table.columns if is_score(c)]
    for name in names:
        if name in table.columns and pd.api.types.is_numeric_dtype(table[name]):
            table[name] = table[name] * factor(percent)
    return table


def fmt(value, percent: bool) -> str:
    """A score as text: 4 decimals as a fraction, 2 as percent (the same resolution)."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    return f"{value:.2f}" if percent else f"{value:.4f}"


def unit_label(percent: bool) -> str:
    return "percent" if percent else "fractions in [0, 1]"


def _number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def shown_result(result, percent: bool):
    """``result`` (an :class:`~refvps.evaluation.EvalResult`) as a command shows it: unchanged
    for fractions; for percent a copy whose scores are multiplied by 100."""
    if not percent:
        return result
    from refvps.evaluation import EvalResult

    summary = dict(result.summary, metrics=scale_metrics(result.summary["metrics"], True),
                   unit=PERCENT)
    tables = {name: scale_table(table, True) for name, table in result.tables.items()}
    return EvalResult(summary, scale_table(result.frames, True), scale_table(result.units, True),
                      tables)
