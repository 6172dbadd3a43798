"""The davis2017-evaluation *unsupervised* protocol, frame by frame and with boundary reuse.

The official evaluator stacks every object and every proposal of a sequence into dense float64
arrays, then computes J and F for each (proposal, object) pair frame by frame from scratch. Here
a frame's masks are decoded and bit-packed once, each mask's :class:`~refvps.metrics.Boundary`
is built once and scored against every mask of the other side, and J's intersection and areas
are popcounts of the packed masks (the official integer counts). The per-frame values are then
laid out as the official ``(proposals, objects, frames)`` float64 arrays so the Hungarian cost
matrix, its tie-breaking and every statistic are bit-identical to the reference.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.optimize import linear_sum_assignment

from refvps.formats import DAVIS_MAX_PROPOSALS
from refvps.metrics import Boundary, boundary_of
from refvps.metrics.bits import pack_mask, popcount
from refvps.metrics.boundary import boundary_of_bits, f_from_counts, match_matrix


@dataclass(frozen=True)
class Mask:
    """One non-empty mask of a frame (void already removed) and what scoring needs from it."""

    bits: np.ndarray  # bit-packed (refvps.metrics.bits.pack_mask)
    boundary: Boundary
    area: int


def make_mask(pixels: np.ndarray) -> Mask | None:
    """A :class:`Mask` of ``pixels`` (bool H x W); None when it is empty."""
    bits = pack_mask(pixels)
    area = popcount(bits)
    if area == 0:
        return None
    return Mask(bits, boundary_of_bits(bits, pixels.shape), area)


def _region(a: Mask | None, b: Mask | None) -> float:
    """J of two masks (None = empty) from popcounts: the official integer counts, divided."""
    if a is None and b is None:
        return 1.0  # davis2017 db_eval_iou: an empty union scores 1
    inter = popcount(a.bits & b.bits) if a is not None and b is not None else 0
    union = (a.area if a is not None else 0) + (b.area if b is not None else 0) - inter
    return inter / union


class PairScores:
    """Per-frame J and F of every (proposal, object) pair of one run on one sequence.

    Proposal ids run 1..:data:`DAVIS_MAX_PROPOSALS`; an id absent from a frame is an empty mask
    there. ``n_proposals`` is the number of proposals the official reader would see (the highest
    id over all frames for indexed PNGs, the number of object folders otherwise).
    """

    def __init__(self, n_objects: int, n_frames: int, shape: tuple[int, int], radius: int):
        limit = max(DAVIS_MAX_PROPOSALS, n_objects)
        self.j = np.empty((limit, n_objects, n_frames), np.float64)
        self.f = np.empty((limit, n_objects, n_frames), np.float64)
        self.pred_area = np.zeros((limit, n_frames), np.int64)
        self.missing = np.zeros((limit, n_frames), bool)
        self.n_objects = n_objects
        self.n_proposals = 0
        self.radius = radius
        self._empty_boundary = boundary_of(np.zeros(shape, bool))

    def add_frame(self, t: int, objects: list[Mask | None], proposals: dict[int, Mask | None],
                  missing: set[int] | bool = False) -> None:
        """Score frame ``t``: ``objects[k-1]`` is GT object k, ``proposals`` maps id -> mask."""
        present = [(pid, prop) for pid, prop in proposals.items() if prop is not None]
        gt_boundaries = [obj.boundary if obj is not None else self._empty_boundary
                         for obj in objects]
        matched_gt, matched_prop = match_matrix(
            gt_boundaries, [prop.boundary for _, prop in present], self.radius)
        for o, obj in enumerate(objects):
            n_gt = gt_boundaries[o].count
            self.j[:, o, t] = _region(obj, None)
            self.f[:, o, t] = f_from_counts(n_gt, 0, 0, 0)
            for k, (pid, prop) in enumerate(present):
                self.j[pid - 1, o, t] = _region(obj, prop)
                self.f[pid - 1, o, t] = f_from_counts(n_gt, prop.boundary.count,
                                                      int(matched_gt[o, k]),
                                                      int(matched_prop[o, k]))
        for pid, prop in proposals.items():
            if prop is not None:
                self.pred_area[pid - 1, t] = prop.area
        if missing is True:
            self.missing[:, t] = True
        elif missing:
            for pid in missing:
                self.missing[pid - 1, t] = True

    def match(self) -> list[tuple[int, int]]:
        """Hungarian matching exactly as davis2017: (proposal index, object index) pairs.

        Pairs come in the official order (ascending proposal index); proposals beyond
        ``n_proposals`` are the official zero padding.
        """
        n_total = max(self.n_proposals, self.n_objects)
        j, f = self.j[:n_total], self.f[:n_total]
        cost = (np.mean(j, axis=2) + np.mean(f, axis=2)) / 2
        rows, cols = linear_sum_assignment(-cost)
        return [(int(r), int(c)) for r, c in zip(rows, cols)]
