"""The Segmenter protocol: frames + expression -> T x H x W bool masks at the input resolution.

Everything in this module must import on Python 3.8 with numpy only, because model workers run
it inside the upstream model's own environment (see :mod:`refvps.baselines.worker`).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping, Optional, Sequence

try:
    from typing import Protocol, runtime_checkable
except ImportError:  # pragma: no cover - Python < 3.8
    from typing_extensions import Protocol, runtime_checkable  # type: ignore

import numpy as np

from refvps.errors import RefvpsError


@dataclass(frozen=True)
class SegmenterInfo:
    """What produced a set of predictions (stored in ``run.json`` next to them)."""

    name: str
    version: str
    upstream: str = ""  # the upstream repository and the commit the wrapper was written for
    params: Mapping[str, Any] = field(default_factory=dict)
    needs_gpu: bool = False
    deterministic: bool = True
    upstream_commit: str = ""  # the commit of the checkout it ran with ("" if unknown)
    checkpoint_sha256: str = ""  # of the checkpoint file it loaded ("" if none)


@dataclass(frozen=True)
class VideoInput:
    """The frames of one video as a model receives them."""

    video_id: str
    frame_names: Sequence[str]
    frames: Sequence[np.ndarray]  # H x W x 3 uint8 RGB; may load lazily on indexing
    frame_paths: Optional[Sequence[str]] = None  # the original image files, when on disk


@runtime_checkable
class Segmenter(Protocol):
    """A referring segmenter. Optional capabilities, detected with ``hasattr``:

    * ``predict_video(video: VideoInput, expressions) -> list[np.ndarray]``: all expressions of
      a video at once (shares per-video work such as SOLA's grid tracks, or a worker's frames);
    * ``predict_scores(frames, expression) -> np.ndarray``: T x H x W float32 in [0, 1] before
      thresholding, for threshold sweeps;
    * ``predict_query(video, query, benchmark) -> np.ndarray``: needs the benchmark's ground
      truth (the oracles);
    * ``clip_len`` + ``shorter_clip_len(n_frames)``: the runner shortens clips on out-of-memory.
    """

    name: str

    def predict(self, frames: Sequence[np.ndarray], expression: str) -> np.ndarray:
        """T frames (H x W x 3 uint8 RGB, one size) -> T x H x W bool."""

    def info(self) -> SegmenterInfo:
        """Name, version, upstream and the resolved parameters."""

    def close(self) -> None:
        """Free the GPU / stop a worker."""


class OutOfMemory(RuntimeError):
    """An accelerator ran out of memory (raised by workers in place of torch's error)."""


class ModelLoadError(RefvpsError):
    """The model cannot be built or loaded; raised once, the run stops (no query can succeed)."""


def is_out_of_memory(exc: BaseException) -> bool:
    """Whether ``exc`` is a CUDA (or other accelerator) out-of-memory error."""
    if isinstance(exc, (OutOfMemory, MemoryError)):
        return True
    if type(exc).__name__ == "OutOfMemoryError":  # torch.cuda.OutOfMemoryError / torch.OutOfMemoryError
        return True
    return isinstance(exc, RuntimeError) and "out of memory" in str(exc).lower()


def check_masks(masks: np.ndarray, n_frames: int, size: Sequence[int], who: str) -> np.ndarray:
    """``masks`` as a T x H x W bool array, or a ValueError saying what the model got wrong."""
    if masks is None:
        raise ValueError(f"{who} returned None; return an all-False mask instead")
    masks = np.asarray(masks)
    expected = (n_frames, int(size[0]), int(size[1]))
    if masks.shape != expected:
        raise ValueError(f"{who} returned masks of shape {masks.shape}, expected {expected} "
                         "(T x H x W at the input resolution)")
    if masks.dtype != bool:
        if masks.dtype.kind not in "biu":
            raise ValueError(f"{who} returned {masks.dtype} masks; threshold them to bool")
        masks = masks != 0
    return masks
