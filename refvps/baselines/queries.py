"""Predict one query (or one video's queries) and write its masks, then its ``.done`` marker.

Shared by the local runner (:mod:`refvps.baselines.runner`) and the Ray actors
(:mod:`refvps.baselines.ray_runner`); neither imports the other's module for these.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import resource
import sys
import time
import traceback
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from refvps.baselines.frames import LazyFrames
from refvps.baselines.protocol import (ModelLoadError, OutOfMemory, VideoInput, check_masks,
                                       is_out_of_memory)
from refvps.baselines.registry import create
from refvps.fileio import atomic_write_text
from refvps.formats import PRED_DONE_FILE
from refvps.loaders import Benchmark, Query, VideoTask
from refvps.masks import write_binary_mask


@dataclass(frozen=True)
class ModelSpec:
    """A model name (registered or ``module:Class``) and its arguments; picklable."""

    name: str
    args: dict = field(default_factory=dict)

    def build(self):
        """The segmenter; ``python=PATH`` runs it in a worker process under that interpreter."""
        args = dict(self.args)
        python = args.pop("python", None)
        if python:
            from refvps.baselines.subprocess_mode import SubprocessSegmenter

            return SubprocessSegmenter(self.name, python=python, model_args=args)
        return create(self.name, **args)


def info_dict(segmenter) -> dict:
    """The loaded segmenter's ``info()`` as a dict ({} for a segmenter without one)."""
    if not hasattr(segmenter, "info"):
        return {}
    return dataclasses.asdict(segmenter.info())


def load_model(segmenter) -> None:
    """Load ``segmenter`` now (before any query), so that a model that cannot load stops the
    run with one :class:`ModelLoadError` instead of failing every query."""
    if not hasattr(segmenter, "ensure_loaded"):
        return
    try:
        segmenter.ensure_loaded()
    except ModelLoadError:
        raise
    except Exception as exc:
        name = getattr(segmenter, "name", "") or type(segmenter).__name__
        raise ModelLoadError(f"{name}: the model could not be loaded: "
                             f"{type(exc).__name__}: {exc}") from exc


def _sha1(text: str) -> str:
    return hashlib.sha1(text.encode()).hexdigest()


def marker_path(bench: Benchmark, out: Path, query: Query) -> Path:
    first = bench.prediction_relpath(query, "x")
    return out / Path(first).parent / PRED_DONE_FILE


def is_done(bench: Benchmark, out: Path, query: Query) -> bool:
    """Whether ``query`` has a marker matching its text and frame list."""
    try:
        marker = json.loads(marker_path(bench, out, query).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    names = bench.inference_frames(query)
    return (marker.get("frames") == len(names)
            and marker.get("frame_names_sha1") == _sha1("\n".join(names))
            and marker.get("expression_sha1") == _sha1(query.text))


def _segment(segmenter, bench: Benchmark, task: VideoTask, query: Query, video: VideoInput):
    if hasattr(segmenter, "predict_query"):
        return segmenter.predict_query(video, query, bench, task)
    if hasattr(segmenter, "predict_video"):
        return segmenter.predict_video(video, [query.text])[0]
    return segmenter.predict(video.frames, query.text)


class _Memory:
    """Peak memory of one query: CUDA when torch has a GPU, else the process's peak RSS."""

    def __init__(self):
        torch = sys.modules.get("torch")
        self.cuda = torch is not None and torch.cuda.is_available()
        if self.cuda:
            torch.cuda.reset_peak_memory_stats()

    def peak(self) -> tuple[float, str]:
        if self.cuda:
            return sys.modules["torch"].cuda.max_memory_allocated() / 2 ** 20, "cuda"
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, "rss_process_peak"


def _free_accelerator() -> None:
    torch = sys.modules.get("torch")
    if torch is not None and torch.cuda.is_available():
        torch.cuda.empty_cache()


def segment_with_backoff(segmenter, bench: Benchmark, task: VideoTask, query: Query,
                         video: VideoInput) -> tuple[Any, int, Any]:
    """(masks, out-of-memory retries, clip length used): on out-of-memory, retry with the
    segmenter's next shorter clip length until it has none; the configured length is restored
    afterwards so each query starts from it."""
    configured = getattr(segmenter, "clip_len", None)
    retries = 0
    try:
        while True:
            try:
                masks = _segment(segmenter, bench, task, query, video)
                return masks, retries, getattr(segmenter, "clip_len", None)
            except Exception as exc:
                if not is_out_of_memory(exc) or not hasattr(segmenter, "shorter_clip_len"):
                    raise
                _free_accelerator()
                tried = getattr(segmenter, "clip_len", None)
                if segmenter.shorter_clip_len(len(video.frame_names)) is None:
                    raise OutOfMemory(f"out of memory at clip length {tried} and no shorter clip "
                                      f"length is left ({exc})") from exc
                retries += 1
    finally:
        if retries and hasattr(segmenter, "clip_len"):
            segmenter.clip_len = configured


def run_query(segmenter, bench: Benchmark, task: VideoTask, query: Query, out: Path) -> dict:
    """Predict one query, write its PNGs and then its marker; returns the marker."""
    names = tuple(bench.inference_frames(query))
    paths = [str(bench.frame_path(task.video, f)) for f in names]
    video = VideoInput(task.video, names, LazyFrames(paths), paths)
    started = time.perf_counter()
    memory = _Memory()
    masks, retries, clip_len = segment_with_backoff(segmenter, bench, task, query, video)
    seconds = time.perf_counter() - started
    peak, kind = memory.peak()
    stats = getattr(segmenter, "last_stats", None)  # a worker reports its own memory
    if stats:
        peak, kind = stats["peak_mem_mb"], stats["mem_kind"]
    from PIL import Image

    with Image.open(paths[0]) as image:
        size = (image.height, image.width)
    masks = check_masks(masks, len(names), size, getattr(segmenter, "name", "model"))
    for frame, mask in zip(names, masks):
        write_binary_mask(out / bench.prediction_relpath(query, frame), mask)
    marker = {"unit": query.unit, "video": query.video, "query_id": query.query_id,
              "frames": len(names), "frame_names_sha1": _sha1("\n".join(names)),
              "expression_sha1": _sha1(query.text), "seconds": round(seconds, 4),
              "peak_mem_mb": round(float(peak), 1), "mem_kind": kind, "clip_len": clip_len,
              "oom_retries": retries,
              "finished": datetime.now(timezone.utc).isoformat(timespec="seconds")}
    path = marker_path(bench, out, query)
    atomic_write_text(path, json.dumps(marker, indent=1) + "\n")
    return marker


def run_video(segmenter, bench: Benchmark, task: VideoTask, queries: list[Query],
              out: Path) -> list[dict]:
    """Every pending query of one video; a failing query becomes a record with ``error``."""
    records = []
    for query in queries:
        try:
            records.append(run_query(segmenter, bench, task, query, out))
        except ModelLoadError:  # the model cannot load (again): no query can succeed
            raise
        except Exception as exc:  # keep going: the failure is listed at the end
            records.append({"unit": query.unit, "error": f"{type(exc).__name__}: {exc}",
                            "traceback": traceback.format_exc(limit=8)})
    return records
