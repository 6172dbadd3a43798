"""Ref-DAVIS17 prediction layouts: indexed PNGs (official, ReferFormer) or per-object folders (REM).

Per annotator run ``anno_<k>`` and sequence, either ``anno_<k>/<seq>/<frame>.png`` holding
proposal ids (palette indices or gray values, as the official PIL reader sees them), or
``anno_<k>/<seq>/<j>/<frame>.png`` for j = 1..K, where any non-zero pixel belongs to proposal j
(REM's ``Results_SepObjs``; proposals may overlap). The layout is chosen per run and sequence
from the files present.
"""
from __future__ import annotations

from typing import Callable, Iterable

import cv2
import numpy as np

from refvps.errors import MaskError, Problem
from refvps.formats import DAVIS_MAX_PROPOSALS, MASK_EXT
from refvps.loaders.base import VideoTask
from refvps.loaders.davis_unsupervised import Mask, make_mask
from refvps.masks import read_mask_bytes

Proposals = tuple[dict[int, Mask | None], int, set[int]]


def too_many_proposals(seq: str, detail: str) -> str:
    return (f"sequence {seq}: {detail}: more than {DAVIS_MAX_PROPOSALS} proposals, which the "
            "davis2017 unsupervised evaluator refuses")


class RunLayout:
    """Where one run's predictions of one sequence live, from the file names found there."""

    def __init__(self, base: str, names: set[str]):
        self.base = base  # "anno_<k>/<seq>"
        direct = {n for n in names if "/" not in n}
        folders = {n.split("/", 1)[0] for n in names if "/" in n}
        self.folders: tuple[str, ...] = ()
        self.problem: str | None = None
        self.per_object = bool(folders)
        if folders and any(n.endswith(MASK_EXT) for n in direct):
            self.problem = ("mixes the two layouts (indexed PNGs directly in the sequence folder "
                            "and per-object sub-folders)")
        elif folders:
            expected = {str(k) for k in range(1, len(folders) + 1)}
            if folders != expected:
                self.problem = (f"per-object folders must be named 1..{len(folders)}, found "
                                f"{', '.join(sorted(folders, key=_natural))}")
            self.folders = tuple(str(k) for k in range(1, len(folders) + 1))

    def relpaths(self, frame: str) -> list[str]:
        if self.per_object:
            return [f"{self.base}/{k}/{frame}{MASK_EXT}" for k in self.folders]
        return [f"{self.base}/{frame}{MASK_EXT}"]

    def read(self, reader, frame: str, shape: tuple[int, int],
             keep: np.ndarray | None) -> Proposals | Problem:
        """(id -> mask outside void, ids the official reader counts, absent ids) or a Problem.

        Absent files leave their proposals empty; whether that is allowed is the caller's call.
        """
        proposals: dict[int, Mask | None] = {}
        missing: set[int] = set()
        paths = self.relpaths(frame)
        n_ids = len(paths) if self.per_object else 0
        for index, relpath in enumerate(paths, 1):
            try:
                data = reader.read_bytes(relpath)
                if data is None:
                    missing.add(index)
                    continue
                labels = read_mask_bytes(data, reader.describe(relpath))
            except MaskError as exc:
                return Problem(exc.path, exc.what)
            if labels.shape != shape:
                return Problem(reader.describe(relpath),
                               f"size {labels.shape[1]}x{labels.shape[0]} (WxH), expected "
                               f"{shape[1]}x{shape[0]}")
            if self.per_object:
                proposals[index] = _outside_void(labels != 0, keep)
                continue
            present = _present_ids(labels)
            n_ids = int(present.max(initial=0))
            if n_ids > DAVIS_MAX_PROPOSALS:
                seq = self.base.rsplit("/", 1)[-1]
                return Problem(reader.describe(relpath),
                               too_many_proposals(seq, f"proposal id {n_ids} in this frame"))
            proposals = {int(k): _outside_void(labels == k, keep) for k in present}
        return proposals, n_ids, missing


def run_layouts(store, tasks: Iterable[VideoTask],
                base: Callable[[str, str], str]) -> dict[tuple[str, str], RunLayout]:
    """The layout of every (run folder, sequence) of ``tasks`` in ``store``; ``base(run, seq)``
    is the folder holding that run's predictions of the sequence."""
    wanted = {f"{base(q.query_id, t.video)}/": (q.query_id, t.video)
              for t in tasks for q in t.queries}
    names: dict[tuple[str, str], set[str]] = {key: set() for key in wanted.values()}
    for path in store.files():
        for cut in (1, 2):
            parts = path.split("/", cut)
            key = wanted.get("/".join(parts[:-1]) + "/") if len(parts) == cut + 1 else None
            if key is not None:
                names[key].add(parts[-1])
    return {key: RunLayout(base(*key), found) for key, found in names.items()}


def _natural(name: str) -> tuple:
    return (0, int(name), "") if name.isdigit() else (1, 0, name)


def _present_ids(labels: np.ndarray) -> np.ndarray:
    """Non-zero values occurring in a uint8 label map (a histogram, much faster than unique)."""
    counts = cv2.calcHist([np.ascontiguousarray(labels)], [0], None, [256], [0, 256]).ravel()
    return np.flatnonzero(counts[1:]) + 1


def _outside_void(mask: np.ndarray, keep: np.ndarray | None) -> Mask | None:
    return make_mask(mask if keep is None else mask & keep)
