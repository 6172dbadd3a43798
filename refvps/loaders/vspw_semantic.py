"""VSPW video semantic segmentation with the dataset's own measures (VSPW-dataset/VSPW_code).

Data: the VSPW tree of :mod:`refvps.loaders.vspw` (``<split>.txt``, ``data/<video>/mask/*.png``
with raw labels 1..124 = classes, 0 = others, 255 = void). The ground truth is mapped as the
dataset README prescribes (0 -> 255, k -> k - 1): classes 0..123, anything else unlabeled.

Predictions: ``<video>/<mask stem>.png``, one class-id map (0..123) per mask frame.

Measures (``evaluator_test.py`` with ``utils.Evaluator(124)``; ``VC_perclip.py``):

* mIoU: one 124 x 124 confusion matrix over every frame, pixels with GT >= 124 left out;
  IoU_c = CM[c,c] / (row_c + col_c - CM[c,c]); mean over the classes present in the GT. Pixel
  accuracy, mean class accuracy and frequency-weighted IoU come from the same matrix.
* VC_n (n = 8, 16): per video with more than n frames, for every window start
  i = 0..T-n-1, the share of pixels whose GT label is constant over frames i..i+n-1 whose
  prediction is constant too; the pooled ``nanmean`` over all windows of all videos.

A frame's confusion-matrix contribution only needs, per class, the intersection and the GT and
prediction pixel counts, so each per-frame row holds those; every measure is an aggregate of the
rows. A prediction value above 123 on a labelled pixel is reported (the official matrix would
count it in the next class's row, or crash), never counted.
"""
from __future__ import annotations

import json
import os
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

from refvps.errors import MaskError, Problem
from refvps.formats import (FRAME_EXT, MASK_EXT, VSPW_DATA_DIR, VSPW_FOLDER, VSPW_LABEL_FILE,
                            VSPW_MASK_DIR, VSPW_ORIGIN_DIR)
from refvps.loaders.base import Benchmark, GroundTruth, Query, TaskResult, VideoTask, read_digested
from refvps.loaders.jsonfiles import read_json_object, read_name_list, read_split_list
from refvps.masks import read_mask_bytes

N_CLASSES = 124
VC_WINDOWS = (8, 16)
UNLABELED = 255


def to_classes(raw: np.ndarray) -> np.ndarray:
    """The README mapping of raw VSPW labels: 0 (others) -> 255, k -> k - 1, 255 stays 255."""
    labels = raw.astype(np.int16) - 1
    labels[(raw == 0) | (raw == UNLABELED)] = UNLABELED
    return labels.astype(np.uint8)


def frame_counts(gt: np.ndarray, pred: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per class (intersection, GT pixels, predicted pixels) over the labelled GT pixels.

    These are the diagonal, row sums and column sums of the frame's confusion matrix.
    """
    keep = gt < N_CLASSES
    g, p = gt[keep], pred[keep]
    inter = np.bincount(g[g == p], minlength=N_CLASSES)[:N_CLASSES]
    return (inter, np.bincount(g, minlength=N_CLASSES)[:N_CLASSES],
            np.bincount(p, minlength=N_CLASSES)[:N_CLASSES])


def constant_runs(stack: np.ndarray) -> np.ndarray:
    """``runs[t]`` = how many following frames keep frame t's label, per pixel (T x H x W)."""
    runs = np.zeros(stack.shape, np.uint16)
    for t in range(len(stack) - 2, -1, -1):
        runs[t] = np.where(stack[t] == stack[t + 1], runs[t + 1] + 1, 0)
    return runs


def window_counts(gt_runs: np.ndarray, pred_runs: np.ndarray, n: int) -> list[tuple[int, int]]:
    """(pixels constant in GT and prediction, pixels constant in GT) per window start
    i = 0..T-n-1 (``VC_perclip.get_common``: frames i..i+n-1, the last full window omitted)."""
    out = []
    for i in range(len(gt_runs) - n):
        gt_common = gt_runs[i] >= n - 1
        out.append((int(np.count_nonzero(gt_common & (pred_runs[i] >= n - 1))),
                    int(np.count_nonzero(gt_common))))
    return out


class _VideoGT(GroundTruth):
    def __init__(self, video: str, mask_dir: Path):
        self.video, self.mask_dir = video, mask_dir
        self.digests: dict[str, str] = {}

    def classes(self, frame: str) -> np.ndarray:
        path = self.mask_dir / f"{frame}{MASK_EXT}"
        key = f"{VSPW_DATA_DIR}/{self.video}/{VSPW_MASK_DIR}/{frame}{MASK_EXT}"
        return to_classes(read_digested(path, self.digests, key))

    def target(self, query: Query, frame: str) -> tuple[np.ndarray, None]:
        return self.classes(frame) < N_CLASSES, None


class VSPWSemantic(Benchmark):
    name = "vspw-semantic"
    folder = VSPW_FOLDER
    title = "VSPW video semantic segmentation (mIoU, VC8, VC16)"
    splits = ("val", "train", "test")
    default_split = "val"
    headline = ("mIoU", "VC8", "VC16")
    compute_f = False
    unit_name = "video"
    protocol = ("GT mapped 0 -> void, k -> k - 1 (124 classes); mIoU from one confusion matrix "
                "over all frames (GT >= 124 left out), mean over classes present in the GT; VC8 / "
                "VC16: share of GT-constant pixels also constant in the prediction over windows "
                "of 8 / 16 frames, pooled over all windows")
    reference = "VSPW-dataset/VSPW_code evaluator_test.py (utils.Evaluator(124)) and VC_perclip.py"
    missing_hint = "The measures need a prediction for every mask frame."

    @classmethod
    def looks_like(cls, path: Path) -> bool:
        return (path / VSPW_DATA_DIR).is_dir() and any(
            (path / f"{split}.txt").is_file() for split in cls.splits)

    # --- data --------------------------------------------------------------------------------
    def split_file(self) -> Path:
        return self.root / f"{self.split}.txt"

    def metadata_files(self) -> list[Path]:
        return [self.split_file()]

    def video_ids(self) -> list[str]:
        """Videos of the split list (lines stripped, blank lines skipped, order kept)."""
        if not os.path.lexists(self.split_file()):
            return []
        return read_name_list(self.split_file(), [], "video") or []

    def mask_dir(self, video: str) -> Path:
        return self.root / VSPW_DATA_DIR / video / VSPW_MASK_DIR

    def frame_path(self, video: str, frame: str) -> Path:
        return self.root / VSPW_DATA_DIR / video / VSPW_ORIGIN_DIR / f"{frame}{FRAME_EXT}"

    def mask_stems(self, video: str) -> tuple[str, ...]:
        folder = self.mask_dir(video)
        if not folder.is_dir():
            return ()
        return tuple(sorted(p.name[:-len(MASK_EXT)] for p in folder.iterdir()
                            if p.name.endswith(MASK_EXT)))

    def class_names(self) -> dict[int, str]:
        """Class id (0..123) -> name, from ``label_num_dic_final.json`` when it is present."""
        names = read_json_object(self.root / VSPW_LABEL_FILE, [], required=False) or {}
        return {int(raw) - 1: name for name, raw in names.items()
                if str(raw).isdigit() and 1 <= int(raw) <= N_CLASSES}

    def validate(self) -> list[Problem]:
        split_file = self.split_file()
        problems: list[Problem] = []
        videos = read_split_list(split_file, problems, "video")
        if videos is None:
            return problems
        label_file = self.root / VSPW_LABEL_FILE
        if os.path.lexists(label_file):
            read_json_object(label_file, problems)
        for video in videos:
            folder = self.mask_dir(video)
            if not self.mask_stems(video):
                problems.append(Problem(str(folder), "no mask PNG in the folder" if folder.is_dir()
                                        else f"mask folder of video {video!r} not found"))
        return problems

    def tasks(self) -> list[VideoTask]:
        """One task per video, in split-list order (the order VC pools its windows in)."""
        return [VideoTask(video, [Query(video, "semantic", "", stems)])
                for video in self.video_ids() if (stems := self.mask_stems(video))]

    def load_gt(self, task: VideoTask) -> _VideoGT:
        return _VideoGT(task.video, self.mask_dir(task.video))

    def prediction_relpath(self, query: Query, frame: str) -> str:
        return f"{query.video}/{frame}{MASK_EXT}"

    # --- scoring (runs in workers) -----------------------------------------------------------
    def score_task(self, task: VideoTask, reader, allow_missing: bool = False) -> TaskResult:
        """Decode a video's masks and predictions once; per-frame class counts and VC windows."""
        query = task.queries[0]
        gt = self.load_gt(task)
        problems: list[Problem] = []
        gts, preds, missing = [], [], 0
        for frame in query.frames:
            try:
                labels = gt.classes(frame)
            except MaskError as exc:
                problems.append(Problem(exc.path, exc.what))
                continue
            if gts and labels.shape != gts[0].shape:
                problems.append(Problem(str(gt.mask_dir / f"{frame}{MASK_EXT}"),
                                        f"size {labels.shape[1]}x{labels.shape[0]} (WxH) differs "
                                        f"from the video's {gts[0].shape[1]}x{gts[0].shape[0]}"))
                continue
            relpath = self.prediction_relpath(query, frame)
            try:
                data = reader.read_bytes(relpath)
            except MaskError as exc:
                problems.append(Problem(exc.path, exc.what))
                continue
            if data is None:
                missing += 1  # reported by the presence check (or below)
                continue
            pred = _prediction(reader, relpath, data, labels, problems)
            if pred is not None:
                gts.append(labels)
                preds.append(pred)
        if missing and allow_missing:
            problems.append(Problem(reader.describe(query.video), f"{missing} missing "
                                    "prediction(s): every mask frame needs one (--allow-missing "
                                    "does not apply to vspw-semantic)"))
        if problems or len(gts) != len(query.frames):
            return TaskResult([], problems, missing, dict(gt.digests))
        return TaskResult(self._rows(query, gts, preds), [], 0, dict(gt.digests))

    def _rows(self, query: Query, gts: list[np.ndarray], preds: list[np.ndarray]) -> list[dict]:
        gt_stack, pred_stack = np.stack(gts), np.stack(preds)
        gt_runs, pred_runs = constant_runs(gt_stack), constant_runs(pred_stack)
        windows = {n: window_counts(gt_runs, pred_runs, n) for n in VC_WINDOWS}
        rows = []
        for t, frame in enumerate(query.frames):
            inter, gt_px, pred_px = frame_counts(gt_stack[t], pred_stack[t])
            present = np.flatnonzero(gt_px | pred_px)
            row = {"unit": query.unit, "video": query.video, "query_id": query.query_id,
                   "frame": frame, "t": t,
                   "labelled": int(gt_px.sum()), "correct": int(inter.sum()),
                   "classes": json.dumps({int(c): [int(inter[c]), int(gt_px[c]), int(pred_px[c])]
                                          for c in present}),
                   "pred_missing": False}
            for n, counts in windows.items():
                num, den = counts[t] if t < len(counts) else (None, None)
                row[f"vc{n}_num"], row[f"vc{n}_den"] = num, den
            rows.append(row)
        return rows

    # --- protocol ----------------------------------------------------------------------------
    def unit_scores(self, frames: pd.DataFrame) -> pd.DataFrame:
        rows = []
        for unit, group in frames.groupby("unit", sort=False):
            row = {"unit": unit, "n_frames": int(len(group)), "missing_frames": 0,
                   "mIoU": confusion_measures(*class_totals(group["classes"]))["mIoU"]}
            for n in VC_WINDOWS:
                row[f"VC{n}"] = vc_score(group, n)
            rows.append(row)
        return pd.DataFrame(rows)

    def aggregate(self, frames: pd.DataFrame, units: pd.DataFrame) -> tuple[dict, dict]:
        order = {video: i for i, video in enumerate(self.video_ids())}
        frames = frames.assign(_video=frames["video"].map(order)).sort_values(
            ["_video", "t"], kind="stable")
        inter, gt_px, pred_px = class_totals(frames["classes"])
        metrics = confusion_measures(inter, gt_px, pred_px)
        for n in VC_WINDOWS:
            metrics[f"VC{n}"] = vc_score(frames, n)
            metrics[f"VC{n}_windows"] = int(frames[f"vc{n}_den"].notna().sum())
        names = self.class_names()
        with np.errstate(divide="ignore", invalid="ignore"):
            iou = inter / (gt_px + pred_px - inter)
        classes = pd.DataFrame({"class_id": np.arange(N_CLASSES),
                                "class": [names.get(c, "") for c in range(N_CLASSES)],
                                "IoU": iou, "gt_pixels": gt_px, "pred_pixels": pred_px,
                                "intersection": inter})
        return metrics, {"classes": classes[(gt_px > 0) | (pred_px > 0)].reset_index(drop=True),
                         "videos": units[["unit", "video", "n_frames", "mIoU", "VC8", "VC16"]]}

    def notes(self) -> list[str]:
        return ["GT mapped as the VSPW README prescribes (0 others and 255 void -> unlabeled, "
                "k -> k - 1); the official scripts expect a GT folder already converted so",
                "VC_n pools windows of all videos with more than n frames (videos with fewer "
                "contribute none); the last full window of each video is omitted, as in "
                "VC_perclip.py"]


def _prediction(reader, relpath: str, data: bytes, labels: np.ndarray,
                problems: list[Problem]) -> np.ndarray | None:
    """The class-id map in ``data``, or None with a problem appended."""
    try:
        pred = read_mask_bytes(data, reader.describe(relpath))
    except MaskError as exc:
        problems.append(Problem(exc.path, exc.what))
        return None
    if pred.shape != labels.shape:
        problems.append(Problem(reader.describe(relpath),
                                f"size {pred.shape[1]}x{pred.shape[0]} (WxH), expected "
                                f"{labels.shape[1]}x{labels.shape[0]}"))
        return None
    bad = np.unique(pred[(labels < N_CLASSES) & (pred >= N_CLASSES)])
    if bad.size:
        problems.append(Problem(reader.describe(relpath),
                                f"class id(s) {', '.join(map(str, bad[:5]))} outside "
                                f"0..{N_CLASSES - 1} on labelled pixels (the official confusion "
                                "matrix would count them in another class)"))
        return None
    return pred


def class_totals(classes: pd.Series) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Summed per-class (intersection, GT, prediction) pixel counts of per-frame rows."""
    totals = np.zeros((3, N_CLASSES), np.int64)
    for entry in classes:
        for cls, counts in json.loads(entry).items():
            totals[:, int(cls)] += counts
    return totals[0], totals[1], totals[2]


def confusion_measures(inter: np.ndarray, gt_px: np.ndarray, pred_px: np.ndarray) -> dict:
    """``utils.Evaluator`` measures from the matrix's diagonal, row sums and column sums.

    Every count is an exact integer in float64, so these are the official float operations.
    """
    diag, rows, cols = (a.astype(np.float64) for a in (inter, gt_px, pred_px))
    total = rows.sum()
    with warnings.catch_warnings(), np.errstate(divide="ignore", invalid="ignore"):
        warnings.simplefilter("ignore", RuntimeWarning)
        iou = diag / (rows + cols - diag)
        present = rows > 0
        freq = rows / total
        return {"mIoU": float(np.nansum(iou * present) / present.sum()),
                "pixel_acc": float(diag.sum() / total),
                "class_acc": float(np.nanmean(diag / rows)),
                "fwIoU": float((freq[freq > 0] * iou[freq > 0]).sum()),
                "n_classes": int(present.sum())}


def vc_score(frames: pd.DataFrame, n: int) -> float:
    """``np.nanmean`` of the window accuracies of ``frames`` (in their order)."""
    windows = frames[frames[f"vc{n}_den"].notna()]
    num = windows[f"vc{n}_num"].to_numpy(np.float64)
    den = windows[f"vc{n}_den"].to_numpy(np.float64)
    with warnings.catch_warnings(), np.errstate(divide="ignore", invalid="ignore"):
        warnings.simplefilter("ignore", RuntimeWarning)
        return float(np.nanmean(num / den)) if len(num) else float("nan")
