"""VSPW with REM's "stuff" referring protocol (miccooper9/ReferEverything stuff/eval_stuff.py).

Data: ``<root>/{train,val,test}.txt`` and ``<root>/data/<video>/mask/<%08d>.png`` (raw VSPW
labels: 1..124 = classes, 0 = others, 255 = void).

Protocol: REM's 66 stuff classes (:data:`refvps.formats.VSPW_STUFF_CLASSES`); one query
"the <class>" per (video, stuff class present in any of its masks); ground truth =
``raw == id + 1`` with others / void plain background (no ignore region); J over every mask
frame (frames paired with predictions by name), mean per query, mean per class, mean over classes.

Ids: video = the VSPW video name, query id = the raw class name. Predictions are read in REM's
layout ``<video>/<class name>/pred/<stem>.png`` (optionally inside one wrapper folder such as
``vspw_val/``) or the standard layout ``<video>/<class name>/<stem>.png``; the layout is detected.

Query sets: strict (default) scores the classes present in the GT; ``missing="official"`` scores
what REM's script scores, every stuff-class folder found in the predictions (classes absent from
that video's GT included, GT classes without a folder skipped), both counted and warned.
"""
from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from refvps.errors import MaskError, Problem
from refvps.formats import (FRAME_EXT, MASK_EXT, VSPW_DATA_DIR, VSPW_FOLDER, VSPW_LABEL_FILE,
                            VSPW_MASK_DIR, VSPW_ORIGIN_DIR, VSPW_REM_PRED_DIR, VSPW_STUFF_CLASSES,
                            class_phrase)
from refvps.loaders.base import GroundTruth, Query, TaskResult, VideoTask, read_digested
from refvps.loaders.classwise import ClassAveragedBenchmark
from refvps.loaders.jsonfiles import read_json_object, read_name_list, read_split_list, show
from refvps.masks import read_mask

STUFF_BY_RAW = {stuff_id + 1: name for stuff_id, name in VSPW_STUFF_CLASSES}
"""Raw mask value -> stuff class name."""
RAW_BY_STUFF = {name: raw for raw, name in STUFF_BY_RAW.items()}
OFFICIAL_COUNTS = ("queries_absent_from_gt", "gt_queries_without_predictions")


class _VideoGT(GroundTruth):
    """Every mask of one video, decoded once and shared by all its class queries."""

    def __init__(self, video: str, mask_dir: Path):
        self.video = video
        self.mask_dir = mask_dir
        self.labels: dict[str, np.ndarray] = {}
        self.size: tuple[int, int] | None = None
        self.digests: dict[str, str] = {}

    def label(self, frame: str) -> np.ndarray:
        labels = self.labels.get(frame)
        if labels is None:
            path = self.mask_dir / f"{frame}{MASK_EXT}"
            labels = read_digested(path, self.digests,
                                   f"{VSPW_DATA_DIR}/{self.video}/{VSPW_MASK_DIR}/{frame}{MASK_EXT}")
            if self.size is None:
                self.size = labels.shape
            elif labels.shape != self.size:
                raise MaskError(path, f"size {labels.shape[1]}x{labels.shape[0]} (WxH) differs "
                                      f"from the video's {self.size[1]}x{self.size[0]}")
            self.labels[frame] = labels
        return labels

    def target(self, query: Query, frame: str) -> tuple[np.ndarray, None]:
        return self.label(frame) == query.target[0], None


class VSPW(ClassAveragedBenchmark):
    name = "vspw"
    folder = VSPW_FOLDER
    title = "VSPW stuff (referring, REM protocol)"
    splits = ("train", "val", "test")
    default_split = "val"
    missing_modes = ("strict", "official")
    protocol = ("J over every mask frame, GT = raw label == stuff id + 1 (others/void are "
                "background), one query per (video, stuff class present), mean per class, "
                "mean over the stuff classes")
    reference = "miccooper9/ReferEverything stuff/eval_stuff.py (REM), frames paired by name"

    def __init__(self, root: str | Path, split: str | None = None, decay_mode: str = "davis2017",
                 layout: str = "auto", workers: int | None = None):
        super().__init__(root, split, decay_mode, layout)
        self.workers = workers
        self._scan: dict[str, tuple[tuple[str, ...], tuple[int, ...], list[Problem]]] | None = None
        self._predicted: dict[str, tuple[int, ...]] | None = None  # official mode: class folders

    def __getstate__(self) -> dict:
        state = dict(self.__dict__)
        state["_scan"] = None  # workers only need the tasks they are sent
        return state

    @classmethod
    def looks_like(cls, path: Path) -> bool:
        return (path / VSPW_DATA_DIR).is_dir() and any(
            (path / f"{split}.txt").is_file() for split in cls.splits)

    # --- metadata ---------------------------------------------------------------------------
    def split_file(self) -> Path:
        return self.root / f"{self.split}.txt"

    def metadata_files(self) -> list[Path]:
        return [self.split_file()]

    def video_ids(self) -> list[str]:
        """Videos of the split list (lines stripped, blank lines skipped, order kept)."""
        if not os.path.lexists(self.split_file()):
            return []
        return read_name_list(self.split_file(), [], "video") or []

    def mask_dir(self, video: str) -> Path:
        return self.root / VSPW_DATA_DIR / video / VSPW_MASK_DIR

    def frame_path(self, video: str, frame: str) -> Path:
        return self.root / VSPW_DATA_DIR / video / VSPW_ORIGIN_DIR / f"{frame}{FRAME_EXT}"

    def scan(self) -> dict[str, tuple[tuple[str, ...], tuple[int, ...], list[Problem]]]:
        """Per video: (sorted mask stems, raw stuff values present, problems); decoded once."""
        if self._scan is None:
            videos = self.video_ids()
            workers = self.workers or os.cpu_count() or 1  # threads reading PNGs
            with ThreadPoolExecutor(max_workers=max(1, min(workers, len(videos) or 1))) as pool:
                self._scan = dict(zip(videos, pool.map(self._scan_video, videos)))
        return self._scan

    def _scan_video(self, video: str) -> tuple[tuple[str, ...], tuple[int, ...], list[Problem]]:
        folder = self.mask_dir(video)
        if not folder.is_dir():
            return (), (), [Problem(str(folder), f"mask folder of video {video!r} not found")]
        stems = tuple(sorted(p.name[:-len(MASK_EXT)] for p in folder.iterdir()
                             if p.name.endswith(MASK_EXT)))
        if not stems:
            return (), (), [Problem(str(folder), "no mask PNG in the folder")]
        present = np.zeros(256, dtype=bool)
        problems: list[Problem] = []
        size = None
        for stem in stems:
            path = folder / f"{stem}{MASK_EXT}"
            try:
                labels = read_mask(path)
            except MaskError as exc:
                problems.append(Problem(exc.path, exc.what))
                continue
            if size is None:
                size = labels.shape
            elif labels.shape != size:
                problems.append(Problem(str(path), f"size {labels.shape[1]}x{labels.shape[0]} "
                                                   f"(WxH) differs from the video's "
                                                   f"{size[1]}x{size[0]}"))
            present[np.unique(labels)] = True
        raws = tuple(raw for raw in STUFF_BY_RAW if present[raw])
        return stems, raws, problems

    # --- validation -------------------------------------------------------------------------
    def validate(self) -> list[Problem]:
        split_file = self.split_file()
        problems: list[Problem] = []
        if read_split_list(split_file, problems, "video") is None:
            return problems
        for _stems, _raws, video_problems in self.scan().values():
            problems += video_problems
        problems += self._check_label_names()
        return problems

    def _check_label_names(self) -> list[Problem]:
        """When ``label_num_dic_final.json`` is present, the stuff table must agree with it."""
        path = self.root / VSPW_LABEL_FILE
        if not os.path.lexists(path):
            return []
        problems: list[Problem] = []
        names = read_json_object(path, problems)
        if names is None:
            return problems
        return [Problem(f"{path}: {name}", f"stuff class {name!r} should have raw id {raw}, "
                                           f"found {show(names.get(name))}")
                for raw, name in STUFF_BY_RAW.items() if str(names.get(name)) != str(raw)
                or isinstance(names.get(name), (bool, float))]

    # --- tasks ------------------------------------------------------------------------------
    def tasks(self) -> list[VideoTask]:
        tasks = []
        for video, (stems, present, _problems) in sorted(self.scan().items()):  # REM: sorted
            raws = present if self._predicted is None else self._predicted.get(video, ())
            queries = [Query(video=video, query_id=STUFF_BY_RAW[raw],
                             text=f"the {class_phrase(STUFF_BY_RAW[raw])}", frames=stems,
                             target=(raw,),
                             meta={"class": STUFF_BY_RAW[raw], "stuff_id": raw - 1,
                                   "rem_prompt": f"the {STUFF_BY_RAW[raw]}",
                                   "in_gt": raw in present})
                       for raw in raws]
            if queries or (self._predicted is not None and present):
                tasks.append(VideoTask(video, queries, gt=present))  # gt: the classes in its GT
        return tasks

    def load_gt(self, task: VideoTask) -> GroundTruth:
        return _VideoGT(task.video, self.mask_dir(task.video))

    # --- predictions ------------------------------------------------------------------------
    def rem_relpath(self, query: Query, frame: str) -> str:
        return f"{query.video}/{query.query_id}/{VSPW_REM_PRED_DIR}/{frame}.png"

    def bind_predictions(self, store) -> None:
        super().bind_predictions(store)
        if self.missing == "official":
            self._predicted = self._predicted_classes(store)

    def _predicted_classes(self, store) -> dict[str, tuple[int, ...]]:
        """Per split video, the stuff classes with a prediction folder (REM's query set).

        Folders of other videos or of names that are not stuff classes stay unknown (REM's script
        crashes on them)."""
        videos = self.scan()
        depth = 4 if self.layout == "rem" else 3
        found: dict[str, set[int]] = {}
        for path in store.files():
            parts = path.split("/")
            if len(parts) == depth and parts[0] in videos and parts[1] in RAW_BY_STUFF:
                found.setdefault(parts[0], set()).add(RAW_BY_STUFF[parts[1]])
        return {video: tuple(sorted(raws)) for video, raws in found.items()}

    def score_task(self, task: VideoTask, reader, allow_missing: bool = False) -> TaskResult:
        result = super().score_task(task, reader, allow_missing)
        if self.missing != "official":
            return result
        absent = [q for q in task.queries if not q.meta["in_gt"]]
        scored = {q.target[0] for q in task.queries}
        skipped = [raw for raw in task.gt if raw not in scored]
        result.counts.update(dict(zip(OFFICIAL_COUNTS, (len(absent), len(skipped)))))
        result.tolerated += [
            Problem(reader.describe(f"{q.video}/{q.query_id}"),
                    "class absent from this video's GT: scored against an empty GT (official "
                    "rule)") for q in absent]
        result.tolerated += [
            Problem(reader.describe(f"{task.video}/{STUFF_BY_RAW[raw]}"),
                    "GT class without a prediction folder: not scored (official rule)")
            for raw in skipped]
        return result

    def notes(self) -> list[str]:
        if self.missing != "official":
            return ["query set: every (video, stuff class present in its GT)"]
        return ["query set (--missing official): every stuff-class prediction folder, as REM's "
                "eval_stuff.py; classes absent from a video's GT are scored against an empty GT"]
