"""Frame scenes for F: the classes where real predictions live (issue 13), at any frame size.

Each generator returns ``(gt, pred, void)`` bool arrays (void may be None). Used by the exactness
tests (against the literal davis2017 transcription) and by ``benchmarks/bench_all.py``.
"""
from __future__ import annotations

import cv2
import numpy as np


def blob(rng: np.random.Generator, shape: tuple[int, int], cy: float, cx: float, ry: float,
         rx: float) -> np.ndarray:
    """A wobbly ellipse (its boundary is a long closed curve)."""
    height, width = shape
    yy, xx = np.mgrid[:height, :width]
    wobble = 1 + 0.15 * np.sin(3 * np.arctan2(yy - cy, xx - cx) + rng.uniform(0, 6.28))
    return ((yy - cy) / ry) ** 2 + ((xx - cx) / rx) ** 2 <= wobble ** 2


def _large(rng, shape):
    h, w = shape
    cy, cx = rng.uniform(0.4, 0.6) * h, rng.uniform(0.4, 0.6) * w
    ry, rx = rng.uniform(0.2, 0.3) * h, rng.uniform(0.18, 0.25) * w
    gt = blob(rng, shape, cy, cx, ry, rx)
    pred = blob(rng, shape, cy + rng.uniform(-0.02, 0.02) * h, cx + rng.uniform(-0.02, 0.02) * w,
                ry * rng.uniform(0.95, 1.05), rx * rng.uniform(0.95, 1.05))
    return gt, pred


def large_close(rng, shape):
    gt, pred = _large(rng, shape)
    return gt, pred, None


def large_ignore(rng, shape):
    gt, pred = _large(rng, shape)
    h, w = shape
    void = np.zeros(shape, bool)
    for _ in range(2):  # Ignore regions crossing the object's boundary
        y0, x0 = int(rng.uniform(0.2, 0.6) * h), int(rng.uniform(0.2, 0.6) * w)
        void[y0:y0 + int(0.15 * h), x0:x0 + int(0.2 * w)] = True
    return gt, pred, void


def thin(rng, shape):
    """Wires, ropes, poles: 1-3 px wide curves, the boundary is as large as the mask."""
    h, w = shape
    gt = np.zeros(shape, np.uint8)
    pred = np.zeros(shape, np.uint8)
    for _ in range(6):
        points = np.stack([rng.uniform(0, w, 5), rng.uniform(0, h, 5)], axis=1)
        width = int(rng.integers(1, 4))
        cv2.polylines(gt, [points.astype(np.int32)], False, 1, width)
        shifted = points + rng.uniform(-4, 4, 2)
        cv2.polylines(pred, [shifted.astype(np.int32)], False, 1, width)
    return gt.astype(bool), pred.astype(bool), None


def speckled(rng, shape):
    """A close prediction with salt-and-pepper noise over the whole frame."""
    gt, pred = _large(rng, shape)
    return gt, pred ^ (rng.random(shape) < rng.uniform(0.005, 0.03)), None


def small(rng, shape):
    h, w = shape
    cy, cx = rng.uniform(0.1, 0.9) * h, rng.uniform(0.1, 0.9) * w
    ry, rx = rng.uniform(0.02, 0.05) * h, rng.uniform(0.02, 0.05) * w
    gt = blob(rng, shape, cy, cx, ry, rx)
    pred = blob(rng, shape, cy + rng.uniform(-2, 2), cx + rng.uniform(-2, 2), ry, rx)
    return gt, pred, None


def far(rng, shape):
    h, w = shape
    gt = blob(rng, shape, 0.25 * h, 0.25 * w, 0.1 * h, 0.1 * w)
    return gt, blob(rng, shape, 0.75 * h, 0.75 * w, 0.1 * h, 0.1 * w), None


def two_objects(rng, shape):
    a, pa, _ = small(rng, shape)
    b, pb, _ = large_close(rng, shape)
    return a | b, pa | pb, None


def empty(rng, shape):
    return np.zeros(shape, bool), np.zeros(shape, bool), None


SCENES = {"large blob, close": large_close, "large blob + Ignore": large_ignore,
          "thin structures": thin, "speckled": speckled, "small object": small}
MIX = {**SCENES, "far prediction": far, "two objects": two_objects, "empty": empty}
"""The mix of 8 scene kinds."""
