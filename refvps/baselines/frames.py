"""Frames for models: RGB images read lazily from disk (Python 3.8 compatible)."""
from __future__ import annotations

from typing import Sequence

import numpy as np


def read_rgb(path: str) -> np.ndarray:
    """An image file as H x W x 3 uint8 RGB (PIL ``convert('RGB')``, as every upstream does)."""
    from PIL import Image

    with Image.open(path) as image:
        return np.asarray(image.convert("RGB"))


class LazyFrames(Sequence):
    """A sequence of frames decoded from ``paths`` on access (nothing is held in memory)."""

    def __init__(self, paths: Sequence[str]):
        self.paths = list(paths)

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index):
        if isinstance(index, slice):
            return LazyFrames(self.paths[index])
        return read_rgb(self.paths[index])
