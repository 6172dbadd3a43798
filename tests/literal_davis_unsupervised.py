"""A slow, literal transcription of the davis2017 unsupervised evaluation (metrics-spec §2).

Dense float64 stacks of every object and proposal, the per-frame kernels of
``literal_davis`` (whole-frame boundary maps, skimage disk + cv2.dilate), zero padding, the
official Hungarian call and ``db_statistics``. Written from the spec for the tests and the
benchmark script; it shares no code with refvps.
"""
from __future__ import annotations

import math
from glob import glob
from pathlib import Path

import numpy as np
from PIL import Image
from scipy.optimize import linear_sum_assignment

from literal_davis import literal_f, literal_j, literal_statistics


def iou_stack(annotation, segmentation, void):
    return np.array([literal_j(annotation[t], segmentation[t], void[t])
                     for t in range(annotation.shape[0])], dtype=np.float64)


def boundary_stack(annotation, segmentation, void):
    out = np.zeros(annotation.shape[:1])
    for t in range(annotation.shape[0]):
        out[t] = literal_f(segmentation[t], annotation[t], void[t])
    return out


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
            jm, jr, jd = literal_statistics(j[ii])
            fm, fr, fd = literal_statistics(f[ii])
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
