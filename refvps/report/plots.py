"""Report figures: each function writes one PNG (returned) and the same figure as SVG beside it.

Figures are built with ``matplotlib.figure.Figure`` (Agg canvas), not pyplot, so no global
backend state is touched and nothing needs a display. ``scale`` is 1 for fractions, 100 for
percent (:mod:`refvps.units`); the axes follow it.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

FIGSIZE = (7.0, 4.0)
DPI = 110
COLOUR = "#3b6ea8"


def _figure(size=FIGSIZE):
    from matplotlib.figure import Figure

    fig = Figure(figsize=size, dpi=DPI)
    return fig, fig.subplots()


def _save(fig, path: Path) -> Path:
    """Write ``path`` (PNG, inlined in the page) and ``path`` with suffix .svg (vector)."""
    from matplotlib import rc_context

    fig.tight_layout()
    fig.savefig(path, format="png")
    with rc_context({"svg.fonttype": "none"}):  # text stays text: searchable, editable
        fig.savefig(Path(path).with_suffix(".svg"), format="svg")
    return path


def _score_label(name: str, scale: float) -> str:
    return f"{name} (%)" if scale == 100 else name


def bar_chart(labels: list[str], values: list[float], path: Path, title: str, *,
              group_noun: str, metric: str = "J", counts: list[int] | None = None,
              low: list[float] | None = None, high: list[float] | None = None,
              scale: float = 1.0) -> Path:
    """Horizontal bars, one per label (best at the top), with interval error bars when
    ``low``/``high`` are given; the y axis is labelled with ``group_noun`` ("concepts")."""
    height = max(2.5, 0.28 * len(labels) + 1.2)
    fig, ax = _figure((7.0, min(height, 30.0)))
    values = np.asarray(values, dtype=float) * scale
    order = np.argsort(values, kind="stable")
    positions = np.arange(len(labels))
    xerr = None
    if low is not None and high is not None:
        lows, highs = np.asarray(low, float)[order] * scale, np.asarray(high, float)[order] * scale
        xerr = np.vstack([np.clip(values[order] - lows, 0, None),
                          np.clip(highs - values[order], 0, None)])
    ax.barh(positions, values[order], color=COLOUR, xerr=xerr,
            error_kw={"ecolor": "#222222", "elinewidth": 0.8, "capsize": 2})
    shown = [str(labels[i]) + (f" (n={counts[i]})" if counts else "") for i in order]
    ax.set_yticks(positions, shown, fontsize=8)
    ax.set_xlim(0, scale)
    ax.set_xlabel(_score_label(metric, scale) + (", 95% CI" if xerr is not None else ""))
    ax.set_ylabel(group_noun)
    ax.set_title(title)
    ax.grid(axis="x", alpha=0.3)
    return _save(fig, path)


def coverage_plot(table: pd.DataFrame, path: Path, title: str, *, group_noun: str,
                  scale: float = 1.0) -> Path:
    """Sorted per-class J against the class rank (REM Fig. D style "concept coverage")."""
    fig, ax = _figure()
    values = table["J"] * scale
    ax.plot(table["rank_fraction"] * 100, values, color=COLOUR,
            marker="." if len(table) < 60 else None)
    ax.fill_between(table["rank_fraction"] * 100, values, alpha=0.2, color=COLOUR)
    ax.set_xlabel(f"{group_noun}, sorted by J (% of {len(table)})")
    ax.set_ylabel(_score_label("J", scale))
    ax.set_ylim(0, scale)
    ax.set_xlim(0, 100)
    ax.set_title(title)
    ax.grid(alpha=0.3)
    return _save(fig, path)


def time_plot(table: pd.DataFrame, path: Path, title: str, *, scale: float = 1.0) -> Path:
    fig, ax = _figure()
    centres = (table["t_low"] + table["t_high"]) / 2
    ax.plot(centres, table["J"] * scale, color=COLOUR, marker="o")
    ax.set_xlabel("normalised time within the clip")
    ax.set_ylabel(_score_label("mean J", scale))
    ax.set_xlim(0, 1)
    ax.set_ylim(0, scale)
    ax.set_title(title)
    ax.grid(alpha=0.3)
    return _save(fig, path)


def binned_plot(table: pd.DataFrame, label_column: str, path: Path, title: str,
                xlabel: str, *, unit_noun: str = "units", scale: float = 1.0) -> Path:
    """Vertical bars of mean J per bin, annotated with the number of units."""
    fig, ax = _figure()
    positions = np.arange(len(table))
    values = table["J"].to_numpy(float) * scale
    ax.bar(positions, np.nan_to_num(values), color=COLOUR)
    for x, (value, count) in enumerate(zip(values, table["n_units"])):
        ax.text(x, (0 if np.isnan(value) else value) + 0.02 * scale, f"{count} {unit_noun}",
                ha="center", fontsize=8)
    ax.set_xticks(positions, table[label_column].astype(str))
    ax.set_xlabel(xlabel)
    ax.set_ylabel(_score_label("mean J", scale))
    ax.set_ylim(0, 1.1 * scale)
    ax.set_title(title)
    ax.grid(axis="y", alpha=0.3)
    return _save(fig, path)


def histogram(values: np.ndarray, path: Path, title: str, *, unit_name: str, unit_noun: str,
              bins: int = 20, scale: float = 1.0) -> Path:
    """Distribution of per-unit J; the y axis counts ``unit_noun`` ("expressions")."""
    fig, ax = _figure()
    ax.hist(np.asarray(values, float) * scale, bins=bins, range=(0, scale), color=COLOUR,
            edgecolor="white")
    ax.set_xlabel(_score_label("J", scale) + f" per {unit_name}")
    ax.set_ylabel(unit_noun)
    ax.set_title(title)
    ax.grid(axis="y", alpha=0.3)
    return _save(fig, path)
