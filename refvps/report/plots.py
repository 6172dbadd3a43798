"""Report figures: each function writes one PNG and returns its path.

Figures are built with ``matplotlib.figure.Figure`` (Agg canvas), not pyplot, so no global
backend state is touched and nothing needs a display.
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
    fig.tight_layout()
    fig.savefig(path, format="png")
    return path


def bar_chart(labels: list[str], values: list[float], path: Path, title: str,
              ylabel: str = "J", counts: list[int] | None = None) -> Path:
    """Horizontal bars, one per label (best at the top)."""
    height = max(2.5, 0.28 * len(labels) + 1.2)
    fig, ax = _figure((7.0, min(height, 30.0)))
    order = np.argsort(np.asarray(values, dtype=float))
    positions = np.arange(len(labels))
    ax.barh(positions, np.asarray(values, dtype=float)[order], color=COLOUR)
    shown = [str(labels[i]) + (f" (n={counts[i]})" if counts else "") for i in order]
    ax.set_yticks(positions, shown, fontsize=8)
    ax.set_xlim(0, 1)
    ax.set_xlabel(ylabel)
    ax.set_title(title)
    ax.grid(axis="x", alpha=0.3)
    return _save(fig, path)


def coverage_plot(table: pd.DataFrame, path: Path, title: str) -> Path:
    """Sorted per-class J against the class rank (REM Fig. D style "concept coverage")."""
    fig, ax = _figure()
    ax.plot(table["rank_fraction"] * 100, table["J"], color=COLOUR, marker="." if len(table) < 60
            else None)
    ax.fill_between(table["rank_fraction"] * 100, table["J"], alpha=0.2, color=COLOUR)
    ax.set_xlabel(f"classes, sorted by J (% of {len(table)})")
    ax.set_ylabel("J")
    ax.set_ylim(0, 1)
    ax.set_xlim(0, 100)
    ax.set_title(title)
    ax.grid(alpha=0.3)
    return _save(fig, path)


def time_plot(table: pd.DataFrame, path: Path, title: str) -> Path:
    fig, ax = _figure()
    centres = (table["t_low"] + table["t_high"]) / 2
    ax.plot(centres, table["J"], color=COLOUR, marker="o")
    ax.set_xlabel("normalised time within the clip")
    ax.set_ylabel("mean J")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.set_title(title)
    ax.grid(alpha=0.3)
    return _save(fig, path)


def binned_plot(table: pd.DataFrame, label_column: str, path: Path, title: str,
                xlabel: str) -> Path:
    """Vertical bars of mean J per bin, annotated with the number of units."""
    fig, ax = _figure()
    positions = np.arange(len(table))
    ax.bar(positions, table["J"].fillna(0), color=COLOUR)
    for x, (value, count) in enumerate(zip(table["J"], table["n_units"])):
        ax.text(x, (0 if np.isnan(value) else value) + 0.02, f"n={count}", ha="center",
                fontsize=8)
    ax.set_xticks(positions, table[label_column].astype(str))
    ax.set_xlabel(xlabel)
    ax.set_ylabel("mean J")
    ax.set_ylim(0, 1.1)
    ax.set_title(title)
    ax.grid(axis="y", alpha=0.3)
    return _save(fig, path)


def histogram(values: np.ndarray, path: Path, title: str, bins: int = 20) -> Path:
    fig, ax = _figure()
    ax.hist(values, bins=bins, range=(0, 1), color=COLOUR, edgecolor="white")
    ax.set_xlabel("J per unit")
    ax.set_ylabel("units")
    ax.set_title(title)
    ax.grid(axis="y", alpha=0.3)
    return _save(fig, path)
