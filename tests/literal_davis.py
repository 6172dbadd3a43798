"""A slow, literal transcription of the davis2017 per-frame metrics and db_statistics.

Written from the definitions in shared/docs/metrics-spec.md §1: whole-frame boundary maps,
``skimage.morphology.disk`` + ``cv2.dilate``, the official P/R conventions and order of float
operations. The fast kernels in ``refvps.metrics`` must agree with it bit for bit.
"""
from __future__ import annotations

import math

import cv2
import numpy as np
from skimage.morphology import disk


def literal_j(annotation, segmentation, void=None):
    annotation = annotation.astype(bool)
    segmentation = segmentation.astype(bool)
    void = np.zeros_like(annotation) if void is None else void.astype(bool)
    inters = np.sum((segmentation & annotation) & np.logical_not(void), axis=(-2, -1))
    union = np.sum((segmentation | annotation) & np.logical_not(void), axis=(-2, -1))
    if np.isclose(union, 0):
        return 1
    return inters / union


def literal_j_stack(annotation, segmentation):
    """davis2017 ``db_eval_iou`` without void on one frame or a (T, H, W) stack."""
    import warnings

    annotation = annotation.astype(bool)
    segmentation = segmentation.astype(bool)
    inters = np.sum(segmentation & annotation, axis=(-2, -1))
    union = np.sum(segmentation | annotation, axis=(-2, -1))
    with warnings.catch_warnings(), np.errstate(divide="ignore", invalid="ignore"):
        warnings.simplefilter("ignore")
        j = inters / union
    if j.ndim == 0:
        return 1 if np.isclose(union, 0) else j
    j[np.isclose(union, 0)] = 1
    return j


def literal_seg2bmap(seg):
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


def literal_f(foreground, gt, void=None, bound_th=0.008):
    void = np.zeros_like(foreground, dtype=bool) if void is None else void.astype(bool)
    bound_pix = bound_th if bound_th >= 1 else np.ceil(bound_th * np.linalg.norm(foreground.shape))
    fg_boundary = literal_seg2bmap(foreground * np.logical_not(void))
    gt_boundary = literal_seg2bmap(gt * np.logical_not(void))
    kernel = disk(int(bound_pix)).astype(np.uint8)
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


def literal_statistics(values):
    """(mean, recall, decay) exactly as davis2017 ``db_statistics`` runs under the installed NumPy."""
    import warnings

    values = np.asarray(values, dtype=np.float64)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        mean = np.nanmean(values)
        recall = np.nanmean(values > 0.5)
        bin_count = 4
        ids = np.round(np.linspace(1, len(values), bin_count + 1) + 1e-10) - 1
        ids = ids.astype(np.uint8)
        bins = [values[ids[i]:ids[i + 1] + 1] for i in range(0, 4)]
        decay = np.nanmean(bins[0]) - np.nanmean(bins[3])
    return mean, recall, decay


def radius_reference(shape, bound_th=0.008):
    return bound_th if bound_th >= 1 else math.ceil(bound_th * np.linalg.norm(shape))
