"""A tiny Ref-VPS (refvps-format 0.1) dataset built in code, after dataset-formats §9.7.

Every expected score below is computed by hand in the docstrings of the tests that use it.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from PIL import Image

from refvps.formats import IGNORE_LABEL, voc_palette

A = (31, 45)  # landscape (H, W)
B = (29, 17)  # portrait


def _labels(shape, target=None, ignore=()):
    labels = np.zeros(shape, np.uint8)
    if target is not None:
        y0, y1, x0, x1 = target
        labels[y0:y1, x0:x1] = 1
    for y0, y1, x0, x1 in ignore:
        labels[y0:y1, x0:x1] = IGNORE_LABEL
    return labels


# clip -> (shape, n_frames, {anno frame: (target box or None, ignore boxes)})
CLIPS = {
    "vps_0001": (A, 9, {"00000": (None, ()),
                        "00004": ((10, 20, 10, 25), ((10, 20, 25, 30),)),
                        "00008": ((5, 15, 5, 15), ((4, 5, 5, 15),))}),
    "vps_0002": (B, 6, {"00000": (None, ((0, 5, 0, 17),)),
                        "00004": ((10, 20, 4, 12), ())}),
}

EXPRESSIONS = {
    "vps_0001": ["the wax melting down the candle", "the candle that melts",
                 "the café steam rising", "the white wax on the left of the table that slowly "
                 "melts and drips down the side of the candle while the flame keeps burning "
                 "and the room gets darker and darker as the evening goes on"],
    "vps_0002": ["the ice forming", "the frost", "the growing ice", "the ice on the window"],
}


def gt_box(clip: str, frame: str):
    return CLIPS[clip][2].get(frame, (None, ()))[0]


def write_png_labels(path: Path, labels: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    image = Image.fromarray(labels)
    image.putpalette(voc_palette().ravel().tolist())
    image.save(path)


def build_refvps(root: Path) -> Path:
    """Write the dataset to ``root/ref-vps`` and return that folder."""
    data = root / "ref-vps"
    data.mkdir(parents=True)
    (data / "FORMAT").write_text("refvps-format 0.1 (proposal)\n")
    (data / "splits").mkdir()
    (data / "splits" / "test.txt").write_text("vps_0001\nvps_0002\n")
    videos = {}
    for clip, (shape, n_frames, annotated) in CLIPS.items():
        frames = [f"{i:05d}" for i in range(n_frames)]
        for i, frame in enumerate(frames):
            jpeg = data / "JPEGImages" / clip / f"{frame}.jpg"
            jpeg.parent.mkdir(parents=True, exist_ok=True)
            Image.new("RGB", (shape[1], shape[0]), (20 * i, 7, 128)).save(jpeg, quality=95)
        for frame, (target, ignore) in annotated.items():
            write_png_labels(data / "Annotations" / clip / f"{frame}.png",
                             _labels(shape, target, ignore))
        videos[clip] = {
            "fps": 24, "anno_fps": 6, "anno_stride": 4, "anno_offset": 0,
            "height": shape[0], "width": shape[1], "frames": frames,
            "anno_frames": sorted(annotated),
            "concept": "wax_candle_melting" if clip == "vps_0001" else "ice_forming",
            "concept_groups": (["temporal_object_changes"] if clip == "vps_0001"
                               else ["temporal_object_changes", "pattern_evolution"]),
            "expressions": {str(k): {"exp": text, "obj_id": [1], "annotator": k // 2,
                                     "exp_idx": k % 2}
                            for k, text in enumerate(EXPRESSIONS[clip])},
        }
    (data / "meta_expressions.json").write_text(
        json.dumps({"format": "refvps-0.1", "videos": videos}, ensure_ascii=False))
    groups = ["temporal_object_changes", "motion_patterns", "dynamic_environmental_changes",
              "interaction_sequences", "pattern_evolution"]
    concepts = {"groups": [{"id": g, "name": g.replace("_", " ").title(), "definition": "..."}
                           for g in groups],
                "concepts": [{"id": "wax_candle_melting", "name": "wax candle melting",
                              "groups": ["temporal_object_changes"]},
                             {"id": "ice_forming", "name": "ice forming",
                              "groups": ["temporal_object_changes", "pattern_evolution"]}]}
    (data / "concepts.json").write_text(json.dumps(concepts))
    return data


def write_predictions(root: Path, dx: int = 0) -> Path:
    """Predictions for every 24 fps frame: the GT target shifted right by ``dx`` columns."""
    for clip, (shape, n_frames, annotated) in CLIPS.items():
        for exp_id in range(4):
            for i in range(n_frames):
                frame = f"{i:05d}"
                mask = np.zeros(shape, np.uint8)
                box = gt_box(clip, frame)
                if box is not None:
                    y0, y1, x0, x1 = box
                    mask[y0:y1, x0 + dx:x1 + dx] = 255
                path = root / clip / str(exp_id) / f"{frame}.png"
                path.parent.mkdir(parents=True, exist_ok=True)
                Image.fromarray(mask).save(path)
    return root
