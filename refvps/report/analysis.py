"""Report tables computed from a run's per-frame and per-unit rows (no metric is recomputed)."""
from __future__ import annotations

import numpy as np
import pandas as pd

from refvps.loaders.base import group_means

TIME_BINS = 10
WORD_BINS = ((1, 3), (4, 6), (7, 10), (11, 15), (16, None))
"""Expression-length bins in words (inclusive); the last is open-ended."""
MEASURE_BINS = 3
MEASURE_LABELS = ("low", "medium", "high")


def group_table(units: pd.DataFrame, key: str) -> pd.DataFrame:
    """Mean unit scores per value of ``key`` (list-valued keys count in every group)."""
    return group_means(units, key, compute_f="F" in units.columns)


def coverage_curve(units: pd.DataFrame, key: str) -> pd.DataFrame:
    """Per-class (or per-concept) J sorted best first, with the rank as a fraction of classes."""
    table = units.groupby(key)["J"].agg(J="mean", n_units="size").reset_index()
    table = table.sort_values("J", ascending=False, kind="stable").reset_index(drop=True)
    table.insert(0, "rank", np.arange(1, len(table) + 1))
    table["rank_fraction"] = table["rank"] / max(len(table), 1)
    return table


def time_curve(frames: pd.DataFrame, bins: int = TIME_BINS) -> pd.DataFrame:
    """J over normalised time: frame k of a unit's n scored frames sits at k / (n - 1); each unit's
    frames are averaged per bin, then units are averaged with equal weight."""
    frames = frames[["unit", "t", "J"]].copy()
    last = frames.groupby("unit")["t"].transform("max")
    frames["tau"] = np.where(last > 0, frames["t"] / last.where(last > 0, 1), 0.0)
    frames["bin"] = np.minimum((frames["tau"] * bins).astype(int), bins - 1)
    per_unit = frames.groupby(["unit", "bin"])["J"].mean().reset_index()
    table = per_unit.groupby("bin")["J"].agg(J="mean", n_units="size").reindex(range(bins))
    table.insert(0, "t_low", np.arange(bins) / bins)
    table.insert(1, "t_high", (np.arange(bins) + 1) / bins)
    table["n_units"] = table["n_units"].fillna(0).astype(int)
    return table.reset_index(drop=True)


def length_table(units: pd.DataFrame) -> pd.DataFrame:
    """J by expression length in words (fixed bins, WORD_BINS)."""
    rows = []
    for low, high in WORD_BINS:
        mask = (units["n_words"] >= low) & ((units["n_words"] <= high) if high else True)
        rows.append({"words": f"{low}-{high}" if high else f"{low}+", "n_units": int(mask.sum()),
                     "J": float(units.loc[mask, "J"].mean()) if mask.any() else float("nan")})
    return pd.DataFrame(rows)


def measure_table(units: pd.DataFrame, column: str, bins: int = MEASURE_BINS) -> pd.DataFrame:
    """J by tertiles (equal-count bins over the dataset's units) of a GT measure; units without
    a value (no two consecutive non-empty GT masks) get their own row."""
    valid = units[units[column].notna()]
    rows = []
    count = min(bins, len(valid))
    if count:
        ranks = valid[column].rank(method="first")
        codes = pd.qcut(ranks, count, labels=False) if count > 1 else ranks * 0
        for code in range(count):
            part = valid[codes == code]
            label = MEASURE_LABELS[code] if count == len(MEASURE_LABELS) else f"q{code + 1}/{count}"
            rows.append({"bin": label, "low": float(part[column].min()),
                         "high": float(part[column].max()), "n_units": len(part),
                         "J": float(part["J"].mean())})
    missing = units[units[column].isna()]
    if len(missing):
        rows.append({"bin": "n/a", "low": float("nan"), "high": float("nan"),
                     "n_units": len(missing), "J": float(missing["J"].mean())})
    return pd.DataFrame(rows, columns=["bin", "low", "high", "n_units", "J"])
