"""A slow, literal transcription of the davis2017 unsupervised evaluation (metrics-spec §1-§2).

Dense float64 stacks, whole-frame boundary maps dilated with the skimage disk through OpenCV,
the official Hungarian call and ``db_statistics`` with its uint8 indices. Written from the
spec for the tests and the benchmark script; it shares no code with refvps.
"""
from __future__ import annotations

import math
from glob import glob
from pathlib import Path

import cv2
import numpy as np
from PIL import Image
from scipy.optimize import linear_sum_assignment
from skimage.morphology import disk


def iou_stack(annotation, segmentation, void):
    annotation, segmentation = annotation.astype(bool), segmentation.astype(bool)
    outside = np.logical_not(void.astype(bool))
    inters = np.sum((segmentation & annotation) & outside, axis=(-2, -1))
    union = np.sum((segmentation | annotation) & outside, axis=(-2, -1))
    with np.errstate(invalid="ignore", divide="ignore"):
        j = inters / union
    j[np.isclose(union, 0)] = 1
    return j


def seg2bmap(seg):
    seg = seg.astype(bool)
    seg[seg > 0] = 1
    h, w = seg.shape[:2]
    e, s, se = np.zeros_like(seg), np.zeros_like(seg), np.zeros_like(seg)
    e[:, :-1] = seg[:, 1:]
    s[:-1, :] = seg[1:, :]
    se[:-1, :-1] = seg[1:, 1:]
    b = seg ^ e | seg ^ s | seg ^ se
    b[-1, :] = seg[-1, :] ^ e[-1, :]
    b[:, -1] = seg[:, -1] ^ s[:, -1]
    b[-1, -1] = 0
    return b


def f_measure(foreground, gt, void, bound_th=0.008):
    void = void.astype(bool)
    bound_pix = bound_th if bound_th >= 1 else np.ceil(bound_th * np.linalg.norm(foreground.shape))
    fg_boundary = seg2bmap(foreground * np.logical_not(void))
    gt_boundary = seg2bmap(gt * np.logical_not(void))
    kernel = disk(int(bound_pix)).astype(np.uint8)
    fg_dil = cv2.dilate(fg_boundary.astype(np.uint8), kernel)
    gt_dil = cv2.dilate(gt_boundary.astype(np.uint8), kernel)
    gt_match = gt_boundary * fg_dil
    fg_match = fg_boundary * gt_dil
    n_fg, n_gt = np.sum(fg_boundary), np.sum(gt_boundary)
    if n_fg == 0 and n_gt > 0:
        precision, recall = 1, 0
    elif n_fg > 0 and n_gt == 0:
        precision, recall = 0, 1
    elif n_fg == 0 and n_gt == 0:
        precision, recall = 1, 1
    else:
        precision = np.sum(fg_match) / float(n_fg)
        recall = np.sum(gt_match) / float(n_gt)
    return 0 if precision + recall == 0 else 2 * precision * recall / (precision + recall)


def boundary_stack(annotation, segmentation, void):
    out = np.zeros(annotation.shape[:1])
    for t in range(annotation.shape[0]):
        out[t] = f_measure(segmentation[t], annotation[t], void[t])
    return out


def statistics(values):
    mean = np.nanmean(values)
    recall = np.nanmean(values > 0.5)
    ids = np.round(np.linspace(1, len(values), 5) + 1e-10) - 1
    ids = ids.astype(np.uint8)
    bins = [values[ids[i]:ids[i + 1] + 1] for i in range(4)]
    with np.errstate(invalid="ignore"):
        decay = np.nanmean(bins[0]) - np.nanmean(bins[3])
    return mean, recall, decay


def unsupervised(gt_masks, res_masks, void_masks, max_proposals=20):
    """(j, f) of the matched pairs in official order (proposal order), plus (rows, cols)."""
    if res_masks.shape[0] > max_proposals:
        raise SystemExit("too many proposals")
    if res_masks.shape[0] < gt_masks.shape[0]:
        pad = np.zeros((gt_masks.shape[0] - res_masks.shape[0], *res_masks.shape[1:]))
        res_masks = np.concatenate([res_masks, pad], axis=0)
    j = np.zeros((res_masks.shape[0], gt_masks.shape[0], gt_masks.shape[1]))
    f = np.zeros((res_masks.shape[0], gt_masks.shape[0], gt_masks.shape[1]))
    for ii in range(gt_masks.shape[0]):
        for jj in range(res_masks.shape[0]):
            j[jj, ii, :] = iou_stack(gt_masks[ii], res_masks[jj], void_masks)
            f[jj, ii, :] = boundary_stack(gt_masks[ii], res_masks[jj], void_masks)
    cost = (np.mean(j, axis=2) + np.mean(f, axis=2)) / 2
    rows, cols = linear_sum_assignment(-cost)
    return j[rows, cols, :], f[rows, cols, :], rows, cols


def load_gt(folder: Path):
    paths = np.sort(glob(str(folder / "*.png"))).tolist()
    first = np.array(Image.open(paths[0]))
    masks = np.zeros((len(paths), *first.shape))
    for i, path in enumerate(paths):
        masks[i, ...] = np.array(Image.open(path))
    void = masks == 255
    masks[masks == 255] = 0
    n_objects = int(np.max(masks[0, ...]))
    tmp = np.ones((n_objects, *masks.shape)) * np.arange(1, n_objects + 1)[:, None, None, None]
    frame_ids = [Path(p).stem for p in paths]
    return (tmp == masks[None, ...]) > 0, void, frame_ids


def load_indexed(folder: Path, frame_ids):
    first = np.array(Image.open(folder / f"{frame_ids[0]}.png"))
    masks = np.zeros((len(frame_ids), *first.shape))
    for i, frame in enumerate(frame_ids):
        masks[i, ...] = np.array(Image.open(folder / f"{frame}.png"))
    n = int(np.max(masks))
    tmp = np.ones((n, *masks.shape)) * np.arange(1, n + 1)[:, None, None, None]
    return (tmp == masks[None, ...]) > 0


def load_per_object(folder: Path, frame_ids):
    n = len(list(folder.iterdir()))
    first = np.array(Image.open(folder / "1" / f"{frame_ids[0]}.png"))
    masks = np.zeros((len(frame_ids), n, *first.shape))
    for i, frame in enumerate(frame_ids):
        masks[i, ...] = np.stack([np.array(Image.open(folder / str(k) / f"{frame}.png"))
                                  for k in range(1, n + 1)])
    return np.transpose(masks, (1, 0, 2, 3))


def evaluate_run(gt_root: Path, run_dir: Path, sequences):
    """The official per-run numbers and per-object rows (labelled as the official CSV does)."""
    res = {"J": {"M": [], "R": [], "D": []}, "F": {"M": [], "R": [], "D": []}, "objects": []}
    for seq in sequences:
        gt, void, frame_ids = load_gt(gt_root / seq)
        folder = run_dir / seq
        per_object = any(p.is_dir() for p in folder.iterdir())
        pred = load_per_object(folder, frame_ids) if per_object else load_indexed(folder, frame_ids)
        j, f, rows, cols = unsupervised(gt, pred, void)
        for ii in range(gt.shape[0]):
            jm, jr, jd = statistics(j[ii])
            fm, fr, fd = statistics(f[ii])
            for key, values in (("J", (jm, jr, jd)), ("F", (fm, fr, fd))):
                for stat, value in zip("MRD", values):
                    res[key][stat].append(value)
            res["objects"].append({"official_label": f"{seq}_{ii + 1}", "object": int(cols[ii]) + 1,
                                   "proposal": int(rows[ii]) + 1, "J": jm, "F": fm,
                                   "J_recall": jr, "J_decay": jd, "F_recall": fr, "F_decay": fd})
    res["J&F"] = (np.mean(res["J"]["M"]) + np.mean(res["F"]["M"])) / 2.
    return res


def four_run_mean(values) -> float:
    total = 0
    for value in values:
        total += value
    return total / len(values) if values else math.nan
