"""DAVIS-2017 semi-supervised VOS (davisvideochallenge/davis2017-evaluation, task semi-supervised).

Data: ``<root>/ImageSets/2017/<split>.txt``, ``<root>/Annotations/480p/<seq>/<frame>.png``
(palette PNGs: object ids 1..N, 255 = void), optional ``<root>/JPEGImages/480p``; ``<root>`` is
``<data>/davis-2017`` (holding ``DAVIS/`` or being it) or a DAVIS folder given as ``--data``.

Protocol (``DAVISEvaluation._evaluate_semisupervised``): the first frame's masks are given to
the method, so the first and the last annotation frame are not scored; objects = ids 1..max of
the first frame (void removed); predictions = indexed PNGs ``<seq>/<frame>.png`` whose ids are
the objects' (an id above the sequence's object count is an error, missing ids are empty masks);
**no void region** (void pixels are background); J and F per object per frame; per object
mean / recall / decay; dataset = mean over all objects of all sequences, J&F = (J + F) / 2.
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from refvps.errors import MaskError, Problem
from refvps.formats import (DAVIS_FOLDER, DAVIS_IMAGESETS_DIR, DAVIS_RESOLUTION,
                            DAVIS_SEMI_FOLDER, FRAME_EXT, IGNORE_LABEL, JPEG_DIR, MASK_EXT,
                            ANNOTATION_DIR)
from refvps.loaders.base import (Benchmark, GroundTruth, Query, TaskResult, VideoTask,
                                 read_digested)
from refvps.loaders.davis_annotations import check_annotation_frames
from refvps.loaders.jsonfiles import read_name_list, read_split_list
from refvps.masks import read_mask, read_mask_bytes

MIN_FRAMES = 3  # the protocol scores frames 2..T-1


class _SequenceGT(GroundTruth):
    """The annotation of one sequence; the first frame fixes the size and the object count."""

    def __init__(self, video: str, gt_dir: Path, first: str):
        self.video, self.gt_dir, self.first = video, gt_dir, first
        self.digests: dict[str, str] = {}
        self.shape: tuple[int, int] | None = None
        self.n_objects = 0

    def labels(self, frame: str) -> np.ndarray:
        """Label map of ``frame`` with void (255) turned into background, as the official reader."""
        if self.shape is None and frame != self.first:
            self.labels(self.first)
        path = self.gt_dir / f"{frame}{MASK_EXT}"
        labels = read_digested(path, self.digests, f"{self.video}/{frame}{MASK_EXT}")
        labels = np.where(labels == IGNORE_LABEL, 0, labels)
        if self.shape is None:
            self.shape, self.n_objects = labels.shape, int(labels.max(initial=0))
        elif labels.shape != self.shape:
            raise MaskError(path, f"size {labels.shape[1]}x{labels.shape[0]} (WxH) differs from "
                                  f"the sequence's first frame {self.shape[1]}x{self.shape[0]}")
        return labels

    def target(self, query: Query, frame: str) -> tuple[np.ndarray, None]:
        return self.labels(frame) == query.target[0], None


class Davis17(Benchmark):
    name = "davis17"
    folder = DAVIS_SEMI_FOLDER
    title = "DAVIS-2017 semi-supervised VOS"
    splits = ("val", "train")
    default_split = "val"
    unit_name = "object"
    protocol = ("davis2017 semi-supervised: objects = ids 1..max(first frame), first and last "
                "frame not scored, no void region, J and F per object, mean / recall / decay per "
                "object, mean over all objects; J&F = (J + F) / 2")
    reference = "davisvideochallenge/davis2017-evaluation (evaluation_method.py --task semi-supervised)"

    def __init__(self, root: str | Path, split: str | None = None, decay_mode: str = "davis2017"):
        super().__init__(root, split, decay_mode)
        self.davis_dir = _davis_dir(self.root) or self.root
        self._frames: dict[str, list[str]] = {}
        self._objects: dict[str, int] = {}

    @classmethod
    def looks_like(cls, path: Path) -> bool:
        return _davis_dir(path) is not None

    # --- layout ------------------------------------------------------------------------------
    def split_file(self) -> Path:
        return self.davis_dir / DAVIS_IMAGESETS_DIR / f"{self.split}.txt"

    def metadata_files(self) -> list[Path]:
        return [self.split_file()]

    def sequences(self) -> list[str]:
        """The ImageSets list, lines stripped (blank lines skipped: the official reader would
        look for a sequence named '')."""
        if not os.path.lexists(self.split_file()):
            return []
        return read_name_list(self.split_file(), [], "sequence") or []

    def gt_dir(self, seq: str) -> Path:
        return self.davis_dir / ANNOTATION_DIR / DAVIS_RESOLUTION / seq

    def frame_path(self, video: str, frame: str) -> Path:
        return self.davis_dir / JPEG_DIR / DAVIS_RESOLUTION / video / f"{frame}{FRAME_EXT}"

    def gt_frames(self, seq: str) -> list[str]:
        """Annotation frame stems of ``seq``, sorted (the official frame list)."""
        if seq not in self._frames:
            folder = self.gt_dir(seq)
            self._frames[seq] = sorted(p.name[:-len(MASK_EXT)] for p in folder.iterdir()
                                       if p.name.endswith(MASK_EXT)) if folder.is_dir() else []
        return self._frames[seq]

    def n_objects(self, seq: str) -> int:
        """Objects of ``seq``: the highest id of its first annotation frame, void excluded."""
        if seq not in self._objects:
            frames = self.gt_frames(seq)
            try:
                labels = read_mask(self.gt_dir(seq) / f"{frames[0]}{MASK_EXT}")
            except (MaskError, IndexError):  # reported by validate()
                labels = np.zeros((1, 1), np.uint8)
            self._objects[seq] = int(np.where(labels == IGNORE_LABEL, 0, labels).max(initial=0))
        return self._objects[seq]

    # --- validation --------------------------------------------------------------------------
    def validate(self) -> list[Problem]:
        split_file = self.split_file()
        problems: list[Problem] = []
        seqs = read_split_list(split_file, problems, "sequence", (
            f"split list not found (expected a DAVIS folder with {DAVIS_IMAGESETS_DIR} and "
            f"{ANNOTATION_DIR}/{DAVIS_RESOLUTION})"))
        for seq in seqs or []:
            problems += self._validate_sequence(seq)
        return problems

    def _validate_sequence(self, seq: str) -> list[Problem]:
        frames = self.gt_frames(seq)
        problems = check_annotation_frames(self.gt_dir(seq), frames,
                                           self.davis_dir / JPEG_DIR / DAVIS_RESOLUTION / seq)
        if 0 < len(frames) < MIN_FRAMES:
            problems.append(Problem(str(self.gt_dir(seq)), f"{len(frames)} annotation frame(s): "
                                    "the semi-supervised protocol scores frames 2..T-1 and needs "
                                    f"at least {MIN_FRAMES}"))
        return problems

    # --- tasks -------------------------------------------------------------------------------
    def tasks(self) -> list[VideoTask]:
        """One task per sequence with one query per object, scored on frames 2..T-1."""
        tasks = []
        for seq in self.sequences():
            frames = tuple(self.gt_frames(seq)[1:-1])
            queries = [Query(video=seq, query_id=str(k), text="", frames=frames, target=(k,),
                             meta={"object": k, "official_label": f"{seq}_{k}"})
                       for k in range(1, self.n_objects(seq) + 1)]
            if queries:
                tasks.append(VideoTask(seq, queries, gt=self.gt_frames(seq)[0]))
        return tasks

    def load_gt(self, task: VideoTask) -> _SequenceGT:
        return _SequenceGT(task.video, self.gt_dir(task.video), task.gt)

    def prediction_relpath(self, query: Query, frame: str) -> str:
        """DAVIS palette layout: one indexed PNG per frame, ``<seq>/<frame>.png``."""
        return f"{query.video}/{frame}{MASK_EXT}"

    def required_predictions(self, store, tasks: list[VideoTask]) -> list[str]:
        return [f"{t.video}/{f}{MASK_EXT}" for t in tasks for f in t.queries[0].frames]

    def notes(self) -> list[str]:
        return ["first and last annotation frame not scored; void pixels count as background "
                "(the semi-supervised evaluator passes no void mask)"]

    # --- scoring (runs in workers) -----------------------------------------------------------
    def score_task(self, task: VideoTask, reader, allow_missing: bool = False) -> TaskResult:
        """Score every object of one sequence; each annotation and prediction decoded once."""
        gt = self.load_gt(task)
        rows: list[dict] = []
        problems: list[Problem] = []
        missing = 0
        gt_packed: dict = {}
        highest = (0, "")
        frames = task.queries[0].frames
        for index, frame in enumerate(frames):
            try:
                labels = gt.labels(frame)
            except MaskError as exc:
                return TaskResult([], [Problem(exc.path, exc.what)], 0, gt.digests)
            relpath = f"{task.video}/{frame}{MASK_EXT}"
            try:
                data = reader.read_bytes(relpath)
            except MaskError as exc:
                problems.append(Problem(exc.path, exc.what))
                continue
            if data is None:
                missing += 1
                if not allow_missing:
                    continue  # reported by the presence check
                pred = np.zeros(labels.shape, np.uint8)
            else:
                try:
                    pred = read_mask_bytes(data, reader.describe(relpath))
                except MaskError as exc:
                    problems.append(Problem(exc.path, exc.what))
                    continue
                if pred.shape != labels.shape:
                    problems.append(Problem(reader.describe(relpath),
                                            f"size {pred.shape[1]}x{pred.shape[0]} (WxH), "
                                            f"expected {labels.shape[1]}x{labels.shape[0]}"))
                    continue
                top = int(pred.max(initial=0))
                if top > highest[0]:
                    highest = (top, relpath)
            for query in task.queries:
                k = query.target[0]
                rows.append(self._score_frame(query, index, frame, labels == k, None, pred == k,
                                              data is None, gt_packed))
        if highest[0] > gt.n_objects:
            problems.append(Problem(reader.describe(highest[1]),
                                    f"object id {highest[0]} but sequence {task.video} has "
                                    f"{gt.n_objects} object(s) in its first frame (the "
                                    "official evaluator stops here)"))
        return TaskResult(rows, problems, missing, dict(gt.digests))


def _davis_dir(path: Path) -> Path | None:
    """The DAVIS folder at or directly under ``path`` (it holds ImageSets and Annotations)."""
    for candidate in (path / DAVIS_FOLDER, path):
        if (candidate / DAVIS_IMAGESETS_DIR).is_dir() and \
                (candidate / ANNOTATION_DIR / DAVIS_RESOLUTION).is_dir():
            return candidate
    return None
