"""Region similarity J (Jaccard index) with void / Ignore pixels, as in davis2017 ``db_eval_iou``."""
from __future__ import annotations

import numpy as np

from refvps.masks import binarize


def _check_shapes(gt: np.ndarray, pred: np.ndarray, void: np.ndarray | None) -> None:
    if gt.shape != pred.shape:
        raise ValueError(f"shape mismatch: ground truth {gt.shape} vs prediction {pred.shape}")
    if void is not None and void.shape != gt.shape:
        raise ValueError(f"shape mismatch: ground truth {gt.shape} vs void {void.shape}")


def region_counts(gt: np.ndarray, pred: np.ndarray, void: np.ndarray | None = None) -> tuple[int, int]:
    """Intersection and union pixel counts outside void (any non-zero value is set)."""
    gt, pred = binarize(gt), binarize(pred)
    void = None if void is None else binarize(void)
    _check_shapes(gt, pred, void)
    if void is None:
        inter = np.count_nonzero(gt & pred)
        union = np.count_nonzero(gt) + np.count_nonzero(pred) - inter
    else:
        keep = ~void
        gt_k = gt & keep
        pred_k = pred & keep
        inter = np.count_nonzero(gt_k & pred_k)
        union = np.count_nonzero(gt_k) + np.count_nonzero(pred_k) - inter
    return int(inter), int(union)


def region_similarity(gt: np.ndarray, pred: np.ndarray, void: np.ndarray | None = None) -> float:
    """J for one frame: |G & P| / |G | P| outside void; 1.0 when the union is empty."""
    inter, union = region_counts(gt, pred, void)
    return 1.0 if union == 0 else inter / union
