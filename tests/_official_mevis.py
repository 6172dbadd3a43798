"""Slow literal transcription of henghuiding/MeViS tools/eval_mevis.py (metrics-spec §1, §3).

Written from the spec's description for the tests: cv2 grayscale reads, GT = uint8 sum of the
decoded RLEs, davis2017 J and F on the whole (T, H, W) stack, per-expression means; a missing
video folder gives (0, 0), any exception in an expression drops it (the worker dies).
"""
from __future__ import annotations

import json
import os
import warnings

import cv2
import numpy as np
from pycocotools import mask as mask_utils
from skimage.morphology import disk


def db_eval_iou(annotation, segmentation):
    annotation = annotation.astype(bool)
    segmentation = segmentation.astype(bool)
    inters = np.sum(segmentation & annotation, axis=(-2, -1))
    union = np.sum(segmentation | annotation, axis=(-2, -1))
    with warnings.catch_warnings(), np.errstate(divide="ignore", invalid="ignore"):
        warnings.simplefilter("ignore")
        j = inters / union
    if j.ndim == 0:
        j = 1 if np.isclose(union, 0) else j
    else:
        j[np.isclose(union, 0)] = 1
    return j


def seg2bmap(seg):
    seg = seg.astype(bool)
    seg[seg > 0] = 1
    h, w = seg.shape[:2]
    e = np.zeros_like(seg)
    s = np.zeros_like(seg)
    se = np.zeros_like(seg)
    e[:, :-1] = seg[:, 1:]
    s[:-1, :] = seg[1:, :]
    se[:-1, :-1] = seg[1:, 1:]
    b = seg ^ e | seg ^ s | seg ^ se
    b[-1, :] = seg[-1, :] ^ e[-1, :]
    b[:, -1] = seg[:, -1] ^ s[:, -1]
    b[-1, -1] = 0
    return b


def f_measure(foreground_mask, gt_mask, bound_th=0.008):
    bound_pix = bound_th if bound_th >= 1 else np.ceil(bound_th * np.linalg.norm(foreground_mask.shape))
    fg_boundary = seg2bmap(foreground_mask)
    gt_boundary = seg2bmap(gt_mask)
    kernel = disk(bound_pix).astype(np.uint8)
    fg_dil = cv2.dilate(fg_boundary.astype(np.uint8), kernel)
    gt_dil = cv2.dilate(gt_boundary.astype(np.uint8), kernel)
    gt_match = gt_boundary * fg_dil
    fg_match = fg_boundary * gt_dil
    n_fg = np.sum(fg_boundary)
    n_gt = np.sum(gt_boundary)
    if n_fg == 0 and n_gt > 0:
        precision, recall = 1, 0
    elif n_fg > 0 and n_gt == 0:
        precision, recall = 0, 1
    elif n_fg == 0 and n_gt == 0:
        precision, recall = 1, 1
    else:
        precision = np.sum(fg_match) / float(n_fg)
        recall = np.sum(gt_match) / float(n_gt)
    if precision + recall == 0:
        return 0
    return 2 * precision * recall / (precision + recall)


def db_eval_boundary(annotation, segmentation):
    f_res = np.zeros(annotation.shape[:2])
    for t in range(annotation.shape[0]):
        f_res[t] = f_measure(segmentation[t], annotation[t])
    return f_res


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
