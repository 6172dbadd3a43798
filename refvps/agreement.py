"""Inter-annotator agreement: mIoU between two Ref-VPS-format annotations of the same clips.

Per annotated frame, the foreground of each annotator is every label other than 0 and 255
(Ref-VPS has one target per clip). Pixels that EITHER annotator marked Ignore (255) are removed
from both the intersection and the union (``region_counts`` with void = Ignore_A | Ignore_B), so
a pixel one annotator found too ambiguous to label never counts as a disagreement. A frame where
both masks are empty outside that void scores 1 (the DAVIS convention). A clip's IoU is the mean
over its annotated frames; the overall mIoU is the mean over clips (``frame_mean`` pools frames).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from refvps.errors import MaskError, Problem, ValidationError
from refvps.formats import ANNOTATION_DIR, IGNORE_LABEL
from refvps.metrics import region_counts


def _foreground(labels: np.ndarray) -> np.ndarray:
    return (labels != 0) & (labels != IGNORE_LABEL)


def frame_iou(labels_a: np.ndarray, labels_b: np.ndarray) -> tuple[float, int, int]:
    """(IoU, intersection, union) of two label maps with the Ignore of either excluded."""
    void = (labels_a == IGNORE_LABEL) | (labels_b == IGNORE_LABEL)
    inter, union = region_counts(_foreground(labels_a), _foreground(labels_b), void)
    return (1.0 if union == 0 else inter / union), inter, union


def agreement(root_a: str | Path, root_b: str | Path) -> tuple[pd.DataFrame, dict]:
    """Per-frame rows (clip, frame, iou, intersection, union) and a summary dict.

    Only clips present in both datasets are compared; their annotated frames must match.
    """
    from refvps.annotate.export import dataset_folder
    from refvps.loaders.refvps import RefVPS
    from refvps.masks import read_mask

    bench_a, bench_b = RefVPS(dataset_folder(root_a)), RefVPS(dataset_folder(root_b))
    problems = bench_a.validate() + bench_b.validate()
    meta_a, meta_b = bench_a.meta, bench_b.meta
    common = sorted(set(meta_a) & set(meta_b))
    if not common and not problems:
        problems.append(Problem(f"{bench_a.root} / {bench_b.root}", "no clip in common"))
    rows = []
    for clip in common:
        frames_a = [str(f) for f in meta_a[clip].get("anno_frames", [])]
        frames_b = [str(f) for f in meta_b[clip].get("anno_frames", [])]
        if frames_a != frames_b:
            problems.append(Problem(clip, f"annotated frames differ ({len(frames_a)} in A, "
                                          f"{len(frames_b)} in B)"))
            continue
        for frame in frames_a:
            try:
                labels_a = read_mask(bench_a.root / ANNOTATION_DIR / clip / f"{frame}.png")
                labels_b = read_mask(bench_b.root / ANNOTATION_DIR / clip / f"{frame}.png")
            except MaskError as exc:
                problems.append(Problem(exc.path, exc.what))
                continue
            if labels_a.shape != labels_b.shape:
                problems.append(Problem(f"{clip}/{frame}", f"sizes differ: {labels_a.shape} "
                                                           f"vs {labels_b.shape}"))
                continue
            iou, inter, union = frame_iou(labels_a, labels_b)
            rows.append({"clip": clip, "frame": frame, "iou": iou, "intersection": inter,
                         "union": union})
    if problems:
        raise ValidationError("agreement", problems)
    frames = pd.DataFrame(rows, columns=["clip", "frame", "iou", "intersection", "union"])
    clips = frames.groupby("clip", sort=True)["iou"].mean()
    summary = {"clips": int(len(clips)), "frames": int(len(frames)),
               "miou": float(clips.mean()), "frame_mean": float(frames["iou"].mean()),
               "per_clip": {k: float(v) for k, v in clips.items()},
               "only_in_a": sorted(set(meta_a) - set(meta_b)),
               "only_in_b": sorted(set(meta_b) - set(meta_a))}
    return frames, summary
