"""Build the upload zip of a server-scored split (Ref-YouTube-VOS valid / test, MeViS valid).

Every video, expression and frame of the split must have a prediction whose size equals its
input JPEG frame and whose values are binary (0 = background, one non-zero value); every problem
is reported at once and nothing is written then. The zip holds ``L`` PNGs with values 0 / 255
under the benchmark's ``submission_root`` (``Annotations/`` for Ref-YouTube-VOS, the video
folders at the root for MeViS), is stored uncompressed (PNGs are compressed already), has fixed
timestamps (same input, same bytes) and is moved into place only when complete.
"""
from __future__ import annotations

import zipfile
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import cv2
import numpy as np
from PIL import Image
from tqdm import tqdm

from refvps.errors import MaskError, Problem, RefvpsError, ValidationError
from refvps.fileio import atomic_write
from refvps.loaders import Benchmark, VideoTask, benchmark_class, load_benchmark
from refvps.evaluation import open_predictions
from refvps.inputs import file_problem
from refvps.masks import read_mask_bytes
from refvps.predictions import PredictionStore

ZIP_DATE = (1980, 1, 1, 0, 0, 0)


@dataclass
class Submission:
    """What :func:`make_submission` wrote."""

    path: Path
    benchmark: str
    split: str
    videos: int
    expressions: int
    frames: int
    size_bytes: int


def make_submission(preds: str | Path, benchmark: str | Benchmark, data: str | Path | None = None,
                    split: str | None = None, out: str | Path = "submission.zip", *,
                    workers: int | None = None, progress: bool = True) -> Submission:
    """Validate ``preds`` (folder or .zip) against a server split and write the upload zip.

    Raises :class:`ValidationError` listing every problem (dataset, missing or unknown folders
    and frames, unreadable masks, wrong sizes, non-binary values) without writing anything.
    """
    cls = type(benchmark) if isinstance(benchmark, Benchmark) else benchmark_class(benchmark)
    if cls.submission_root is None or not cls.server_splits:
        raise RefvpsError(f"{cls.title} has no evaluation server; score it with refvps eval")
    bench = benchmark if isinstance(benchmark, Benchmark) else load_benchmark(
        benchmark, data, split or cls.server_splits[0])
    if bench.split not in bench.server_splits:
        raise RefvpsError(f"{bench.title}: split {bench.split!r} has public ground truth; score it "
                          f"locally with refvps eval (server splits: "
                          f"{', '.join(bench.server_splits)})")
    store, tasks, presence = open_predictions(bench, preds)
    problems = presence.missing_problems + presence.unknown_problems
    out = Path(out)
    written = []

    def write_zip(handle) -> None:
        with zipfile.ZipFile(handle, "w", zipfile.ZIP_STORED) as archive:
            for entries, video_problems in _map_videos(bench, store, tasks, workers, progress):
                problems.extend(video_problems)
                if problems:
                    continue  # keep validating, stop writing
                for relpath, png in entries:
                    name = f"{bench.submission_root}/{relpath}" if bench.submission_root \
                        else relpath
                    archive.writestr(zipfile.ZipInfo(name, ZIP_DATE), png)
                    written.append(name)
        if problems:  # raised inside the atomic write: the temporary file is removed
            raise ValidationError(f"predictions {store.path}", problems)

    atomic_write(out, write_zip)
    return Submission(out, bench.name, bench.split, len(tasks),
                      sum(len(t.queries) for t in tasks), len(written), out.stat().st_size)


def _map_videos(bench: Benchmark, store: PredictionStore, tasks: list[VideoTask],
                workers: int | None, progress: bool):
    """(zip entries, problems) per video, in task order, on a process pool when it pays."""
    from refvps.executors import default_workers, process_pool

    workers = min(default_workers() if workers is None else max(1, workers), len(tasks)) or 1
    job = partial(_video_entries, bench, store)
    bar = tqdm(total=len(tasks), unit="video", desc=f"checking {bench.name}",
               disable=None if progress else True, leave=False)
    try:
        if workers == 1:
            for result in map(job, tasks):
                bar.update()
                yield result
            return
        with process_pool(workers) as pool:
            for result in pool.map(job, tasks, chunksize=1):
                bar.update()
                yield result
    finally:
        bar.close()


def _video_entries(bench: Benchmark, store: PredictionStore,
                   task: VideoTask) -> tuple[list[tuple[str, bytes]], list[Problem]]:
    """Check every prediction of one video; return its 0/255 PNGs and the problems found."""
    problems: list[Problem] = []
    sizes = _frame_sizes(bench, task, problems)
    entries = []
    for query in task.queries:
        for frame in query.frames:
            relpath = bench.prediction_relpath(query, frame)
            where = store.describe(relpath)
            try:
                data = store.read_bytes(relpath)
                if data is None:
                    continue  # reported by the presence check
                mask = _binary_mask(store, data, where)
            except MaskError as exc:
                problems.append(Problem(exc.path, exc.what))
                continue
            size = sizes.get(frame)
            if size is not None and mask.shape != size:
                problems.append(Problem(where, f"size {mask.shape[1]}x{mask.shape[0]} (WxH), the "
                                               f"input frame is {size[1]}x{size[0]}"))
                continue
            _, png = cv2.imencode(".png", mask.astype(np.uint8) * 255)
            entries.append((relpath, png.tobytes()))
    return entries, problems


def _frame_sizes(bench: Benchmark, task: VideoTask,
                 problems: list[Problem]) -> dict[str, tuple[int, int]]:
    """(H, W) of every input frame of the video, read from the JPEG headers."""
    sizes = {}
    frames = {f: q for q in task.queries for f in q.frames}  # each frame once
    for frame, query in frames.items():
        path = bench.frame_path(query.video, frame)
        reason = file_problem(path)
        if reason is not None and reason != "file not found":
            problems.append(Problem(str(path), f"input frame {reason}"))
            continue
        try:
            with Image.open(path) as image:
                width, height = image.size
        except FileNotFoundError:
            problems.append(Problem(str(path), "input frame missing (the prediction size cannot "
                                               "be checked)"))
            continue
        except OSError as exc:
            problems.append(Problem(str(path), f"unreadable input frame ({exc})"))
            continue
        sizes[frame] = (height, width)
    return sizes


def _binary_mask(store: PredictionStore, data: bytes, where: str) -> np.ndarray:
    """Foreground of one prediction PNG, rejecting what the server could read differently."""
    values = read_mask_bytes(data, where)
    foreground = values[values != 0]
    if foreground.size and np.any(foreground != foreground[0]):
        found = np.unique(values)
        shown = ", ".join(str(v) for v in found[:6]) + (", ..." if found.size > 6 else "")
        raise MaskError(where, f"not a binary mask: {found.size} distinct values ({shown}); "
                               "expected 0 = background and one foreground value")
    mask = values != 0
    if store.reader != "pil" and np.any(store.decode_binary(data, where) != mask):
        raise MaskError(where, f"the official reader ({store.reader}) sees different foreground "
                               "pixels than the stored values (a palette mapping the foreground "
                               "to black?); write L PNGs with values 0 / 255")
    return mask
