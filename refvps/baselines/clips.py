"""Clip planning and stitching: how a long video is cut into model-sized pieces.

Pure functions (numpy only, Python 3.8 compatible), shared by the wrappers and the runner's
out-of-memory backoff.
"""
from __future__ import annotations

from typing import List, Optional, Sequence, Tuple

Clip = Tuple[int, int, int]
"""(start, end, keep_from): run the model on frames[start:end], keep outputs from keep_from on."""


def plan_fixed(n_frames: int, clip_len: Optional[int]) -> List[Clip]:
    """Non-overlapping clips of ``clip_len`` (the last one shorter); None or 0 = one clip."""
    if n_frames <= 0:
        return []
    if not clip_len or clip_len >= n_frames:
        return [(0, n_frames, 0)]
    return [(s, min(s + clip_len, n_frames), s) for s in range(0, n_frames, clip_len)]


def plan_tail(n_frames: int, clip_len: int) -> List[Clip]:
    """Clips of exactly ``clip_len``; a short last clip is re-run on the last ``clip_len`` frames,
    keeping only its tail (REM-Wan's rule; the video must have at least ``clip_len`` frames)."""
    if n_frames < clip_len:
        raise ValueError(f"video of {n_frames} frames is shorter than the clip length {clip_len}")
    clips = []
    for start in range(0, n_frames, clip_len):
        if start + clip_len <= n_frames:
            clips.append((start, start + clip_len, start))
        else:
            clips.append((n_frames - clip_len, n_frames, start))
    return clips


def fit_clip_len(clip_len: int, n_frames: int, allowed: Sequence[int]) -> Optional[int]:
    """The first allowed length, from ``clip_len`` downwards, that fits ``n_frames`` (or None)."""
    for value in sorted(allowed, reverse=True):
        if value <= clip_len and value <= n_frames:
            return value
    return None


def shorter_clip_len(current: Optional[int], n_frames: int,
                     allowed: Sequence[int] = ()) -> Optional[int]:
    """The next clip length to try after running out of memory at ``current`` (None: give up).

    With ``allowed`` lengths, the next smaller allowed one; otherwise half the effective length.
    """
    effective = min(current, n_frames) if current else n_frames
    if allowed:
        smaller = [v for v in allowed if v < effective]
        return max(smaller) if smaller else None
    return effective // 2 if effective > 1 else None


def stitch(pieces: Sequence[Tuple[Clip, "object"]], n_frames: int) -> list:
    """Concatenate per-clip outputs (each covering start..end) keeping frames keep_from..end."""
    out: list = [None] * n_frames
    for (start, end, keep_from), frames in pieces:
        if len(frames) != end - start:
            raise ValueError(f"clip {start}:{end} produced {len(frames)} frames")
        for offset in range(keep_from - start, end - start):
            out[start + offset] = frames[offset]
    missing = [i for i, v in enumerate(out) if v is None]
    if missing:
        raise ValueError(f"clips left frames {missing[:5]} uncovered")
    return out
