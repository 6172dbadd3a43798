"""Slow literal transcription of henghuiding/MeViS tools/eval_mevis.py (metrics-spec §1, §3).

Written from the spec's description for the tests: cv2 grayscale reads, GT = uint8 sum of the
decoded RLEs, davis2017 J and F on the whole (T, H, W) stack, per-expression means; a missing
video folder gives (0, 0), any exception in an expression drops it (the worker dies).
"""
from __future__ import annotations

import json
import os

import cv2
import numpy as np
from literal_davis import literal_f, literal_j
from pycocotools import mask as mask_utils


def db_eval_iou(annotation, segmentation):
    """davis2017 J on a (T, H, W) stack: the literal per-frame J of each frame."""
    return np.array([literal_j(a, s) for a, s in zip(annotation, segmentation)], np.float64)


def db_eval_boundary(annotation, segmentation):
    """davis2017 F on a stack (the official argument order: prediction first)."""
    return np.array([literal_f(s, a) for a, s in zip(annotation, segmentation)], np.float64)


def eval_mevis(pred_root: str, split_dir: str) -> dict[str, tuple[float, float]]:
    """{"<video>_<exp>": (J, F)} as the official script would fill ``output_dict``."""
    with open(os.path.join(split_dir, "meta_expressions.json")) as handle:
        exp_dict = json.load(handle)["videos"]
    with open(os.path.join(split_dir, "mask_dict.json")) as handle:
        mask_dict = json.load(handle)
    out = {}
    for video, record in exp_dict.items():
        for exp_id, exp in record["expressions"].items():
            key = f"{video}_{exp_id}"
            if not os.path.exists(os.path.join(pred_root, video)):
                out[key] = (0, 0)
                continue
            try:
                first = cv2.imread(os.path.join(pred_root, video, exp_id, "00000.png"),
                                   cv2.IMREAD_GRAYSCALE)
                h, w = first.shape
                n = len(record["frames"])
                gt = np.zeros((n, h, w), np.uint8)
                pr = np.zeros((n, h, w), np.uint8)
                for t, frame in enumerate(record["frames"]):
                    for anno in exp["anno_id"]:
                        rle = mask_dict[str(anno)][t]
                        if rle:
                            gt[t] += mask_utils.decode(rle)
                    pr[t] = cv2.imread(os.path.join(pred_root, video, exp_id, frame + ".png"),
                                       cv2.IMREAD_GRAYSCALE)
                out[key] = (db_eval_iou(gt, pr).mean(), db_eval_boundary(gt, pr).mean())
            except Exception:  # noqa: BLE001 - the official worker process dies, the entry is lost
                continue
    return out


def summary(out: dict[str, tuple[float, float]]) -> tuple[float, float, float]:
    j = float(np.mean([v[0] for v in out.values()]))
    f = float(np.mean([v[1] for v in out.values()]))
    return j, f, (j + f) / 2


__all__ = ["db_eval_boundary", "db_eval_iou", "eval_mevis", "summary"]
