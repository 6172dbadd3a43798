"""Ref-YouTube-VOS (URVOS): one expression about one object of a YouTube-VOS video.

Layout (as organised by ReferFormer): ``ref-youtube-vos/meta_expressions/<split>/
meta_expressions.json``, ``train/{JPEGImages,Annotations}/<video>/<frame>``, ``train/meta.json``
and ``valid/JPEGImages``. The ``valid`` split is the valid meta minus the test meta (202 videos);
``test`` is the test meta (its frames also live under ``valid/JPEGImages``).

Only ``train`` has public masks: it is scored locally, MeViS-style (GT = palette PNG ==
int(obj_id) on every listed frame, J and F per frame, mean per expression, mean over
expressions). ``valid`` / ``test`` are scored by the server: ``refvps submit`` builds the zip.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from refvps.errors import MaskError, Problem
from refvps.formats import (ANNOTATION_DIR, FRAME_EXT, JPEG_DIR, META_EXPRESSIONS, REFYTVOS_FOLDER,
                            REFYTVOS_META_DIR, SUBMISSION_ANNOTATIONS, YTVOS_META,
                            clean_expression)
from refvps.loaders.base import (Benchmark, GroundTruth, Query, VideoTask, group_means,
                                 read_digested)
from refvps.loaders.jsonfiles import (JsonChecker, check_video_record, read_json_object,
                                      read_videos, show, well_formed)


class _PaletteGT(GroundTruth):
    """Palette annotation PNGs of one train video (object ids 1..N), each decoded once."""

    def __init__(self, video: str, annotation_dir: Path):
        self.video = video
        self.annotation_dir = annotation_dir
        self.labels: dict[str, np.ndarray] = {}
        self.digests: dict[str, str] = {}

    def label(self, frame: str) -> np.ndarray:
        labels = self.labels.get(frame)
        if labels is None:
            labels = self.labels[frame] = read_digested(
                self.annotation_dir / f"{frame}.png", self.digests,
                f"train/{ANNOTATION_DIR}/{self.video}/{frame}.png")
        return labels

    def target(self, query: Query, frame: str) -> tuple[np.ndarray, np.ndarray | None]:
        labels = self.label(frame)
        if not query.target:  # an expression without obj_id refers to nothing
            return np.zeros(labels.shape, bool), None
        return labels == query.target[0], None


class RefYouTubeVOS(Benchmark):
    name = "ref-ytvos"
    folder = REFYTVOS_FOLDER
    title = "Ref-YouTube-VOS"
    splits = ("train", "valid", "test")
    default_split = "valid"
    server_splits = ("valid", "test")
    submission_root = SUBMISSION_ANNOTATIONS
    protocol = ("J and F on every listed frame (GT = palette == obj_id), mean per expression, mean "
                "over expressions; valid / test scored by the server (refvps submit)")
    reference = ("CodaLab Ref-YouTube-VOS server (valid, test); train scored like "
                 "henghuiding/MeViS tools/eval_mevis.py")
    headline = ("J&F", "J", "F")
    unit_name = "expression"
    splits_by_query = True  # scored query by query (Benchmark.score_task)

    def __init__(self, root: str | Path, split: str | None = None, decay_mode: str = "davis2017"):
        super().__init__(root, split, decay_mode)
        self._videos: dict | None = None
        self._categories: dict | None = None
        self._load_problems: list[Problem] = []

    @classmethod
    def looks_like(cls, path: Path) -> bool:
        return (path / REFYTVOS_META_DIR).is_dir()

    # --- metadata ---------------------------------------------------------------------------
    def meta_path(self, split: str) -> Path:
        return self.root / REFYTVOS_META_DIR / split / META_EXPRESSIONS

    @property
    def videos(self) -> dict:
        """The split's video records; ``valid`` drops every video listed in the test meta."""
        if self._videos is None:
            videos = read_videos(self.meta_path(self.split), self._load_problems)
            if self.split == "valid":
                test = read_videos(self.meta_path("test"), self._load_problems)
                videos = {v: r for v, r in videos.items() if v not in test}
            self._videos = videos
        return self._videos

    @property
    def categories(self) -> dict[tuple[str, str], str]:
        """(video, obj_id) -> category from ``train/meta.json`` (optional file, train only)."""
        if self._categories is None:
            self._categories = {}
            path = self.root / "train" / YTVOS_META
            if self.split == "train" and path.is_file():
                data = read_json_object(path, self._load_problems) or {}
                check = JsonChecker(path, self._load_problems)
                for video, record in (check.object(data.get("videos"), ("videos",)) or {}).items():
                    record = check.object(record, ("videos", video)) or {}
                    objects = check.object(record.get("objects", {}), ("videos", video, "objects"))
                    for obj_id, obj in (objects or {}).items():
                        if isinstance(obj, dict) and isinstance(obj.get("category"), str):
                            self._categories[(video, str(obj_id))] = obj["category"]
        return self._categories

    def metadata_files(self) -> list[Path]:
        files = [self.meta_path(self.split)]
        return files + [self.meta_path("test")] if self.split == "valid" else files

    def annotation_dir(self, video: str) -> Path:
        return self.root / "train" / ANNOTATION_DIR / video

    def frame_path(self, video: str, frame: str) -> Path:
        """``train/`` or ``valid/JPEGImages`` (test frames: ``valid/``, else ``test/``)."""
        split_dir = "train" if self.split == "train" else "valid"
        path = self.root / split_dir / JPEG_DIR / video / f"{frame}{FRAME_EXT}"
        if self.split == "test" and not path.exists():
            return self.root / "test" / JPEG_DIR / video / f"{frame}{FRAME_EXT}"
        return path

    # --- validation -------------------------------------------------------------------------
    def validate(self) -> list[Problem]:
        videos, _ = self.videos, self.categories  # loading records the metadata problems
        problems = list(self._load_problems)
        check = JsonChecker(self.meta_path(self.split), problems)
        for video, record in videos.items():
            if check_video_record(check, video, record) and self.split == "train":
                self._validate_train_video(check, video, record)
        return problems

    def _validate_train_video(self, check: JsonChecker, video: str, record: dict) -> None:
        for exp_id, exp in record["expressions"].items():
            if isinstance(exp, dict) and _object_id(exp) is None:
                check.fail(("videos", video, "expressions", exp_id, "obj_id"),
                           f"must be an integer string, got {show(exp.get('obj_id'))}")
        folder = self.annotation_dir(video)
        present = {p.stem for p in folder.glob("*.png")} if folder.is_dir() else set()
        absent = [f for f in record["frames"] if f not in present]
        if absent:
            check.problems.append(Problem(str(folder), f"{len(absent)} listed frame(s) have no "
                                                       f"annotation PNG, e.g. {absent[0]}.png"))

    # --- tasks ------------------------------------------------------------------------------
    def tasks(self) -> list[VideoTask]:
        tasks = []
        categories = self.categories
        for video, record in self.videos.items():
            if not well_formed(record):
                continue
            frames = tuple(record["frames"])
            queries = []
            for exp_id, exp in record["expressions"].items():
                obj = _object_id(exp)
                obj_id = None if exp.get("obj_id") is None else str(exp["obj_id"])
                queries.append(Query(video, str(exp_id), clean_expression(exp["exp"]), frames,
                                     () if obj is None else (obj,),
                                     {"obj_id": obj_id,
                                      "category": categories.get((video, obj_id))}))
            tasks.append(VideoTask(video, queries))
        return tasks

    def load_gt(self, task: VideoTask) -> GroundTruth:
        if self.split != "train":
            raise MaskError(self.annotation_dir(task.video), f"no ground truth for {self.split}")
        return _PaletteGT(task.video, self.annotation_dir(task.video))

    # --- protocol views -----------------------------------------------------------------------
    def breakdowns(self, units: pd.DataFrame) -> dict[str, pd.DataFrame]:
        tables = super().breakdowns(units)
        if units["category"].notna().any():
            tables["categories"] = group_means(units, "category", self.compute_f)
        return tables


def _object_id(exp: dict) -> int | None:
    """``int(obj_id)`` (stored as a string, e.g. ``"1"``), None when absent or not an integer."""
    try:
        return int(str(exp.get("obj_id")).strip())
    except ValueError:
        return None
