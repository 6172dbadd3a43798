"""A slow, literal transcription of davis2017-evaluation's semi-supervised task.

Follows ``DAVIS.get_all_masks`` (float stacks, void 255 -> 0, objects = 1..max of the first
frame), ``DAVISEvaluation.evaluate`` (first and last frame dropped), ``Results.read_masks``
(ids 1..max over the read frames), ``_evaluate_semisupervised`` (zero padding, no void) and the
global means of ``evaluation_method.py``. Shares no code with refvps.
"""
from __future__ import annotations

from glob import glob
from pathlib import Path

import numpy as np
from PIL import Image

from literal_davis import literal_f, literal_j, literal_statistics


def _all_masks(folder: Path):
    paths = np.sort(glob(str(folder / "*.png"))).tolist()
    first = np.array(Image.open(paths[0]))
    masks = np.zeros((len(paths), *first.shape))
    ids = []
    for i, path in enumerate(paths):
        masks[i, ...] = np.array(Image.open(path))
        ids.append("".join(path.split("/")[-1].split(".")[:-1]))
    for i in range(masks.shape[0]):
        masks[i, masks[i, ...] == 255] = 0
    n_objects = int(np.max(masks[0, ...]))
    tmp = np.ones((n_objects, *masks.shape)) * np.arange(1, n_objects + 1)[:, None, None, None]
    return (tmp == masks[None, ...]) > 0, ids


def _read_results(folder: Path, ids):
    first = np.array(Image.open(folder / f"{ids[0]}.png"))
    masks = np.zeros((len(ids), *first.shape))
    for i, frame in enumerate(ids):
        masks[i, ...] = np.array(Image.open(folder / f"{frame}.png"))
    n_objects = int(np.max(masks))
    tmp = np.ones((n_objects, *masks.shape)) * np.arange(1, n_objects + 1)[:, None, None, None]
    return (tmp == masks[None, ...]) > 0


def semisupervised(davis: Path, results: Path, split: str = "val"):
    """(global dict, {"<seq>_<i>": (J mean, F mean)}) as evaluation_method.py computes them."""
    lines = (davis / "ImageSets/2017" / f"{split}.txt").read_text().splitlines()
    stats = {"JM": [], "JR": [], "JD": [], "FM": [], "FR": [], "FD": []}
    per_object = {}
    for seq in [x.strip() for x in lines]:
        gt, ids = _all_masks(davis / "Annotations/480p" / seq)
        gt, ids = gt[:, 1:-1, :, :], ids[1:-1]
        res = _read_results(results / seq, ids)
        if res.shape[0] > gt.shape[0]:
            raise SystemExit("index higher than the number of objects")
        if res.shape[0] < gt.shape[0]:
            pad = np.zeros((gt.shape[0] - res.shape[0], *res.shape[1:]))
            res = np.concatenate([res, pad], axis=0)
        j = np.zeros(gt.shape[:2])
        f = np.zeros(gt.shape[:2])
        for ii in range(gt.shape[0]):
            j[ii, :] = [literal_j(gt[ii, t], res[ii, t]) for t in range(gt.shape[1])]
            f[ii, :] = [literal_f(res[ii, t], gt[ii, t]) for t in range(gt.shape[1])]
        for ii in range(gt.shape[0]):
            jm, jr, jd = literal_statistics(j[ii])
            fm, fr, fd = literal_statistics(f[ii])
            for key, value in zip(stats, (jm, jr, jd, fm, fr, fd)):
                stats[key].append(value)
            per_object[f"{seq}_{ii + 1}"] = (jm, fm)
    means = {key: np.mean(values) for key, values in stats.items()}
    means["J&F"] = (np.mean(stats["JM"]) + np.mean(stats["FM"])) / 2.
    return means, per_object
