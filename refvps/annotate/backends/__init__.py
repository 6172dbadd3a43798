"""Segmentation backends behind one interface: SAM2, an OpenCV fallback and a scripted fake.

A backend works on the clip's annotation frames only, addressed by their position ``k`` in the
6 fps sequence. Masks are bool ``H x W`` arrays at the frame's full resolution.
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from pathlib import Path
from typing import Callable, Iterator

import numpy as np

BACKENDS = ("sam2", "opencv")
"""Backends selectable on the command line (the scripted fake is for tests only)."""


class Backend(ABC):
    """An interactive video segmenter holding one clip's prompts and tracking memory."""

    name: str = "backend"

    @abstractmethod
    def open(self, frames: list[Path]) -> None:
        """Load the clip: ``frames`` are the annotation frames' JPEG files, in order."""

    @abstractmethod
    def click(self, k: int, points: np.ndarray, labels: np.ndarray,
              box: np.ndarray | None = None) -> np.ndarray:
        """The mask for ALL the clicks on frame ``k`` (x, y in pixels; label 1 = positive,
        0 = negative) and an optional box ``[x0, y0, x1, y1]``."""

    @abstractmethod
    def set_mask(self, k: int, mask: np.ndarray) -> None:
        """Make ``mask`` the prompt of frame ``k`` (an annotator-edited frame)."""

    @abstractmethod
    def clear(self, k: int) -> None:
        """Forget the prompts of frame ``k``."""

    @abstractmethod
    def propagate(self, start: int, reverse: bool, steps: int) -> Iterator[tuple[int, np.ndarray]]:
        """Track from frame ``start`` (which must carry a prompt) over the next ``steps`` frames
        (``start-1, start-2, ...`` when ``reverse``), yielding ``(k, mask)`` as they come."""

    def load(self, report: Callable[[str], None] | None = None) -> None:
        """Load the model (at start-up, so the first click does not wait for it)."""

    def prepare(self, k: int) -> None:
        """Precompute what every click on frame ``k`` needs (image features); optional."""

    def describe(self) -> dict:
        """Provenance recorded with an export."""
        return {"backend": self.name}

    def close(self) -> None:
        """Release the model and temporary files."""


def make_backend(name: str, *, sam2_config: str | None = None,
                 sam2_checkpoint: str | None = None, device: str = "cpu",
                 sam2_image_size: int | None = None) -> Backend:
    """Build a command-line backend by name (``sam2`` needs a checkpoint)."""
    if name == "opencv":
        from refvps.annotate.backends.opencv import OpenCVBackend

        return OpenCVBackend()
    if name == "sam2":
        from refvps.annotate.backends.sam2_backend import Sam2Backend

        return Sam2Backend(checkpoint=sam2_checkpoint, config=sam2_config, device=device,
                           image_size=sam2_image_size)
    raise ValueError(f"unknown backend {name!r}; choose one of {', '.join(BACKENDS)}")
