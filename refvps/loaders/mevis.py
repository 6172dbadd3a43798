"""MeViS (henghuiding/MeViS): motion expressions about one or more objects of a video.

Layout: ``mevis/<split>/{meta_expressions.json, mask_dict.json, JPEGImages/<video>/<frame>.jpg}``
with splits ``train``, ``valid_u`` (offline GT) and ``valid`` (no GT, scored by the server).

Protocol (``tools/eval_mevis.py``): the GT of an expression on frame t is the union of the RLE
masks of its ``anno_id`` s (none = a no-target expression, empty everywhere); J and F on every
frame (no void), mean per expression, mean over expressions, J&F = (J + F) / 2. Predictions are
read as ``cv2.imread(path, IMREAD_GRAYSCALE) != 0``. Strict by default; ``missing="official"``
reproduces the official script: a missing video folder scores J = F = 0 for its expressions, an
expression with a missing folder or frame, an unreadable PNG or a wrong size is dropped from the
mean. See docs/benchmarks/mevis.md.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from refvps.errors import MaskError, Problem
from refvps.inputs import file_problem
from refvps.formats import FRAME_EXT, JPEG_DIR, MASK_DICT, META_EXPRESSIONS, MEVIS_FOLDER, clean_expression
from refvps.loaders.base import Benchmark, GroundTruth, Query, TaskResult, VideoTask, group_means
from refvps.loaders.jsonfiles import (JsonChecker, check_video_record, is_int, read_json_object,
                                      read_videos, well_formed)
from refvps.masks import rle_decode

if TYPE_CHECKING:
    import pandas as pd

GT_SPLITS = ("train", "valid_u")
MISSING_COUNTS = ("videos_missing_scored_zero", "expressions_scored_zero", "expressions_dropped")


class _VideoMasks(GroundTruth):
    """The RLE masks of one video's objects, decoded one frame at a time (one frame held).

    Each (object, frame) is decoded once and each union once per frame, whatever the number of
    expressions sharing them; the arrays handed out are read-only because they are shared.
    """

    def __init__(self, frames: tuple[str, ...], rles: dict[int, list],
                 size: tuple[int, int] | None, source: str):
        self.index = {frame: t for t, frame in enumerate(frames)}
        self.source = source
        self.rles = rles
        self.size = size
        self.digests: dict[str, str] = {}
        self._frame = -1
        self._decoded: dict[int, np.ndarray | None] = {}
        self._unions: dict[tuple, np.ndarray] = {}

    def has_mask(self, query: Query) -> bool:
        """Whether any frame of ``query`` has a non-null RLE (the official decode would run)."""
        return any(rle for anno in query.target for rle in self.rles[anno])

    def _object(self, anno: int, t: int) -> np.ndarray | None:
        if t != self._frame:
            self._frame, self._decoded, self._unions = t, {}, {}
        if anno not in self._decoded:
            rle = self.rles[anno][t]
            try:
                mask = rle_decode(rle) if rle else None
            except (ValueError, TypeError) as exc:
                raise MaskError(f"{self.source} [{anno}]", f"entry {t}: malformed RLE "
                                                           f"({exc})") from None
            if mask is not None:
                mask.flags.writeable = False
            self._decoded[anno] = mask
        return self._decoded[anno]

    def target_at(self, query: Query, t: int, shape: tuple[int, int]) -> np.ndarray:
        """Union of the query's objects on frame index ``t`` (empty ``shape`` mask if none)."""
        masks = [mask for anno in query.target if (mask := self._object(anno, t)) is not None]
        if len(masks) == 1 and masks[0].shape == shape:
            return masks[0]
        key = (query.target, shape)
        union = self._unions.get(key)
        if union is None:
            union = np.zeros(shape, bool)
            for mask in masks:
                union |= mask
            union.flags.writeable = False
            self._unions[key] = union
        return union

    def target(self, query: Query, frame: str) -> tuple[np.ndarray, np.ndarray | None]:
        return self.target_at(query, self.index[frame], self.size or (1, 1)), None


class MeViS(Benchmark):
    name = "mevis"
    folder = MEVIS_FOLDER
    title = "MeViS (Motion expressions Video Segmentation)"
    splits = ("train", "valid_u", "valid")
    default_split = "valid_u"
    server_splits = ("valid",)
    submission_root = ""
    missing_modes = ("strict", "official")
    splits_by_query = True
    protocol = ("J and F on every frame (no void), GT = union of the expression's objects, mean "
                "per expression, mean over expressions; J&F = (J + F) / 2")
    reference = "henghuiding/MeViS tools/eval_mevis.py"
    headline = ("J&F", "J", "F")
    unit_name = "expression"
    prediction_reader = "cv2-gray"

    def __init__(self, root: str | Path, split: str | None = None, decay_mode: str = "davis2017"):
        root = Path(root)
        if _is_split_dir(root):  # the official --mevis_exp_path folder, e.g. .../valid_u
            if split not in (None, root.name):
                raise ValueError(f"{self.name}: --data points at the {root.name!r} split folder "
                                 f"but split {split!r} was asked for; pass the MeViS folder "
                                 f"{root.parent} to choose another split")
            root, split = root.parent, root.name
        super().__init__(root, split, decay_mode)
        self._videos: dict | None = None
        self._mask_dict: dict | None = None
        self._load_problems: list[Problem] = []

    def __getstate__(self) -> dict:
        state = dict(self.__dict__)
        state["_videos"] = state["_mask_dict"] = None  # tasks carry what workers need
        return state

    @classmethod
    def looks_like(cls, path: Path) -> bool:
        return _is_split_dir(path) or any((path / split / META_EXPRESSIONS).is_file()
                                          for split in cls.splits)

    # --- metadata ---------------------------------------------------------------------------
    @property
    def split_dir(self) -> Path:
        return self.root / self.split

    @property
    def has_gt(self) -> bool:
        return self.split in GT_SPLITS

    @property
    def videos(self) -> dict:
        if self._videos is None:
            self._videos = read_videos(self.split_dir / META_EXPRESSIONS, self._load_problems)
        return self._videos

    @property
    def mask_dict(self) -> dict:
        if self._mask_dict is None:
            self._mask_dict = read_json_object(self.split_dir / MASK_DICT, self._load_problems) or {}
        return self._mask_dict

    def metadata_files(self) -> list[Path]:
        files = [self.split_dir / META_EXPRESSIONS]
        return files + [self.split_dir / MASK_DICT] if self.has_gt else files

    def frame_path(self, video: str, frame: str) -> Path:
        return self.split_dir / JPEG_DIR / video / f"{frame}{FRAME_EXT}"

    def bind_predictions(self, store) -> None:
        """Strict mode refuses PNGs OpenCV's grayscale read would misread (RGB, 16-bit, not a
        PNG); official mode reads whatever the official script's ``cv2.imread`` reads."""
        store.strict_format = self.missing == "strict"

    # --- validation -------------------------------------------------------------------------
    def validate(self) -> list[Problem]:
        videos = self.videos
        mask_dict = self.mask_dict if self.has_gt else {}
        problems = list(self._load_problems)
        check = JsonChecker(self.split_dir / META_EXPRESSIONS, problems)
        for video, record in videos.items():
            if check_video_record(check, video, record) and self.has_gt:
                self._validate_targets(check, video, record, mask_dict)
        return problems

    def _validate_targets(self, check: JsonChecker, video: str, record: dict,
                          mask_dict: dict) -> None:
        problems = check.problems
        n_frames = len(record["frames"])
        sizes: set[tuple[int, int]] = set()
        seen: set[int] = set()
        masks = JsonChecker(self.split_dir / MASK_DICT, problems)
        for exp_id, exp in record["expressions"].items():
            keys = ("videos", video, "expressions", exp_id)
            annos = check.ints(exp.get("anno_id"), (*keys, "anno_id"), unique=True,
                               what="integers (empty for a no-target expression)")
            if "obj_id" in exp:
                check.ints(exp["obj_id"], (*keys, "obj_id"), what="object indices")
            for anno in annos or []:
                if anno in seen:
                    continue
                seen.add(anno)
                entries = mask_dict.get(str(anno))
                if entries is None:
                    if self._mask_dict:  # a missing file is reported once, not per anno_id
                        masks.fail((str(anno),), f"anno_id {anno} of {video}/{exp_id} is not in "
                                                 "mask_dict.json")
                    continue
                if not isinstance(entries, list) or len(entries) != n_frames:
                    masks.fail((str(anno),), f"expected a list of {n_frames} entries (one per "
                                             f"frame of {video})")
                    continue
                for t, rle in enumerate(entries):
                    size = _rle_size(rle)
                    if size is None and rle is not None:
                        masks.fail((str(anno), t), "neither null nor an RLE object "
                                                   "{size: [H, W], counts}")
                    elif size is not None:
                        sizes.add(size)
        where = check.where(("videos", video))
        if len(sizes) > 1:
            shown = ", ".join(f"{w}x{h}" for h, w in sorted(sizes))
            problems.append(Problem(where, f"the RLE masks of this video have different sizes "
                                           f"(WxH: {shown})"))
        elif sizes:
            problems += self._check_image_size(video, record["frames"][0], next(iter(sizes)))

    def _check_image_size(self, video: str, frame: str, size: tuple[int, int]) -> list[Problem]:
        path = self.frame_path(video, frame)
        if not os.path.lexists(path):
            return []  # frames are optional for scoring
        reason = file_problem(path)
        if reason:
            return [Problem(str(path), reason)]
        from PIL import Image  # the scoring processes, which load this module, never need it

        try:
            with Image.open(path) as image:
                width, height = image.size
        except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as exc:
            what = "empty file (0 bytes)" if path.stat().st_size == 0 else \
                f"unreadable image ({exc.__class__.__name__}: {exc})"
            return [Problem(str(path), what)]
        if (height, width) != size:
            return [Problem(str(path), f"image is {width}x{height} (WxH) but the video's RLE "
                                       f"masks are {size[1]}x{size[0]}")]
        return []

    # --- tasks ------------------------------------------------------------------------------
    def _build(self, with_gt: bool) -> list[VideoTask]:
        tasks = []
        for video, record in self.videos.items():
            if not well_formed(record):
                continue
            frames = tuple(record["frames"])
            queries = []
            for exp_id, exp in record["expressions"].items():
                annos = exp.get("anno_id") if self.has_gt else None
                target = tuple(int(a) for a in annos) if isinstance(annos, list) else ()
                meta = {"obj_id": exp.get("obj_id"), "anno_id": annos,
                        "targets": _target_kind(annos)}
                queries.append(Query(video, str(exp_id), clean_expression(exp["exp"]), frames,
                                     target, meta))
            gt = self._video_rles(queries) if with_gt else None
            tasks.append(VideoTask(video, queries, gt=gt))
        return tasks

    def _video_rles(self, queries: list[Query]) -> tuple[dict[int, list], tuple | None]:
        rles = {anno: self.mask_dict[str(anno)] for q in queries for anno in q.target}
        sizes = {size for entries in rles.values() for rle in entries
                 if (size := _rle_size(rle)) is not None}
        return rles, (next(iter(sizes)) if len(sizes) == 1 else None)

    def tasks(self) -> list[VideoTask]:
        return self._build(with_gt=self.has_gt)

    def split_task(self, task: VideoTask, store, parts: int = 2) -> list[VideoTask]:
        # A video missing under the official rule is scored zero, and counted, as a whole.
        if self.missing == "official" and not store.has_folder(task.video):
            return [task]
        return super().split_task(task, store, parts)

    def queries(self) -> list[Query]:
        return [q for task in self._build(with_gt=False) for q in task.queries]

    def load_gt(self, task: VideoTask) -> _VideoMasks:
        rles, size = task.gt if task.gt is not None else ({}, None)
        frames = task.queries[0].frames if task.queries else ()
        return _VideoMasks(frames, rles, size, str(self.split_dir / MASK_DICT))

    # --- scoring ----------------------------------------------------------------------------
    def score_task(self, task: VideoTask, reader, allow_missing: bool = False) -> TaskResult:
        """Score a video frame by frame (one frame's GT decoded at a time, shared by queries)."""
        try:
            return self._score_video(task, reader, allow_missing)
        except MaskError as exc:  # a malformed RLE in mask_dict.json
            return TaskResult([], [Problem(exc.path, exc.what)])

    def _score_video(self, task: VideoTask, reader, allow_missing: bool) -> TaskResult:
        gt = self.load_gt(task)
        counts = dict.fromkeys(MISSING_COUNTS, 0)
        if self.missing == "official" and not reader.has_folder(task.video):
            counts["videos_missing_scored_zero"] = 1
            counts["expressions_scored_zero"] = len(task.queries)
            note = Problem(reader.describe(task.video),
                           f"video folder missing: its {len(task.queries)} expression(s) scored "
                           "J = F = 0 (official rule)")
            return TaskResult(self._zero_rows(task, gt), [], 0, {}, counts, [note])
        scorer = _VideoScorer(self, task, gt, reader, allow_missing)
        rows = scorer.run()
        counts["expressions_dropped"] = len(scorer.dropped)
        return TaskResult(rows, scorer.problems, scorer.missing, {}, counts,
                          list(scorer.dropped.values()))

    def _zero_rows(self, task: VideoTask, gt: _VideoMasks) -> list[dict]:
        rows = []
        for query in task.queries:
            for t, frame in enumerate(query.frames):
                gt_area = int(np.count_nonzero(gt.target_at(query, t, gt.size or (1, 1))))
                rows.append({"unit": query.unit, "video": query.video, "query_id": query.query_id,
                             "frame": frame, "t": t, "J": 0.0, "gt_area": gt_area,
                             "pred_area": 0, "void_area": 0, "pred_missing": True, "F": 0.0})
        return rows

    # --- protocol views -----------------------------------------------------------------------
    def breakdowns(self, units: pd.DataFrame) -> dict[str, pd.DataFrame]:
        tables = super().breakdowns(units)
        if units["targets"].notna().any():
            tables["targets"] = group_means(units, "targets", self.compute_f)
        return tables


class _VideoScorer:
    """Scores the queries of one video frame-major, applying the benchmark's missing mode."""

    def __init__(self, bench: MeViS, task: VideoTask, gt: _VideoMasks, reader, allow_missing: bool):
        self.bench, self.task, self.gt, self.reader = bench, task, gt, reader
        self.allow_missing = allow_missing
        self.official = bench.missing == "official"
        self.problems: list[Problem] = []
        self.dropped: dict[str, Problem] = {}
        self.missing = 0
        self.shapes: dict[str, tuple[int, int]] = {}

    def run(self) -> list[dict]:
        rows: dict[str, list[dict]] = {q.unit: [] for q in self.task.queries}
        frames = self.task.queries[0].frames if self.task.queries else ()
        for t, frame in enumerate(frames):
            gt_packed: dict = {}
            for query in self.task.queries:
                if query.unit in self.dropped:
                    continue
                scored = self._score(query, t, frame, gt_packed)
                if scored is not None:
                    rows[query.unit].append(scored)
        return [row for unit, unit_rows in rows.items() if unit not in self.dropped
                for row in unit_rows]

    def _reject(self, query: Query, where: str, what: str) -> None:
        """Drop ``query`` (official mode) or record a problem (strict mode)."""
        if self.official:
            self.dropped[query.unit] = Problem(where, f"{what}: expression dropped from the mean "
                                                      "(official rule)")
        else:
            self.problems.append(Problem(where, what))

    def _score(self, query: Query, t: int, frame: str, gt_packed: dict) -> dict | None:
        relpath = self.bench.prediction_relpath(query, frame)
        try:
            pred = self.reader.read_binary(relpath)
        except MaskError as exc:
            self._reject(query, exc.path, exc.what)
            return None
        is_missing = pred is None
        if is_missing:
            self.missing += 1
            if self.official:
                folder = f"{query.video}/{query.query_id}"
                if self.reader.has_folder(folder):
                    self._reject(query, self.reader.describe(relpath), "prediction frame missing")
                else:
                    self._reject(query, self.reader.describe(folder), "expression folder missing")
                return None
            if not self.allow_missing:
                return None  # reported by the presence check
        shape = self._expected_shape(query, None if is_missing else pred.shape)
        if is_missing:
            pred = np.zeros(shape, bool)
        elif pred.shape != shape:
            self._reject(query, self.reader.describe(relpath), f"size {pred.shape[1]}x{pred.shape[0]} (WxH), expected "
                                       f"{shape[1]}x{shape[0]}")
            return None
        if self.official and self.gt.size not in (None, shape) and self.gt.has_mask(query):
            self._reject(query, self.reader.describe(relpath), f"size {shape[1]}x{shape[0]} (WxH) differs from the GT "
                                       f"size {self.gt.size[1]}x{self.gt.size[0]}")
            return None
        fg = self.gt.target_at(query, t, shape)
        return self.bench._score_frame(query, t, frame, fg, None, pred, is_missing,
                                       gt_packed.setdefault(shape, {}))

    def _expected_shape(self, query: Query, seen: tuple[int, int] | None) -> tuple[int, int]:
        """The GT size; official mode, or GT without any mask: the expression's first frame."""
        if query.unit not in self.shapes:
            if self.gt.size is not None and not self.official:
                self.shapes[query.unit] = self.gt.size
            else:  # both empty frames score 1 whatever the size, so (1, 1) is exact if unseen
                self.shapes[query.unit] = seen or self.gt.size or next(iter(self.shapes.values()),
                                                                       (1, 1))
        return self.shapes[query.unit]


def _is_split_dir(path: Path) -> bool:
    """Whether ``path`` is one split's folder (``train``, ``valid_u``, ``valid``) itself."""
    return path.name in MeViS.splits and (path / META_EXPRESSIONS).is_file()


def _rle_size(rle: object) -> tuple[int, int] | None:
    if isinstance(rle, dict) and isinstance(rle.get("counts"), (str, list)) \
            and isinstance(rle.get("size"), list) and len(rle["size"]) == 2 \
            and all(is_int(v) and v > 0 for v in rle["size"]):
        return int(rle["size"][0]), int(rle["size"][1])
    return None


def _target_kind(annos: object) -> str | None:
    if not isinstance(annos, list):
        return None
    return {0: "none", 1: "single"}.get(len(annos), "multi")
