"""Ref-VPS in refvps-format 0.1 (a proposal until the official release; docs/benchmarks/ref-vps.md).

Protocol: J with Ignore (label 255) excluded from intersection and union, on the 6 fps annotated
frames only, mean per expression, then mean over all expressions. F and J&F (with Ignore turned
to background, as DAVIS treats void) are secondary; temporal consistency is mean |dJ| between
consecutive annotated frames of an expression.
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd

from refvps.errors import MaskError, Problem
from refvps.formats import (ANNOTATION_DIR, CONCEPT_GROUPS, CONCEPTS_FILE, IGNORE_LABEL,
                            JPEG_DIR, META_EXPRESSIONS, REFVPS_FOLDER, REFVPS_FORMAT_FILE,
                            SPLITS_DIR)
from refvps.loaders.base import (Benchmark, GroundTruth, Query, VideoTask, group_means,
                                 read_digested)
from refvps.loaders.jsonfiles import (JsonChecker, read_json_object, read_name_list, read_videos,
                                      show)
from refvps.masks import read_mask

REQUIRED_VIDEO_KEYS = ("frames", "anno_frames", "expressions")


class _ClipGT(GroundTruth):
    def __init__(self, video: str, annotation_dir: Path, size: tuple[int, int] | None):
        self.video = video
        self.annotation_dir = annotation_dir
        self.size = size
        self.labels: dict[str, np.ndarray] = {}
        self.targets: dict[tuple, tuple[np.ndarray, np.ndarray | None]] = {}
        self.digests: dict[str, str] = {}

    def label(self, frame: str) -> np.ndarray:
        labels = self.labels.get(frame)
        if labels is None:
            path = self.annotation_dir / f"{frame}.png"
            labels = read_digested(path, self.digests, f"{ANNOTATION_DIR}/{self.video}/{frame}.png")
            if self.size is not None and labels.shape != self.size:
                raise MaskError(path, f"size {labels.shape[1]}x{labels.shape[0]} (WxH), "
                                      f"meta_expressions.json says {self.size[1]}x{self.size[0]}")
            self.labels[frame] = labels
        return labels

    def target(self, query: Query, frame: str) -> tuple[np.ndarray, np.ndarray | None]:
        key = (frame, query.target)
        masks = self.targets.get(key)
        if masks is None:  # the four expressions of a clip share one target
            labels = self.label(frame)
            void = labels == IGNORE_LABEL
            if len(query.target) == 1:
                fg = labels == query.target[0]
            else:
                fg = np.isin(labels, query.target)
            masks = self.targets[key] = (fg, void if void.any() else None)
        return masks


class RefVPS(Benchmark):
    name = "ref-vps"
    folder = REFVPS_FOLDER
    title = "Ref-VPS (Referring Video Process Segmentation)"
    splits = ("test",)
    default_split = "test"
    protocol = ("J with Ignore excluded, on 6 fps annotated frames, mean per expression, mean over "
                "expressions; F, J&F and temporal consistency secondary")
    reference = "refvps-defined (no public reference implementation; see docs/benchmarks/ref-vps.md)"
    headline = ("J", "F", "J&F", "TC")
    unit_name = "expression"
    splits_by_query = True  # scored query by query (Benchmark.score_task)

    def __init__(self, root: str | Path, split: str | None = None, decay_mode: str = "davis2017"):
        super().__init__(root, split, decay_mode)
        self._meta: dict | None = None
        self._concepts: dict | None = None
        self._load_problems: list[Problem] = []

    @classmethod
    def looks_like(cls, path: Path) -> bool:
        return os.path.lexists(path / META_EXPRESSIONS) and (path / ANNOTATION_DIR).is_dir()

    # --- metadata ---------------------------------------------------------------------------
    @property
    def meta(self) -> dict:
        if self._meta is None:
            self._meta = read_videos(self.root / META_EXPRESSIONS, self._load_problems)
        return self._meta

    @property
    def concepts(self) -> dict:
        if self._concepts is None:
            self._concepts = read_json_object(self.root / CONCEPTS_FILE, self._load_problems) or {}
        return self._concepts

    def metadata_files(self) -> list[Path]:
        return [self.root / META_EXPRESSIONS, self.root / CONCEPTS_FILE, self._split_file()]

    def _split_file(self) -> Path:
        return self.root / SPLITS_DIR / f"{self.split}.txt"

    def clip_ids(self) -> list[str]:
        """Clips of the split: the split list when present, else every clip in the metadata."""
        split_file = self._split_file()
        if os.path.lexists(split_file):
            return read_name_list(split_file, [], "clip") or []
        return sorted(self.meta)

    def concept_index(self) -> dict[str, dict]:
        concepts = self.concepts.get("concepts")
        return {c.get("id"): c for c in concepts if isinstance(c, dict)} \
            if isinstance(concepts, list) else {}

    # --- validation -------------------------------------------------------------------------
    def validate(self) -> list[Problem]:
        problems: list[Problem] = []
        meta = self.meta
        concepts = self.concepts
        problems += self._load_problems
        if not (self.root / REFVPS_FORMAT_FILE).is_file():
            problems.append(Problem(str(self.root / REFVPS_FORMAT_FILE),
                                    "missing (expected the text 'refvps-format 0.1')"))
        known_groups = {g[0] for g in CONCEPT_GROUPS}
        concept_ids = self._validate_concepts(concepts, known_groups, problems)
        split_file = self._split_file()
        if os.path.lexists(split_file):
            clips = read_name_list(split_file, problems, "clip")
            if clips is not None and not clips:
                problems.append(Problem(str(split_file), "the split list names no clip"))
        else:
            clips = sorted(meta)
        check = JsonChecker(self.root / META_EXPRESSIONS, problems)
        for clip in clips or []:
            if clip not in meta:
                problems.append(Problem(str(split_file),
                                        f"clip {clip!r} is not in {META_EXPRESSIONS}"))
                continue
            self._validate_clip(check, clip, meta[clip], concept_ids, known_groups)
        return problems

    def _validate_concepts(self, concepts: dict, known_groups: set,
                           problems: list[Problem]) -> dict:
        """Check concepts.json; the known group ids grow by its groups. Returns the concepts."""
        check = JsonChecker(self.root / CONCEPTS_FILE, problems)
        if not concepts:
            return {}
        groups = concepts.get("groups", [])
        if isinstance(groups, list):
            for index, group in enumerate(groups):
                if check.object(group, ("groups", index)) is not None and \
                        check.text(group.get("id"), ("groups", index, "id")) is not None:
                    known_groups.add(group["id"])
        else:
            check.fail(("groups",), f"must be a list of group objects, got {show(groups)}")
        listed = concepts.get("concepts", [])
        if not isinstance(listed, list):
            check.fail(("concepts",), f"must be a list of concept objects, got {show(listed)}")
            return {}
        index_of: dict[str, dict] = {}
        for index, concept in enumerate(listed):
            keys = ("concepts", index)
            if check.object(concept, keys) is None or \
                    check.text(concept.get("id"), (*keys, "id")) is None:
                continue
            cid = concept["id"]
            if cid in index_of:
                check.fail((*keys, "id"), f"duplicate concept id {cid!r}")
            index_of[cid] = concept
            for group in check.strings(concept.get("groups", []), (*keys, "groups"),
                                       what="group ids", non_empty=False) or []:
                if group not in known_groups:
                    check.fail((*keys, "groups"), f"unknown concept group {group!r}")
        return index_of

    def _validate_clip(self, check: JsonChecker, clip: str, record: object, concept_ids: dict,
                       known_groups: set) -> None:
        keys = ("videos", clip)
        if check.object(record, keys) is None:
            return
        missing = [key for key in REQUIRED_VIDEO_KEYS if key not in record]
        if missing:
            check.fail(keys, f"missing key(s) {', '.join(map(repr, missing))}")
            return
        frames = check.strings(record["frames"], (*keys, "frames"), what="frame names")
        anno = check.strings(record["anno_frames"], (*keys, "anno_frames"),
                             what="annotated frame names")
        if frames is not None and anno is not None:
            position = {f: t for t, f in enumerate(frames)}
            outside = [f for f in anno if f not in position]
            for frame in outside:
                check.fail((*keys, "anno_frames"), f"annotated frame {frame!r} is not in 'frames'")
            inside = [position[f] for f in anno if f in position]
            if inside != sorted(inside):
                check.fail((*keys, "anno_frames"), "must follow the order of 'frames' (scores "
                                                   "over time depend on it)")
        size = [check.integer(record[key], (*keys, key), minimum=1)
                for key in ("height", "width") if key in record]
        concept = record.get("concept")
        if concept is not None:
            if not isinstance(concept, str):
                check.fail((*keys, "concept"), f"must be a concept id, got {show(concept)}")
            elif concept_ids and concept not in concept_ids:
                check.fail((*keys, "concept"), f"unknown concept id {concept!r} (not in "
                                               f"{CONCEPTS_FILE})")
        for group in check.strings(record.get("concept_groups", []), (*keys, "concept_groups"),
                                   what="concept group ids", non_empty=False) or []:
            if group not in known_groups:
                check.fail((*keys, "concept_groups"), f"unknown concept group {group!r}")
        expressions = check.object(record["expressions"], (*keys, "expressions"), non_empty=True)
        for exp_id, exp in (expressions or {}).items():
            exp_keys = (*keys, "expressions", exp_id)
            if check.object(exp, exp_keys) is None:
                continue
            check.text(exp.get("exp"), (*exp_keys, "exp"))
            check.ints(exp.get("obj_id"), (*exp_keys, "obj_id"), what="object ids",
                       non_empty=True, unique=True, minimum=1, maximum=IGNORE_LABEL - 1)
        if anno is not None and None not in size:
            self._validate_annotations(clip, anno, _record_size(record), check.problems)
        if frames is not None:
            self._validate_frames(clip, frames, check.problems)

    def _validate_annotations(self, clip: str, anno_frames: list[str],
                              size: tuple[int, int] | None, problems: list[Problem]) -> None:
        anno_dir = self.root / ANNOTATION_DIR / clip
        for frame in anno_frames:
            path = anno_dir / f"{frame}.png"
            try:
                labels = read_mask(path)
            except MaskError as exc:
                what = "annotated frame has no annotation PNG" if exc.what == "file not found" \
                    else exc.what
                problems.append(Problem(exc.path, what))
                continue
            if size is not None and labels.shape != size:
                problems.append(Problem(
                    str(path), f"size {labels.shape[1]}x{labels.shape[0]} (WxH), meta says "
                               f"{size[1]}x{size[0]}"))

    def _validate_frames(self, clip: str, frames: list[str], problems: list[Problem]) -> None:
        jpeg_dir = self.root / JPEG_DIR / clip
        if jpeg_dir.is_dir():
            present = {p.stem for p in jpeg_dir.iterdir()}
            absent = [f for f in frames if f not in present]
            if absent:
                problems.append(Problem(str(jpeg_dir), f"{len(absent)} frame(s) listed in "
                                                       f"'frames' are missing, e.g. {absent[0]}"))

    # --- tasks ------------------------------------------------------------------------------
    def tasks(self) -> list[VideoTask]:
        tasks = []
        concept_ids = self.concept_index()
        for clip in self.clip_ids():
            record = self.meta.get(clip)
            if not isinstance(record, dict) or "expressions" not in record:
                continue
            anno_frames = tuple(str(f) for f in record.get("anno_frames", []))
            concept = record.get("concept")
            groups = list(record.get("concept_groups")
                          or concept_ids.get(concept, {}).get("groups", []))
            queries = []
            for exp_id, exp in record["expressions"].items():
                target = tuple(int(v) for v in exp.get("obj_id", []) or [])
                queries.append(Query(
                    video=clip, query_id=str(exp_id), text=" ".join(str(exp.get("exp", "")).split()),
                    frames=anno_frames, target=target,
                    meta={"concept": concept, "concept_groups": groups,
                          "annotator": exp.get("annotator"), "exp_idx": exp.get("exp_idx"),
                          "n_frames_24fps": len(record.get("frames", []))}))
            tasks.append(VideoTask(clip, queries, gt=_record_size(record)))
        return tasks

    def inference_frames(self, query: Query) -> tuple[str, ...]:
        """All 24 fps frames of the clip (models predict every frame; 6 fps are scored)."""
        return tuple(str(f) for f in self.meta[query.video].get("frames", []))

    def load_gt(self, task: VideoTask) -> GroundTruth:
        return _ClipGT(task.video, self.root / ANNOTATION_DIR / task.video, task.gt)

    # --- protocol views -----------------------------------------------------------------------
    def breakdowns(self, units: pd.DataFrame) -> dict[str, pd.DataFrame]:
        tables = {"clips": group_means(units, "video", self.compute_f)}
        if units["concept"].notna().any():
            tables["concepts"] = group_means(units, "concept", self.compute_f)
        if units["concept_groups"].map(len).any():
            tables["concept_groups"] = group_means(units, "concept_groups", self.compute_f)
        if units["annotator"].notna().any():
            tables["annotators"] = group_means(units, "annotator", self.compute_f)
        return tables


def _record_size(record: dict) -> tuple[int, int] | None:
    height, width = record.get("height"), record.get("width")
    if isinstance(height, int) and isinstance(width, int):
        return (height, width)
    return None
