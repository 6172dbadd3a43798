"""A classical backend needing no torch: GrabCut from clicks, DIS optical flow for tracking.

A click segments only a region around the prompts, shrunk so that GrabCut works on at most
``work_side`` pixels a side (the shrunk frames are cached, so further clicks reuse them); the
region grows while the mask runs into its edge. That keeps a click under 300 ms at 720p.

Weak on real footage compared with SAM2, but it runs anywhere and gives the annotator a first
mask to refine with the brush.
"""
from __future__ import annotations

from pathlib import Path
from typing import Iterator

import cv2
import numpy as np

from refvps.annotate.backends import Backend


def _disk(mask: np.ndarray, x: float, y: float, radius: int, value: int) -> None:
    cv2.circle(mask, (int(round(x)), int(round(y))), radius, int(value), -1)


def _region(core: tuple[float, float, float, float], margin: float, h: int,
            w: int) -> tuple[int, int, int, int]:
    """``core`` (x0, y0, x1, y1) grown by ``margin`` on every side, clipped to the frame."""
    x0, y0, x1, y1 = core
    return (max(0, int(x0 - margin)), max(0, int(y0 - margin)),
            min(w, int(np.ceil(x1 + margin)) + 1), min(h, int(np.ceil(y1 + margin)) + 1))


class OpenCVBackend(Backend):
    name = "opencv"
    grabcut_iterations = 4
    work_side = 256
    """GrabCut runs on the region around the prompts shrunk to at most this many pixels a side."""

    def __init__(self) -> None:
        self._frames: list[Path] = []
        self._images: dict[int, np.ndarray] = {}
        self._masks: dict[int, np.ndarray] = {}
        self._small: dict[tuple[int, int], np.ndarray] = {}
        self._flow = None

    def open(self, frames: list[Path]) -> None:
        self._frames = list(frames)
        self._images.clear()
        self._small.clear()
        self._masks.clear()

    def _image(self, k: int) -> np.ndarray:
        image = self._images.get(k)
        if image is None:
            image = cv2.imread(str(self._frames[k]), cv2.IMREAD_COLOR)
            if image is None:
                raise OSError(f"{self._frames[k]}: unreadable frame")
            self._images[k] = image
        return image

    def _scaled(self, k: int, factor: int) -> np.ndarray:
        """Frame ``k`` shrunk by an integer ``factor`` (cached: every click on it reuses it)."""
        key = (k, factor)
        image = self._small.get(key)
        if image is None:
            full = self._image(k)
            h, w = full.shape[:2]
            image = full if factor == 1 else cv2.resize(
                full, (max(1, w // factor), max(1, h // factor)), interpolation=cv2.INTER_AREA)
            self._small[key] = image
        return image

    def prepare(self, k: int) -> None:
        self._scaled(k, 1)

    def click(self, k: int, points: np.ndarray, labels: np.ndarray,
              box: np.ndarray | None = None) -> np.ndarray:
        image = self._image(k)
        h, w = image.shape[:2]
        points = np.asarray(points, float).reshape(-1, 2)
        labels = np.asarray(labels, int).reshape(-1)
        if not (labels == 1).any() and box is None:
            mask = np.zeros((h, w), bool)
            self._masks[k] = mask
            return mask
        if box is not None:
            x0, y0, x1, y1 = (float(v) for v in box)
            margin = max(8.0, 0.15 * max(x1 - x0, y1 - y0))
            core = (x0, y0, x1, y1)
        else:
            positives = points[labels == 1]
            margin = max(2.0 * max(4, min(h, w) // 8), 0.2 * max(h, w))
            core = (*positives.min(axis=0), *positives.max(axis=0))
        for _ in range(3):  # grow the region while the mask runs into its edge
            roi = _region(core, margin, h, w)
            mask, touches = self._grabcut_region(k, roi, points, labels, box)
            if not touches:
                break
            margin *= 2
        mask = self._keep_clicked_components(mask, points[labels == 1])
        self._masks[k] = mask
        return mask

    def _grabcut_region(self, k: int, roi: tuple[int, int, int, int], points: np.ndarray,
                        labels: np.ndarray, box: np.ndarray | None) -> tuple[np.ndarray, bool]:
        """GrabCut on ``roi`` at a reduced scale; the full-size mask, and whether the mask
        reaches an edge of ``roi`` that is not an edge of the frame."""
        h, w = self._image(k).shape[:2]
        x0, y0, x1, y1 = roi
        factor = max(1, int(np.ceil(max(x1 - x0, y1 - y0) / self.work_side)))
        small = self._scaled(k, factor)
        sx0, sy0 = x0 // factor, y0 // factor
        sx1, sy1 = max(sx0 + 1, x1 // factor), max(sy0 + 1, y1 // factor)
        crop = small[sy0:sy1, sx0:sx1]
        seeds = np.full(crop.shape[:2], cv2.GC_PR_BGD, np.uint8)
        near = max(1, max(2, min(h, w) // 60) // factor)
        far = max(2, max(4, min(h, w) // 8) // factor)

        def at(x: float, y: float) -> tuple[float, float]:
            return x / factor - sx0, y / factor - sy0

        if box is not None:
            bx0, by0 = at(box[0], box[1])
            bx1, by1 = at(box[2], box[3])
            seeds[:] = cv2.GC_BGD
            seeds[max(int(round(by0)), 0):max(int(round(by1)), 0) + 1,
                  max(int(round(bx0)), 0):max(int(round(bx1)), 0) + 1] = cv2.GC_PR_FGD
        else:  # without a box, a wide probable-foreground disk around each positive
            for x, y in points[labels == 1]:
                _disk(seeds, *at(x, y), far, cv2.GC_PR_FGD)
        for (x, y), label in zip(points, labels):
            _disk(seeds, *at(x, y), near, cv2.GC_FGD if label == 1 else cv2.GC_BGD)
        if not (seeds == cv2.GC_BGD).any() and not (seeds == cv2.GC_PR_BGD).any():
            small_mask = seeds != cv2.GC_BGD
        else:
            bgd, fgd = np.zeros((1, 65), np.float64), np.zeros((1, 65), np.float64)
            cv2.grabCut(np.ascontiguousarray(crop), seeds, None, bgd, fgd,
                        self.grabcut_iterations, cv2.GC_INIT_WITH_MASK)
            small_mask = (seeds == cv2.GC_FGD) | (seeds == cv2.GC_PR_FGD)
        touches = ((small_mask[0].any() and y0 > 0) or (small_mask[-1].any() and y1 < h)
                   or (small_mask[:, 0].any() and x0 > 0) or (small_mask[:, -1].any() and x1 < w))
        mask = np.zeros((h, w), bool)
        if factor == 1:
            mask[y0:y0 + small_mask.shape[0], x0:x0 + small_mask.shape[1]] = small_mask
        else:
            up = cv2.resize(small_mask.astype(np.float32), (x1 - x0, y1 - y0),
                            interpolation=cv2.INTER_LINEAR)
            mask[y0:y1, x0:x1] = up >= 0.5
        return mask, touches

    @staticmethod
    def _keep_clicked_components(mask: np.ndarray, positives: np.ndarray) -> np.ndarray:
        if not len(positives) or not mask.any():
            return mask
        count, components = cv2.connectedComponents(mask.astype(np.uint8), connectivity=8)
        h, w = mask.shape
        keep = {int(components[min(max(int(round(y)), 0), h - 1), min(max(int(round(x)), 0), w - 1)])
                for x, y in positives}
        keep.discard(0)
        return np.isin(components, list(keep)) if keep else mask

    def set_mask(self, k: int, mask: np.ndarray) -> None:
        self._masks[k] = np.asarray(mask, bool).copy()

    def clear(self, k: int) -> None:
        self._masks.pop(k, None)

    def _warp(self, mask: np.ndarray, source: int, target: int) -> np.ndarray:
        if self._flow is None:
            self._flow = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM)
        target_gray = cv2.cvtColor(self._image(target), cv2.COLOR_BGR2GRAY)
        source_gray = cv2.cvtColor(self._image(source), cv2.COLOR_BGR2GRAY)
        flow = self._flow.calc(target_gray, source_gray, None)  # target pixel -> source position
        h, w = mask.shape
        grid_x, grid_y = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))
        warped = cv2.remap(mask.astype(np.float32), grid_x + flow[..., 0], grid_y + flow[..., 1],
                           cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=0)
        return warped >= 0.5

    def _refine(self, mask: np.ndarray, k: int) -> np.ndarray:
        """Snap a warped mask to the frame's colours: GrabCut in a band around its contour."""
        area = int(mask.sum())
        if area < 16:
            return mask
        reach = max(3, int(0.25 * np.sqrt(area)))
        kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * reach + 1, 2 * reach + 1))
        grown = cv2.dilate(mask.astype(np.uint8), kernel) > 0
        core = cv2.erode(mask.astype(np.uint8), kernel) > 0
        seeds = np.full(mask.shape, cv2.GC_BGD, np.uint8)
        seeds[grown] = cv2.GC_PR_BGD
        seeds[mask] = cv2.GC_PR_FGD
        seeds[core] = cv2.GC_FGD
        if not (seeds == cv2.GC_BGD).any():
            return mask
        bgd, fgd = np.zeros((1, 65), np.float64), np.zeros((1, 65), np.float64)
        cv2.grabCut(self._image(k), seeds, None, bgd, fgd, 2, cv2.GC_INIT_WITH_MASK)
        refined = (seeds == cv2.GC_FGD) | (seeds == cv2.GC_PR_FGD)
        return refined if refined.any() else mask

    def propagate(self, start: int, reverse: bool, steps: int) -> Iterator[tuple[int, np.ndarray]]:
        if start not in self._masks:
            raise ValueError(f"frame {start} has no prompt to propagate from")
        step = -1 if reverse else 1
        current = self._masks[start]
        k = start
        for _ in range(steps):
            target = k + step
            if not 0 <= target < len(self._frames):
                return
            current = self._refine(self._warp(current, k, target), target)
            self._masks[target] = current
            k = target
            yield k, current

    def describe(self) -> dict:
        return {"backend": self.name, "opencv": cv2.__version__,
                "click": f"GrabCut x{self.grabcut_iterations} seeded by clicks/box, on the region "
                         f"around them at <= {self.work_side} px a side",
                "propagate": "DIS optical flow (medium preset) mask warping + GrabCut band refinement"}
