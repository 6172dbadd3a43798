"""A Ref-YouTube-VOS fixture (dataset-formats §9.2) built in code.

Train video ``0a1b2c3d4e`` (31 x 45, frames 00000 / 00005 / 00010): object 1 everywhere, object 2
only on 00010, object 3 listed in meta.json but never present; expressions "0" and "1" -> obj
"1", "3" -> obj "2" (gap at "2"). Train video ``1b2c3d4e5f`` (29 x 17, two frames): object 1.
Valid: ``f0e1d2c3b4`` (29 x 17) in the valid meta only; ``9a8b7c6d5e`` (31 x 45) in both valid
and test meta, so it belongs to the test split.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from PIL import Image

from refvps.formats import voc_palette

A, B = (31, 45), (29, 17)
TRAIN = {
    # video: (size, frames, {obj_id: {frame: rect}}, {exp_id: (text, obj_id)})
    "0a1b2c3d4e": (A, ["00000", "00005", "00010"],
                   {1: {"00000": (3, 13, 4, 14), "00005": (4, 14, 6, 16), "00010": (5, 15, 8, 18)},
                    2: {"00010": (20, 28, 25, 40)}},
                   {"0": ("  A  Penguin\tON the left ", "1"),
                    "1": ("the penguin in front", "1"),
                    "3": ("a seal appearing at the end", "2")}),
    "1b2c3d4e5f": (B, ["00000", "00005"],
                   {1: {"00000": (2, 20, 3, 12), "00005": (4, 22, 3, 12)}},
                   {"0": ("the tall cat", "1")}),
}
VALID = {"f0e1d2c3b4": (B, ["00000", "00005"], {"0": "a dog", "2": "the dog  running"})}
TEST = {"9a8b7c6d5e": (A, ["00000", "00005"], {"0": "a boat"})}


def rect_mask(size, rect) -> np.ndarray:
    mask = np.zeros(size, bool)
    if rect is not None:
        top, bottom, left, right = rect
        mask[top:bottom, left:right] = True
    return mask


def gt_mask(video: str, obj_id: str, frame: str) -> np.ndarray:
    size, _frames, objects, _exps = TRAIN[video]
    return rect_mask(size, objects.get(int(obj_id), {}).get(frame))


def _write_jpegs(folder: Path, size, frames, v_index: int) -> None:
    folder.mkdir(parents=True)
    for t, frame in enumerate(frames):
        image = np.zeros((*size, 3), np.uint8)
        image[...] = (20 * t, 7 * v_index, 128)
        Image.fromarray(image).save(folder / f"{frame}.jpg", quality=95)


def _write_meta(path: Path, videos: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"videos": videos}))


def build_ytvos(root: Path) -> Path:
    """Write ``root/ref-youtube-vos`` and return it."""
    base = root / "ref-youtube-vos"
    train_meta, objects_meta = {}, {}
    for v_index, (video, (size, frames, objects, exps)) in enumerate(TRAIN.items()):
        train_meta[video] = {"expressions": {e: {"exp": text, "obj_id": obj}
                                             for e, (text, obj) in exps.items()},
                             "frames": frames}
        objects_meta[video] = {"objects": {str(o): {"category": "penguin" if o == 1 else "seal",
                                                    "frames": sorted(rects)}
                                           for o, rects in objects.items()}}
        if video == "0a1b2c3d4e":
            objects_meta[video]["objects"]["3"] = {"category": "fish", "frames": []}
        _write_jpegs(base / "train" / "JPEGImages" / video, size, frames, v_index)
        annotations = base / "train" / "Annotations" / video
        annotations.mkdir(parents=True)
        for frame in frames:
            labels = np.zeros(size, np.uint8)
            for obj, rects in objects.items():
                labels[rect_mask(size, rects.get(frame))] = obj
            image = Image.fromarray(labels, mode="L").convert("P")
            image.putpalette(voc_palette().ravel().tolist())
            image.save(annotations / f"{frame}.png")
    _write_meta(base / "meta_expressions" / "train" / "meta_expressions.json", train_meta)
    (base / "train" / "meta.json").write_text(json.dumps({"videos": objects_meta}))
    valid_meta, test_meta = {}, {}
    for v_index, (video, (size, frames, exps)) in enumerate({**VALID, **TEST}.items()):
        record = {"expressions": {e: {"exp": text} for e, text in exps.items()}, "frames": frames}
        valid_meta[video] = record
        if video in TEST:
            test_meta[video] = record
        _write_jpegs(base / "valid" / "JPEGImages" / video, size, frames, v_index)
    _write_meta(base / "meta_expressions" / "valid" / "meta_expressions.json", valid_meta)
    _write_meta(base / "meta_expressions" / "test" / "meta_expressions.json", test_meta)
    return base


def write_train_predictions(out: Path, transform=lambda m: m) -> Path:
    for video, (_size, frames, _objects, exps) in TRAIN.items():
        for exp_id, (_text, obj_id) in exps.items():
            for frame in frames:
                path = out / video / exp_id / f"{frame}.png"
                path.parent.mkdir(parents=True, exist_ok=True)
                mask = transform(gt_mask(video, obj_id, frame))
                Image.fromarray(mask.astype(np.uint8) * 255).save(path)
    return out
