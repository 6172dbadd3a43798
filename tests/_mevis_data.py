"""A MeViS-layout fixture (dataset-formats §9.4) built in code, and prediction writers.

Masks are axis-aligned rectangles ``(top, bottom, left, right)`` (bottom / right exclusive);
RLEs are encoded with pycocotools directly. Sizes are odd and non-square: A = 31 x 45 (H x W),
B = 29 x 17.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from PIL import Image
from pycocotools import mask as mask_utils

A, B = (31, 45), (29, 17)
EMPTY_RLE = "empty"  # marker: an RLE of the all-zero mask (not null)

# split -> video -> (size, n_frames, {anno_id: [rect | None | EMPTY_RLE per frame]},
#                    {exp_id: (text, obj_ids, anno_ids)})
SPEC = {
    "train": {
        "0ab4afe7fb46": (A, 3, {7: [(2, 12, 3, 20), (3, 13, 5, 22), (4, 14, 7, 24)]},
                         {"0": ("the bird flying away", [0], [7])}),
        "1cd2e3f4a5b6": (B, 1, {8: [(5, 15, 2, 10)]},
                         {"0": ("a cat", [0], [8])}),
    },
    "valid_u": {
        "5f4e3d2c1b0a": (B, 4, {
            0: [(2, 10, 3, 9), (3, 11, 3, 9), None, (4, 12, 4, 10)],
            1: [(15, 25, 5, 14), (8, 18, 6, 14), EMPTY_RLE, (16, 26, 5, 12)],
            2: [None, None, None, None]},
            {"0": ("  The Bird\tflying  AWAY ", [0], [0]),
             "1": ("birds moving together", [0, 1], [0, 1]),
             "2": ("the elephant that is not there", [], []),
             "4": ("the hidden fish", [2], [2])}),
        "9e8d7c6b5a4f": (A, 3, {5: [(4, 20, 10, 30), (5, 21, 12, 32), (6, 22, 14, 34)]},
                         {"0": ("the moving box", [0], [5]),
                          "1": ("box sliding right", [0], [5])}),
    },
    "valid": {
        "abcdefabcdef": (A, 2, {}, {"0": ("a dog running", None, None),
                                    "1": ("the dog  on the left", None, None)}),
    },
}


def rect_mask(size: tuple[int, int], rect) -> np.ndarray:
    mask = np.zeros(size, np.uint8)
    if isinstance(rect, tuple):
        top, bottom, left, right = rect
        mask[top:bottom, left:right] = 1
    return mask


def gt_union(split: str, video: str, exp_id: str, t: int) -> np.ndarray:
    """The expected GT of an expression on frame t (a bool mask), from the spec."""
    size, _n, objects, expressions = SPEC[split][video]
    fg = np.zeros(size, bool)
    for anno in expressions[exp_id][2] or []:
        fg |= rect_mask(size, objects[anno][t]).astype(bool)
    return fg


def _rle(size, rect):
    if rect is None:
        return None
    rle = mask_utils.encode(np.asfortranarray(rect_mask(size, rect)))
    return {"size": [int(v) for v in rle["size"]], "counts": rle["counts"].decode("ascii")}


def frames_of(n: int) -> list[str]:
    return [f"{t:05d}" for t in range(n)]


def build_mevis(root: Path) -> Path:
    """Write ``root/mevis`` and return it."""
    mevis = root / "mevis"
    for split, videos in SPEC.items():
        split_dir = mevis / split
        meta, mask_dict = {"videos": {}}, {}
        for v_index, (video, (size, n, objects, expressions)) in enumerate(videos.items()):
            record = {"expressions": {}, "vid_id": v_index, "frames": frames_of(n)}
            for exp_id, (text, obj_ids, anno_ids) in expressions.items():
                record["expressions"][exp_id] = {"exp": text}
                if obj_ids is not None:
                    record["expressions"][exp_id].update(obj_id=obj_ids, anno_id=anno_ids)
            meta["videos"][video] = record
            for anno, rects in objects.items():
                mask_dict[str(anno)] = [_rle(size, (0, 0, 0, 0) if r == EMPTY_RLE else r)
                                        for r in rects]
            jpeg_dir = split_dir / "JPEGImages" / video
            jpeg_dir.mkdir(parents=True)
            for t, frame in enumerate(frames_of(n)):
                image = np.zeros((*size, 3), np.uint8)
                image[...] = (20 * t, 7 * v_index, 128)
                Image.fromarray(image).save(jpeg_dir / f"{frame}.jpg", quality=95)
        (split_dir / "meta_expressions.json").write_text(json.dumps(meta))
        if split != "valid":
            (split_dir / "mask_dict.json").write_text(json.dumps(mask_dict))
    return mevis


def shift_right(mask: np.ndarray) -> np.ndarray:
    out = np.zeros_like(mask)
    out[:, 1:] = mask[:, :-1]
    return out


def write_predictions(out: Path, split: str, transform=lambda m: m, skip=()) -> Path:
    """``out/<video>/<exp_id>/<frame>.png`` (L, 0/255) of transform(GT); ``skip`` = relpaths."""
    for video, (_size, n, _objects, expressions) in SPEC[split].items():
        for exp_id in expressions:
            for t, frame in enumerate(frames_of(n)):
                rel = f"{video}/{exp_id}/{frame}.png"
                if any(rel.startswith(s) for s in skip):
                    continue
                path = out / rel
                path.parent.mkdir(parents=True, exist_ok=True)
                mask = transform(gt_union(split, video, exp_id, t))
                Image.fromarray(mask.astype(np.uint8) * 255).save(path)
    return out
