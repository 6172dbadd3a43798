"""How much the ground truth of a query moves and changes shape (failure-mode axes).

For consecutive scored frames t, t+1 whose GT masks (Ignore/void removed) are both non-empty:

* motion      = |c(t+1) - c(t)| / diagonal, c = mask centroid (row, col), diagonal = sqrt(H²+W²);
* shape change = 1 - IoU(M(t) translated by round(c(t+1) - c(t)), M(t+1)), the IoU taken on an
  unbounded plane (pixels translated off the frame still count in the union).

A query's value is the mean over its pairs; queries with no such pair get NaN. Pairs where exactly
one mask is empty (the target appears or disappears) are counted separately. docs/reports.md.
"""
from __future__ import annotations

import math

import numpy as np
import pandas as pd
from tqdm import tqdm

from refvps.loaders.base import Benchmark

DYNAMICS_COLUMNS = ("motion", "shape_change", "n_pairs", "appear_disappear")


def pair_dynamics(first: np.ndarray, second: np.ndarray) -> tuple[float, float]:
    """(motion, shape change) between two non-empty boolean masks of the same size."""
    ys0, xs0 = np.nonzero(first)
    ys1, xs1 = np.nonzero(second)
    dy, dx = ys1.mean() - ys0.mean(), xs1.mean() - xs0.mean()
    motion = math.hypot(dy, dx) / math.hypot(*first.shape)
    sy, sx = int(round(dy)), int(round(dx))
    ty, tx = ys0 + sy, xs0 + sx
    inside = (ty >= 0) & (ty < second.shape[0]) & (tx >= 0) & (tx < second.shape[1])
    inter = int(np.count_nonzero(second[ty[inside], tx[inside]]))
    union = len(ys0) + len(ys1) - inter
    return motion, 1.0 - inter / union


def sequence_dynamics(masks: list[np.ndarray]) -> dict:
    """Per-query measures over a sequence of GT masks (see the module docstring)."""
    motions, shapes, events = [], [], 0
    for first, second in zip(masks, masks[1:]):
        a, b = bool(first.any()), bool(second.any())
        if a and b:
            motion, shape = pair_dynamics(first, second)
            motions.append(motion)
            shapes.append(shape)
        elif a != b:
            events += 1
    return {"motion": float(np.mean(motions)) if motions else float("nan"),
            "shape_change": float(np.mean(shapes)) if shapes else float("nan"),
            "n_pairs": len(motions), "appear_disappear": events}


def gt_dynamics(bench: Benchmark, progress: bool = True) -> pd.DataFrame:
    """One row per query of ``bench``: its motion and shape-change measures."""
    rows = []
    for task in tqdm(bench.tasks(), unit="video", desc="GT dynamics", leave=False,
                     disable=None if progress else True):
        gt = bench.load_gt(task)
        cache: dict[tuple, dict] = {}
        for query in task.queries:
            key = (query.target, query.frames) if query.target else None
            if key is None or key not in cache:
                masks = []
                for frame in query.frames:
                    fg, void = gt.target(query, frame)
                    masks.append(fg if void is None else fg & ~void)
                value = sequence_dynamics(masks)
                if key is not None:
                    cache[key] = value
            else:
                value = cache[key]
            rows.append({"unit": query.unit, **value})
    return pd.DataFrame(rows, columns=["unit", *DYNAMICS_COLUMNS])
