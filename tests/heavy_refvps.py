"""A Ref-VPS dataset that takes a while to score, built in a second: every annotation and
prediction file is a hard link to one of two large PNGs (the loader and scorer read each link
as the ordinary file it is). Used by the tests that kill a real ``refvps eval`` mid-scoring."""
from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

from tests.refvps_fixture import write_png_labels


def build_heavy(root: Path, clips: int = 24, anno_frames: int = 60,
                size: tuple[int, int] = (720, 1280)) -> tuple[Path, Path]:
    """Write ``root/ref-vps`` and ``root/preds``; return (data root, predictions folder)."""
    data, preds = root / "ref-vps", root / "preds"
    (data / "splits").mkdir(parents=True)
    (data / "FORMAT").write_text("refvps-format 0.1 (proposal)\n")
    h, w = size
    yy, xx = np.mgrid[:h, :w]
    wobble = (np.sin(xx / 7.0) * 9 + np.cos(yy / 5.0) * 9)  # a long, ragged boundary
    radius2 = (yy - h / 2) ** 2 + (xx - w / 2) ** 2 + wobble * 300
    labels = (radius2 < (h / 3) ** 2).astype(np.uint8)
    gt_source, pred_source = root / "gt.png", root / "pred.png"
    write_png_labels(gt_source, labels)
    write_png_labels(pred_source, np.roll(labels, 5, axis=1))
    videos = {}
    for c in range(clips):
        clip = f"vps_{c:04d}"
        frames = [f"{i:05d}" for i in range(4 * anno_frames)]
        annotated = frames[::4]
        for frame in annotated:
            target = data / "Annotations" / clip / f"{frame}.png"
            target.parent.mkdir(parents=True, exist_ok=True)
            os.link(gt_source, target)
            for exp in range(4):
                pred = preds / clip / str(exp) / f"{frame}.png"
                pred.parent.mkdir(parents=True, exist_ok=True)
                os.link(pred_source, pred)
        videos[clip] = {
            "fps": 24, "anno_fps": 6, "anno_stride": 4, "anno_offset": 0, "height": h,
            "width": w, "frames": frames, "anno_frames": annotated, "concept": "lava_flowing",
            "concept_groups": ["motion_patterns"],
            "expressions": {str(k): {"exp": f"the lava flow {k}", "obj_id": [1],
                                     "annotator": k // 2, "exp_idx": k % 2} for k in range(4)},
        }
    (data / "splits" / "test.txt").write_text("".join(f"{c}\n" for c in videos))
    (data / "meta_expressions.json").write_text(json.dumps({"format": "refvps-0.1",
                                                            "videos": videos}))
    groups = ["temporal_object_changes", "motion_patterns", "dynamic_environmental_changes",
              "interaction_sequences", "pattern_evolution"]
    (data / "concepts.json").write_text(json.dumps({
        "groups": [{"id": g, "name": g, "definition": "..."} for g in groups],
        "concepts": [{"id": "lava_flowing", "name": "lava flowing", "groups": ["motion_patterns"]}],
    }))
    return root, preds
