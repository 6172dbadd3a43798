"""Reading clips with OpenCV and resampling them to a fixed frame rate by frame timestamps.

A source frame is picked for every output instant ``k / fps`` as the frame whose presentation
timestamp is nearest (ties go to the earlier frame). Timestamps come from the container
(``CAP_PROP_POS_MSEC`` after each ``grab``); when they are not strictly increasing (broken or
missing PTS) they are replaced by ``index / source_fps``.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import cv2
import numpy as np

from refvps.errors import RefvpsError

VIDEO_SUFFIXES = (".mp4", ".mov", ".webm", ".mkv", ".avi", ".m4v")
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp")


class VideoError(RefvpsError):
    """A clip that cannot be read (unreadable file, no frames, unknown frame rate)."""


@dataclass(frozen=True)
class SourceClip:
    """A decoded-once description of a clip: where it is, its frame timestamps and size."""

    path: Path
    kind: str  # "video" or "frames"
    timestamps: tuple[float, ...]  # seconds, one per source frame, strictly increasing
    fps: float  # nominal source frame rate
    size: tuple[int, int]  # (height, width)
    timestamps_from: str  # "container" or "index/fps"
    frame_files: tuple[Path, ...] = ()  # the images of a frames folder, in order

    @property
    def n_frames(self) -> int:
        return len(self.timestamps)

    @property
    def duration(self) -> float:
        return self.timestamps[-1] + 1.0 / self.fps


def _natural_key(path: Path) -> list:
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", path.name)]


def _strictly_increasing(values: list[float]) -> bool:
    return all(b > a for a, b in zip(values, values[1:]))


def probe(path: str | Path, frames_fps: float = 24.0) -> SourceClip:
    """Describe a video file or a folder of frames (``frames_fps`` = the rate of a folder)."""
    path = Path(path)
    if path.is_dir():
        files = sorted((p for p in path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES),
                       key=_natural_key)
        if not files:
            raise VideoError(f"{path}: no image files ({', '.join(IMAGE_SUFFIXES)}) in the folder")
        first = cv2.imread(str(files[0]), cv2.IMREAD_COLOR)
        if first is None:
            raise VideoError(f"{files[0]}: unreadable image")
        stamps = tuple(i / frames_fps for i in range(len(files)))
        return SourceClip(path, "frames", stamps, float(frames_fps), first.shape[:2],
                          "index/fps", tuple(files))
    if not path.is_file():
        raise VideoError(f"{path}: no such file or folder")
    cap = cv2.VideoCapture(str(path))
    try:
        if not cap.isOpened():
            raise VideoError(f"{path}: OpenCV cannot open this video")
        fps = float(cap.get(cv2.CAP_PROP_FPS) or 0.0)
        stamps: list[float] = []
        size = (0, 0)
        while cap.grab():
            stamps.append(cap.get(cv2.CAP_PROP_POS_MSEC) / 1000.0)
            if len(stamps) == 1:  # the decoded size, after any orientation correction
                ok, image = cap.retrieve()
                size = image.shape[:2] if ok else size
    finally:
        cap.release()
    if not stamps:
        raise VideoError(f"{path}: the video has no decodable frames")
    if not fps > 0 or not math.isfinite(fps):
        if len(stamps) > 1 and _strictly_increasing(stamps):
            fps = (len(stamps) - 1) / (stamps[-1] - stamps[0])
        else:
            raise VideoError(f"{path}: unknown frame rate (no FPS in the container, no timestamps)")
    origin = "container"
    if not _strictly_increasing(stamps):
        stamps = [i / fps for i in range(len(stamps))]
        origin = "index/fps"
    first = stamps[0]
    return SourceClip(path, "video", tuple(s - first for s in stamps), fps, size, origin)


def resample_picks(timestamps: tuple[float, ...] | list[float], duration: float,
                   fps: float) -> list[int]:
    """Index of the source frame shown at each instant ``k / fps`` for ``k < duration * fps``."""
    n_out = max(1, math.floor(duration * fps + 1e-6))
    picks = []
    i = 0
    last = len(timestamps) - 1
    for k in range(n_out):
        target = k / fps
        while i < last and abs(timestamps[i + 1] - target) < abs(timestamps[i] - target) - 1e-9:
            i += 1
        picks.append(i)
    return picks


def iter_source_frames(clip: SourceClip, wanted: set[int]) -> Iterator[tuple[int, np.ndarray]]:
    """Yield (source index, BGR image) for the wanted source indices, in order, decoding once."""
    if clip.kind == "frames":
        for index in sorted(wanted):
            image = cv2.imread(str(clip.frame_files[index]), cv2.IMREAD_COLOR)
            if image is None:
                raise VideoError(f"{clip.frame_files[index]}: unreadable image")
            if image.shape[:2] != clip.size:
                raise VideoError(f"{clip.frame_files[index]}: size {image.shape[1]}x"
                                 f"{image.shape[0]} differs from the first frame's "
                                 f"{clip.size[1]}x{clip.size[0]}")
            yield index, image
        return
    cap = cv2.VideoCapture(str(clip.path))
    try:
        top = max(wanted)
        for index in range(top + 1):
            if not cap.grab():
                raise VideoError(f"{clip.path}: decoding stopped at frame {index} of "
                                 f"{clip.n_frames}")
            if index in wanted:
                ok, image = cap.retrieve()
                if not ok:
                    raise VideoError(f"{clip.path}: cannot decode frame {index}")
                yield index, image
    finally:
        cap.release()
