"""A deterministic fake backend for tests: masks from a known ground truth or simple geometry."""
from __future__ import annotations

import time
from pathlib import Path
from typing import Callable, Iterator

import cv2
import numpy as np

from refvps.annotate.backends import Backend


class ScriptedBackend(Backend):
    """``truth(k)`` gives frame ``k``'s true mask; a click inside it returns it exactly.

    Without ``truth`` (or for clicks outside it) a click gives disks of ``radius`` around the
    positive clicks minus disks around the negative ones, a box gives the filled box, and
    propagation copies the previous mask. ``delay`` seconds are slept per propagated frame and
    ``click_delay`` per click, so tests can watch progress, queue clicks and cancel. Every call
    is appended to ``calls``.
    """

    name = "scripted"

    def __init__(self, truth: Callable[[int], np.ndarray] | None = None, radius: int = 6,
                 delay: float = 0.0, size: tuple[int, int] | None = None,
                 click_delay: float = 0.0):
        self.truth = truth
        self.click_delay = click_delay
        self.radius = radius
        self.delay = delay
        self.size = size
        self.n_frames = 0
        self.masks: dict[int, np.ndarray] = {}
        self.calls: list[tuple] = []

    def open(self, frames: list[Path]) -> None:
        self.n_frames = len(frames)
        if self.size is None:
            self.size = cv2.imread(str(frames[0]), cv2.IMREAD_GRAYSCALE).shape[:2]
        self.calls.append(("open", len(frames)))

    def click(self, k, points, labels, box=None):
        self.calls.append(("click", k, len(points), box is not None))
        if self.click_delay:
            time.sleep(self.click_delay)
        points = np.asarray(points, float).reshape(-1, 2)
        labels = np.asarray(labels, int).reshape(-1)
        if self.truth is not None:
            truth = self.truth(k)
            inside = [truth[int(y), int(x)] for (x, y), lab in zip(points, labels) if lab == 1]
            if inside and all(inside):
                self.masks[k] = truth.copy()
                return self.masks[k]
        canvas = np.zeros(self.size, np.uint8)
        if box is not None:
            x0, y0, x1, y1 = (int(round(v)) for v in box)
            canvas[y0:y1 + 1, x0:x1 + 1] = 1
        for (x, y), label in zip(points, labels):
            cv2.circle(canvas, (int(round(x)), int(round(y))), self.radius, int(label == 1), -1)
        self.masks[k] = canvas.astype(bool)
        return self.masks[k]

    def set_mask(self, k, mask):
        self.calls.append(("set_mask", k))
        self.masks[k] = np.asarray(mask, bool).copy()

    def clear(self, k):
        self.calls.append(("clear", k))
        self.masks.pop(k, None)

    def propagate(self, start, reverse, steps) -> Iterator[tuple[int, np.ndarray]]:
        self.calls.append(("propagate", start, reverse, steps))
        if start not in self.masks:
            raise ValueError(f"frame {start} has no prompt to propagate from")
        step = -1 if reverse else 1
        current = self.masks[start]
        for i in range(1, steps + 1):
            k = start + step * i
            if not 0 <= k < self.n_frames:
                return
            if self.delay:
                time.sleep(self.delay)
            current = self.truth(k).copy() if self.truth is not None else current.copy()
            self.masks[k] = current
            yield k, current
