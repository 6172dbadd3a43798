"""BURST (TAO frames) with REM's referring protocol (miccooper9/ReferEverything burst/eval_burst.py).

Data: ``<root>/annotations_burst/{val,test}/all_classes.json`` (``<root>`` is the TAO folder; the
annotations folder itself is accepted too). Frames are not needed to score.

Protocol: one query "the <class>" per (sequence, category present in ``track_category_ids``);
ground truth on each annotated (1 fps) frame = union of that category's tracks; J per frame (no
void, no F), mean over the annotated frames per (sequence, category), mean per class name, mean
over class names. val and test are pooled by default (split ``valtest``), as REM reports them.

Ids: video = ``<dataset>_<seq_name>`` (REM's key), query id = the category id. Predictions are
read in REM's layout ``<dataset>/<seq_name>/pred/<cid>_<raw name>/<frame stem>.png`` (optionally
inside one wrapper folder such as ``burst_valtest/``) or in the standard layout
``<dataset>_<seq_name>/<cid>/<frame stem>.png``; the layout is detected.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from refvps.errors import MaskError, Problem
from refvps.formats import (BURST_ANNOTATION_FILE, BURST_ANNOTATIONS_DIR, BURST_FOLDER,
                            BURST_FRAMES_DIR,
                            BURST_NAMES_SPLIT, BURST_REM_PRED_DIR, class_phrase)
from refvps.loaders.base import GroundTruth, Query, VideoTask
from refvps.loaders.classwise import ClassAveragedBenchmark
from refvps.loaders.jsonfiles import JsonChecker, duplicates, is_int, read_json_object, show
from refvps.masks import rle_decode

SEQUENCE_KEYS = ("seq_name", "dataset", "height", "width", "annotated_image_paths",
                 "segmentations", "track_category_ids")
POOLED_SPLIT = "valtest"
POOL_ORDER = ("test", "val")
"""Sequences of the pooled split in REM's order: test first, then val."""


def frame_stem(path: str) -> str:
    """REM's prediction file stem of an annotated image path: the text before the first dot."""
    return path.split(".")[0]


class _SequenceGT(GroundTruth):
    """Union of one category's tracks per annotated frame, decoded from the sequence's RLEs."""

    def __init__(self, record: dict):
        self.size = (record["height"], record["width"])
        self.frame_index = {stem: i for i, stem in enumerate(record["frames"])}
        self.segmentations = record["segmentations"]
        self.track_category = record["track_category"]
        self.where = record["where"]
        self.digests: dict[str, str] = {}

    def target(self, query: Query, frame: str) -> tuple[np.ndarray, None]:
        """Each track belongs to one category, so each RLE is decoded once; a lone track is
        returned as decoded (C order), several are OR-ed into one new mask."""
        index = self.frame_index[frame]
        masks = []
        for track, entry in self.segmentations[index].items():
            if self.track_category.get(track) != query.target[0]:
                continue
            try:  # a bare counts string decodes at the sequence's size
                masks.append(rle_decode(entry["rle"], self.size))
            except (ValueError, TypeError) as exc:
                raise MaskError(f"{self.where} [frame {index}, track {track}]",
                                f"undecodable RLE ({exc})") from None
        if len(masks) == 1:
            return masks[0], None
        union = np.zeros(self.size, dtype=bool)
        for mask in masks:
            union |= mask
        return union, None


class Burst(ClassAveragedBenchmark):
    name = "burst"
    folder = BURST_FOLDER
    title = "BURST (referring, REM protocol)"
    splits = ("val", "test", POOLED_SPLIT)
    default_split = POOLED_SPLIT
    protocol = ("J on the annotated (1 fps) frames, GT = union of the category's tracks, mean per "
                "(sequence, category), mean per class, mean over classes; val + test pooled")
    reference = "miccooper9/ReferEverything burst/eval_burst.py (REM)"

    def __init__(self, root: str | Path, split: str | None = None, decay_mode: str = "davis2017",
                 layout: str = "auto"):
        super().__init__(root, split, decay_mode, layout)
        self._files: dict[str, dict | None] | None = None
        self._load_problems: list[Problem] = []
        self._tasks: list[VideoTask] | None = None
        self._frame_files: dict[str, dict[str, Path]] = {}

    @classmethod
    def looks_like(cls, path: Path) -> bool:
        return (path / BURST_ANNOTATIONS_DIR).is_dir() or any(
            (path / split / BURST_ANNOTATION_FILE).is_file() for split in POOL_ORDER)

    # --- metadata ---------------------------------------------------------------------------
    @property
    def annotations_dir(self) -> Path:
        nested = self.root / BURST_ANNOTATIONS_DIR
        return nested if nested.is_dir() else self.root

    def split_names(self) -> tuple[str, ...]:
        return POOL_ORDER if self.split == POOLED_SPLIT else (self.split,)

    def annotation_file(self, split: str) -> Path:
        return self.annotations_dir / split / BURST_ANNOTATION_FILE

    def metadata_files(self) -> list[Path]:
        names = {*self.split_names(), BURST_NAMES_SPLIT}
        return [self.annotation_file(s) for s in sorted(names)]

    def _load(self) -> dict[str, dict | None]:
        if self._files is None:
            self._files = {}
            for split in {*self.split_names(), BURST_NAMES_SPLIT}:
                required = split in self.split_names()
                self._files[split] = self._read_json(self.annotation_file(split), required)
        return self._files

    def _read_json(self, path: Path, required: bool) -> dict | None:
        data = read_json_object(path, self._load_problems, required=required)
        if data is not None and not isinstance(data.get("sequences"), list):
            self._load_problems.append(Problem(f"{path}: sequences", "expected a list of "
                                               f"sequence records, got {show(data.get('sequences'))}"))
            return None
        return data

    def category_names(self) -> dict[int, str]:
        """Category id -> raw name from val ``all_classes.json`` (REM's rule).

        When the val file is absent (e.g. only test annotations are present), the categories of
        the loaded split files are used instead.
        """
        files = self._load()
        sources = [files.get(BURST_NAMES_SPLIT)] if files.get(BURST_NAMES_SPLIT) else \
            [files[s] for s in self.split_names() if files.get(s)]
        names: dict[int, str] = {}
        for data in sources:
            categories = data.get("categories", [])
            for category in categories if isinstance(categories, list) else []:
                if isinstance(category, dict) and is_int(category.get("id")) \
                        and isinstance(category.get("name"), str):
                    names.setdefault(category["id"], category["name"])
        return names

    def _validate_categories(self, problems: list[Problem]) -> None:
        """Every category record of the loaded files: an integer id and a name, ids unique."""
        for split, data in sorted(self._load().items()):
            if not data:
                continue
            check = JsonChecker(self.annotation_file(split), problems)
            categories = data.get("categories", [])
            if not isinstance(categories, list):
                check.fail(("categories",), f"must be a list of category objects, got "
                                            f"{show(categories)}")
                continue
            seen: dict[int, str] = {}
            for index, category in enumerate(categories):
                keys = ("categories", index)
                if check.object(category, keys) is None:
                    continue
                cid = check.integer(category.get("id"), (*keys, "id"))
                name = check.text(category.get("name"), (*keys, "name"))
                if cid is None or name is None:
                    continue
                if cid in seen and seen[cid] != name:
                    check.fail((*keys, "id"), f"category id {cid} is listed twice, as "
                                              f"{seen[cid]!r} and {name!r}")
                seen.setdefault(cid, name)

    def sequences(self) -> list[tuple[str, int, dict]]:
        """(split, index in the file, record) of every sequence, in REM's order."""
        files = self._load()
        return [(split, index, record) for split in self.split_names()
                for index, record in enumerate((files.get(split) or {}).get("sequences", []))]

    # --- validation -------------------------------------------------------------------------
    def validate(self) -> list[Problem]:
        sequences = self.sequences()
        names = self.category_names()
        problems = list(self._load_problems)
        self._validate_categories(problems)
        seen: dict[tuple[str, str], str] = {}
        for split, index, record in sequences:
            check = JsonChecker(self.annotation_file(split), problems)
            keys = ("sequences", index)
            if check.object(record, keys) is None:
                continue
            missing = [key for key in SEQUENCE_KEYS if key not in record]
            if missing:
                check.fail(keys, f"missing key(s) {', '.join(map(repr, missing))}")
                continue
            if any(check.text(record[k], (*keys, k)) is None for k in ("dataset", "seq_name")):
                continue
            where = f"{self.annotation_file(split)}: sequences.{index} " \
                    f"({record['dataset']}/{record['seq_name']})"
            key = (record["dataset"], record["seq_name"])
            if key in seen:
                problems.append(Problem(where, f"duplicate sequence (also in {seen[key]}); "
                                               "its prediction folders would collide"))
            seen[key] = split
            problems += self._validate_sequence(record, names, where)
        return problems

    @staticmethod
    def _validate_sequence(record: dict, names: dict[int, str], where: str) -> list[Problem]:
        problems = []
        height, width = record["height"], record["width"]
        if not (is_int(height) and is_int(width) and height > 0 and width > 0):
            problems.append(Problem(where, f"height/width must be positive integers, got "
                                           f"{height!r}/{width!r}"))
        paths, segmentations = record["annotated_image_paths"], record["segmentations"]
        if not isinstance(paths, list) or not isinstance(segmentations, list):
            return problems + [Problem(where, "annotated_image_paths and segmentations must be "
                                              "lists")]
        if len(paths) != len(segmentations):
            problems.append(Problem(where, f"{len(paths)} annotated_image_paths but "
                                           f"{len(segmentations)} segmentations"))
        if not all(isinstance(p, str) and p for p in paths):
            return problems + [Problem(where, "annotated_image_paths must be a list of image "
                                              "file names")]
        stems = [frame_stem(p) for p in paths]
        if dup := duplicates(stems):
            problems.append(Problem(where, f"two annotated images share the file stem "
                                           f"{dup[0]!r} (their predictions would collide)"))
        tracks = record["track_category_ids"]
        if not isinstance(tracks, dict):
            return problems + [Problem(where, "track_category_ids must be an object")]
        for track, category in tracks.items():
            if not is_int(category) or category not in names:
                problems.append(Problem(where, f"track {track}: category {category!r} has no name "
                                               "in the val categories"))
        for index, frame in enumerate(segmentations):
            if not isinstance(frame, dict):
                problems.append(Problem(where, f"segmentations[{index}] is not an object"))
                continue
            for track, entry in frame.items():
                if track not in tracks:
                    problems.append(Problem(where, f"segmentations[{index}]: track {track} is not "
                                                   "in track_category_ids"))
                elif not isinstance(entry, dict) or not isinstance(entry.get("rle"), str):
                    problems.append(Problem(where, f"segmentations[{index}]: track {track} has "
                                                   "no 'rle' string"))
        return problems

    # --- tasks ------------------------------------------------------------------------------
    def tasks(self) -> list[VideoTask]:
        if self._tasks is None:
            self._tasks = self._build_tasks()
        return self._tasks

    def _build_tasks(self) -> list[VideoTask]:
        names = self.category_names()
        tasks = []
        for split, _index, record in self.sequences():
            if not _usable(record):
                continue
            dataset, seq_name = str(record["dataset"]), str(record["seq_name"])
            video = f"{dataset}_{seq_name}"
            stems = tuple(frame_stem(str(p)) for p in record["annotated_image_paths"])
            folder = self.root / BURST_FRAMES_DIR / split / dataset / seq_name
            self._frame_files[video] = {stem: folder / str(p) for stem, p in
                                        zip(stems, record["annotated_image_paths"])}
            categories = list(dict.fromkeys(record["track_category_ids"].values()))
            queries = []
            for category in categories:
                raw = names.get(category, str(category))
                queries.append(Query(
                    video=video, query_id=str(category), text=f"the {class_phrase(raw)}",
                    frames=stems, target=(category,),
                    meta={"class": raw, "category_id": category, "split": split,
                          "dataset": dataset, "seq_name": seq_name,
                          "rem_prompt": f"the {raw}", "rem_folder": f"{category}_{raw}"}))
            gt = {"height": record["height"], "width": record["width"], "frames": stems,
                  "segmentations": record["segmentations"],
                  "track_category": dict(record["track_category_ids"]),
                  "where": f"{self.annotation_file(split)} [{dataset}/{seq_name}]"}
            tasks.append(VideoTask(video, queries, gt=gt))
        return tasks

    def load_gt(self, task: VideoTask) -> GroundTruth:
        return _SequenceGT(task.gt)

    def frame_path(self, video: str, frame: str) -> Path:
        """TAO's ``frames/<split>/<dataset>/<seq_name>/<image>`` of an annotated frame."""
        self.tasks()
        return self._frame_files[video][frame]

    # --- predictions ------------------------------------------------------------------------
    def tolerated_prediction_paths(self) -> list[str]:
        """Scoring one split of a pooled (REM ``burst_valtest``) folder: the other split's
        prediction folders are expected there, not unknown."""
        if self.split == POOLED_SPLIT:
            return []
        other = next(s for s in POOL_ORDER if s != self.split)
        if not self.annotation_file(other).is_file():
            return []
        bench = Burst(self.root, split=other, layout=self.layout)
        return [bench.prediction_relpath(q, f) for q in bench.queries() for f in q.frames]

    def rem_relpath(self, query: Query, frame: str) -> str:
        meta = query.meta
        return (f"{meta['dataset']}/{meta['seq_name']}/{BURST_REM_PRED_DIR}/"
                f"{meta['rem_folder']}/{frame}.png")


def _usable(record: object) -> bool:
    """Whether a sequence record has the structure tasks are built from (checked in validate)."""
    return isinstance(record, dict) and all(k in record for k in SEQUENCE_KEYS) \
        and isinstance(record["annotated_image_paths"], list) \
        and isinstance(record["segmentations"], list) \
        and isinstance(record["track_category_ids"], dict)
