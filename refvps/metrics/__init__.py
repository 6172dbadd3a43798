"""Pure metric kernels on numpy arrays: no file I/O, no dataset knowledge.

Names are imported on first use, so that the command line can read :data:`DECAY_MODES` without
loading numpy and OpenCV.
"""
from __future__ import annotations

import importlib

from refvps.metrics.modes import DECAY_MODES

_LAZY = {
    "Boundary": "boundary", "boundary_of": "boundary", "boundary_radius": "boundary",
    "contour_accuracy": "boundary", "f_from_boundaries": "boundary",
    "region_counts": "region", "region_similarity": "region",
    "decay_with_check": "sequence", "sequence_decay": "sequence", "sequence_mean": "sequence",
    "sequence_recall": "sequence", "temporal_consistency": "sequence",
}


def jf_score(j: float, f: float) -> float:
    """J&F as every official script computes it: the plain mean of J and F."""
    return (j + f) / 2


def __getattr__(name: str):
    if name in _LAZY:
        return getattr(importlib.import_module(f"refvps.metrics.{_LAZY[name]}"), name)
    raise AttributeError(f"module 'refvps.metrics' has no attribute {name!r}")


__all__ = ["DECAY_MODES", "jf_score", *_LAZY]
