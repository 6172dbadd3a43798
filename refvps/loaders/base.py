"""What every benchmark module provides: queries, ground truth, a scoring protocol.

A benchmark turns a dataset on disk into :class:`VideoTask` s (one video and the queries asked
about it). A worker loads the video's ground truth once (:meth:`Benchmark.load_gt`), scores every
query frame by frame (:meth:`Benchmark.score_task`), and returns per-frame rows. The protocol
(:meth:`Benchmark.aggregate`) turns the per-frame table into the numbers a paper reports.
"""
from __future__ import annotations

import hashlib
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Mapping

import numpy as np

from refvps.errors import MaskError, Problem, RefvpsError, UsageError
from refvps.formats import FRAME_EXT, JPEG_DIR
from refvps.inputs import read_file
from refvps.masks import binarize, read_mask_bytes
from refvps.metrics import (boundary_radius, decay_with_check, jf_score, sequence_mean,
                            sequence_recall, temporal_consistency)
from refvps.metrics.bits import pack_mask, popcount
from refvps.metrics.boundary import f_of_packed

if TYPE_CHECKING:  # pandas is imported where tables are built: scoring workers never need it
    import pandas as pd


@dataclass(frozen=True)
class Query:
    """One referring query: a text about one video, scored on ``frames``."""

    video: str
    query_id: str
    text: str
    frames: tuple[str, ...]
    target: tuple[int, ...] = ()
    meta: Mapping[str, Any] = field(default_factory=dict)

    @property
    def unit(self) -> str:
        return f"{self.video}/{self.query_id}"


@dataclass
class VideoTask:
    """A picklable unit of work: one video, its queries and where its ground truth lives.

    A pool may score a video's queries in parts (:meth:`Benchmark.split_task`): ``part``
    numbers them.
    """

    video: str
    queries: list[Query]
    gt: Any = None
    part: int = 0


@dataclass
class TaskResult:
    """What a worker sends back for one video."""

    rows: list[dict]
    problems: list[Problem]
    missing: int = 0
    digests: dict[str, str] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=dict)  # summed into summary["counts"]
    tolerated: list[Problem] = field(default_factory=list)  # accepted by a lenient missing mode


class GroundTruth(ABC):
    """Decoded ground truth of one video; ``target`` gives a query's masks on a frame."""

    digests: dict[str, str]

    @abstractmethod
    def target(self, query: Query, frame: str) -> tuple[np.ndarray, np.ndarray | None]:
        """(foreground bool H x W, void bool H x W or None) of ``query`` on ``frame``."""


def read_digested(path: Path, digests: dict[str, str], key: str) -> np.ndarray:
    """Read a mask PNG once, recording the sha256 of its bytes for the data fingerprint."""
    data = read_file(path)
    digests[key] = hashlib.sha256(data).hexdigest()
    return read_mask_bytes(data, str(path))


def score_safely(benchmark: "Benchmark", task: VideoTask, reader,
                 allow_missing: bool) -> TaskResult:
    """``benchmark.score_task``, with a file that could not be used anywhere in it turned into
    a problem naming the file (the run goes on and reports it with all others, exit 2)."""
    try:
        return benchmark.score_task(task, reader, allow_missing)
    except MaskError as exc:
        return TaskResult([], [Problem(exc.path, exc.what)])


UNIT_STATS = ("J", "J_recall", "J_decay", "TC", "n_frames", "empty_pred_rate", "missing_frames")
UNIT_F_STATS = ("F", "F_recall", "F_decay", "J&F")
"""The columns of :meth:`Benchmark.unit_scores` (the second group where F is scored)."""


def _unit_stats(unit: str, columns: dict[str, np.ndarray], compute_f: bool,
                decay_mode: str) -> dict:
    """One unit's statistics from its frames' columns (J, F, pred_area, pred_missing)."""
    j = columns["J"]
    stats = {
        "J": sequence_mean(j),
        "J_recall": sequence_recall(j),
        "J_decay": decay_with_check(j, decay_mode, label=unit),
        "TC": temporal_consistency(j),
        "n_frames": len(j),
        "empty_pred_rate": np.count_nonzero(columns["pred_area"] == 0) / len(j),
        "missing_frames": int(columns["pred_missing"].sum()),
    }
    if compute_f:
        f = columns["F"]
        stats.update({"F": sequence_mean(f), "F_recall": sequence_recall(f),
                      "F_decay": decay_with_check(f, decay_mode, label=unit)})
        stats["J&F"] = jf_score(stats["J"], stats["F"])
    return stats


class Benchmark(ABC):
    """A dataset on disk plus its official scoring protocol."""

    name: ClassVar[str]                 # command-line name, e.g. "ref-vps"
    folder: ClassVar[str]               # folder under the data root, e.g. "ref-vps"
    title: ClassVar[str]
    splits: ClassVar[tuple[str, ...]]
    default_split: ClassVar[str]
    protocol: ClassVar[str]             # one-line description of the protocol followed
    reference: ClassVar[str]            # the implementation the protocol reproduces
    headline: ClassVar[tuple[str, ...]] = ("J&F", "J", "F")
    compute_f: ClassVar[bool] = True
    unit_name: ClassVar[str] = "query"  # what one unit is called in tables ("expression", ...)
    class_key: ClassVar[str | None] = None  # unit meta column averaged first (class-averaged J)
    unit_weight: ClassVar[str | None] = None  # unit column weighting dataset means (default 1)
    server_splits: ClassVar[tuple[str, ...]] = ()  # splits without public GT (scored by a server)
    submission_root: ClassVar[str | None] = None  # top folder of a server zip; None = no submit
    missing_modes: ClassVar[tuple[str, ...]] = ("strict",)  # how missing predictions are handled
    splits_by_query: ClassVar[bool] = False  # a video's queries may be scored in two parts

    def __init__(self, root: str | Path, split: str | None = None, decay_mode: str = "davis2017"):
        self.root = Path(root)
        self.split = split or self.default_split
        if self.split not in self.splits:
            raise UsageError(f"{self.name}: unknown split {self.split!r}; choose one of "
                             f"{', '.join(self.splits)}")
        self.decay_mode = decay_mode
        self.missing = "strict"

    @classmethod
    def check_missing_mode(cls, mode: str) -> None:
        """Raise a clear error when ``mode`` is not one of this benchmark's ``missing_modes``."""
        if mode not in cls.missing_modes:
            raise RefvpsError(f"--missing {mode} is not supported by {cls.name} (supported: "
                              f"{', '.join(cls.missing_modes)})")

    def set_missing_mode(self, mode: str) -> None:
        """Choose how missing / unusable predictions are handled (``strict`` = all are errors)."""
        self.check_missing_mode(mode)
        self.missing = mode

    # --- data -------------------------------------------------------------------------------
    @classmethod
    def looks_like(cls, path: Path) -> bool:
        """Whether ``path`` itself is this benchmark's folder (used to resolve ``--data``)."""
        return False

    @abstractmethod
    def validate(self) -> list[Problem]:
        """Every problem with the dataset on disk (empty list = valid)."""

    @abstractmethod
    def tasks(self) -> list[VideoTask]:
        """One task per video of the split, in a stable order."""

    def split_task(self, task: VideoTask, store, parts: int = 2) -> list[VideoTask]:
        """``task`` as up to ``parts`` tasks of consecutive queries with about as many frames
        each (each cut at the query boundary nearest its share), so that a pool's tasks are
        short enough to balance; ``[task]`` where the protocol scores a video as a whole
        (``splits_by_query`` false) or it has a single query."""
        if not self.splits_by_query or len(task.queries) < 2 or parts < 2:
            return [task]
        frames = np.cumsum([len(query.frames) for query in task.queries])
        cuts = set()
        for k in range(1, parts):
            share = frames[-1] * k / parts
            near = int(np.searchsorted(frames, share))  # the query holding this share's end
            cuts.add(min((c for c in (near, near + 1) if 0 < c < len(task.queries)),
                         key=lambda c: abs(int(frames[c - 1]) - share)))
        bounds = [0, *sorted(cuts), len(task.queries)]
        return [VideoTask(task.video, task.queries[a:b], task.gt, part)
                for part, (a, b) in enumerate(zip(bounds, bounds[1:]))]

    @abstractmethod
    def load_gt(self, task: VideoTask) -> GroundTruth:
        """Decode the ground truth of ``task``'s video (runs in a worker)."""

    def metadata_files(self) -> list[Path]:
        """Files whose content enters the data fingerprint besides the GT masks read."""
        return []

    def queries(self) -> list[Query]:
        return [q for task in self.tasks() for q in task.queries]

    def inference_frames(self, query: Query) -> tuple[str, ...]:
        """Frames a model predicts for ``query`` (the benchmark's inference frame rate); by
        default the scored frames."""
        return query.frames

    def frame_path(self, video: str, frame: str) -> Path:
        """The RGB image of ``frame`` of ``video`` (what models read and viz draws on); the
        DAVIS layout ``<root>/JPEGImages/<video>/<frame>.jpg`` by default."""
        return self.root / JPEG_DIR / video / f"{frame}{FRAME_EXT}"

    def bind_predictions(self, store) -> None:
        """Adapt to a predictions store before its files are listed (e.g. pick its layout)."""

    def tolerated_prediction_paths(self) -> list[str]:
        """Prediction files that may be present without being scored (e.g. another split's);
        their folders are not reported as unknown."""
        return []

    def prediction_relpath(self, query: Query, frame: str) -> str:
        """Where the prediction of ``query`` on ``frame`` lives inside a predictions folder."""
        return f"{query.video}/{query.query_id}/{frame}.png"

    def required_predictions(self, store, tasks: list[VideoTask]) -> list[str]:
        """Every prediction file the tasks need (a layout may depend on what ``store`` holds)."""
        return [self.prediction_relpath(q, f) for t in tasks for q in t.queries for f in q.frames]

    def notes(self) -> list[str]:
        """Facts about this dataset's protocol that a reader of the results must know."""
        return []

    def units_table(self) -> pd.DataFrame:
        """One row per query with its metadata (text, concept, annotator, class, ...)."""
        import pandas as pd

        rows = []
        for q in self.queries():
            row = {"unit": q.unit, "video": q.video, "query_id": q.query_id, "text": q.text,
                   "n_words": len(q.text.split())}
            row.update(q.meta)
            rows.append(row)
        return pd.DataFrame(rows)

    # --- scoring (runs in workers) ------------------------------------------------------------
    def score_task(self, task: VideoTask, reader, allow_missing: bool = False) -> TaskResult:
        """Score every query of one video frame by frame (each PNG decoded once)."""
        problems: list[Problem] = []
        try:
            gt = self.load_gt(task)
        except MaskError as exc:
            return TaskResult([], [Problem(exc.path, exc.what)])
        rows: list[dict] = []
        missing = 0
        gt_packed: dict[tuple, Any] = {}
        for query in task.queries:
            for index, frame in enumerate(query.frames):
                try:
                    fg, void = gt.target(query, frame)
                except MaskError as exc:
                    problems.append(Problem(exc.path, exc.what))
                    continue
                relpath = self.prediction_relpath(query, frame)
                try:
                    pred = reader.read_binary(relpath)
                except MaskError as exc:
                    problems.append(Problem(exc.path, exc.what))
                    continue
                is_missing = pred is None
                if is_missing:
                    missing += 1
                    if not allow_missing:
                        continue  # reported by the presence check
                    pred = np.zeros_like(fg)
                elif pred.shape != fg.shape:
                    problems.append(Problem(reader.describe(relpath),
                                            f"size {pred.shape[1]}x{pred.shape[0]} (WxH), "
                                            f"expected {fg.shape[1]}x{fg.shape[0]}"))
                    continue
                rows.append(self._score_frame(query, index, frame, fg, void, pred, is_missing,
                                              gt_packed))
        return TaskResult(rows, problems, missing, dict(gt.digests))

    def _score_frame(self, query: Query, index: int, frame: str, fg: np.ndarray,
                     void: np.ndarray | None, pred: np.ndarray, is_missing: bool,
                     gt_packed: dict) -> dict:
        # J and F from bit-packed masks (64 pixels a word); void pixels count for neither J
        # nor F (for F they become background). The ground truth of a (frame, target) is
        # packed once for all the queries that share it.
        pred_bits = pack_mask(binarize(pred))
        void_bits = None if void is None else pack_mask(void)
        if void_bits is not None:
            pred_bits &= ~void_bits
        key = (frame, query.target)
        gt = gt_packed.get(key)
        if gt is None:
            fg_bits = pack_mask(fg)
            if void_bits is not None:
                fg_bits &= ~void_bits
            gt = gt_packed[key] = (fg_bits, popcount(fg_bits))
        fg_bits, gt_area = gt
        inter = popcount(fg_bits & pred_bits)
        pred_area = popcount(pred_bits)
        union = gt_area + pred_area - inter
        row = {"unit": query.unit, "video": query.video, "query_id": query.query_id,
               "frame": frame, "t": index, "J": 1.0 if union == 0 else inter / union,
               "gt_area": gt_area, "pred_area": pred_area,
               "void_area": 0 if void_bits is None else popcount(void_bits),
               "pred_missing": is_missing}
        if self.compute_f:
            row["F"] = f_of_packed(fg_bits, pred_bits, fg.shape, boundary_radius(fg.shape))
        return row

    # --- protocol ---------------------------------------------------------------------------
    def unit_scores(self, frames: pd.DataFrame) -> pd.DataFrame:
        """Per-unit statistics from the per-frame rows (frames in scoring order), one row per
        unit in sorted order, every statistic a float64 column.

        Each unit's frames are a slice of the columns once the rows are sorted by unit, so the
        statistics run on NumPy slices (a pandas group apply costs ~0.4 ms a unit).
        """
        import pandas as pd

        frames = frames.sort_values(["unit", "t"], kind="stable")
        names = ["J", "pred_area", "pred_missing"] + (["F"] if self.compute_f else [])
        columns = {name: frames[name].to_numpy() for name in names}
        units = frames["unit"].to_numpy()
        starts = np.flatnonzero(np.r_[True, units[1:] != units[:-1]]) if len(units) else []
        ends = [*starts[1:], len(units)]
        stats = [_unit_stats(str(units[a]), {name: col[a:b] for name, col in columns.items()},
                             self.compute_f, self.decay_mode) for a, b in zip(starts, ends)]
        keys = UNIT_STATS + (UNIT_F_STATS if self.compute_f else ())
        table = pd.DataFrame(stats, columns=list(keys), dtype=np.float64)
        table.insert(0, "unit", units[starts] if len(units) else [])
        return table

    def aggregate(self, frames: pd.DataFrame, units: pd.DataFrame) -> tuple[dict, dict]:
        """(headline metrics, tables) of the protocol; ``units`` = metadata joined with scores."""
        metrics = _dataset_means(units, self.compute_f, self.class_key)
        return metrics, self.breakdowns(units)

    def breakdowns(self, units: pd.DataFrame) -> dict[str, pd.DataFrame]:
        """Extra per-group tables (per concept, per class, ...); none by default."""
        tables = {"videos": group_means(units, "video", self.compute_f)}
        if self.class_key:
            tables["classes"] = group_means(units, self.class_key, self.compute_f)
        return tables


def group_means(units: pd.DataFrame, key: str, compute_f: bool) -> pd.DataFrame:
    """Mean unit scores per value of ``key`` (a list-valued column counts in every group)."""
    metrics = ["J", "J_recall", "TC"] + (["F", "F_recall", "J&F"] if compute_f else [])
    table = units.explode(key) if units[key].map(lambda v: isinstance(v, (list, tuple))).any() \
        else units
    grouped = table.groupby(key, sort=True)
    out = grouped[metrics].mean()
    out.insert(0, "n_units", grouped.size())
    return out.reset_index()


def _dataset_means(units: pd.DataFrame, compute_f: bool, class_key: str | None) -> dict:
    def mean_of(column: str) -> float:
        if class_key:
            per_class = units.groupby(class_key)[column].mean()
            return float(np.mean(per_class.to_numpy())) if len(per_class) else float("nan")
        values = units[column].to_numpy(dtype=np.float64)
        return float(np.mean(values)) if values.size else float("nan")

    metrics = {"J": mean_of("J"), "J_recall": mean_of("J_recall"), "J_decay": mean_of("J_decay")}
    if compute_f:
        metrics.update({"F": mean_of("F"), "F_recall": mean_of("F_recall"),
                        "F_decay": mean_of("F_decay")})
        metrics["J&F"] = jf_score(metrics["J"], metrics["F"])
    tc = units["TC"].to_numpy(dtype=np.float64)
    metrics["TC"] = float(np.nanmean(tc)) if np.any(~np.isnan(tc)) else float("nan")
    metrics["TC_units"] = int(np.count_nonzero(~np.isnan(tc)))
    metrics["empty_pred_rate"] = mean_of("empty_pred_rate")
    return metrics
