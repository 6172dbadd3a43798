"""Run a segmenter over every query of a benchmark and write the standard predictions layout.

Layout: ``<out>/<benchmark.prediction_relpath(query, frame)>`` (0/255 PNGs) for every frame the
benchmark asks models to predict, then ``<video>/<query>/.done.json`` with the query's runtime,
peak memory and clip length. A query with a valid marker is skipped on the next run (resume);
a query without one is redone. ``run.json`` records the model and its arguments, ``runtime.csv``
every finished query, ``failures.json`` the queries that failed.
"""
from __future__ import annotations

import hashlib
import json
import resource
import sys
import time
import traceback
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterator

import pandas as pd
from tqdm import tqdm

from refvps.baselines.frames import LazyFrames
from refvps.baselines.protocol import OutOfMemory, VideoInput, check_masks, is_out_of_memory
from refvps.baselines.registry import create
from refvps.errors import RefvpsError
from refvps.fileio import atomic_write_text
from refvps.executors import EXECUTORS
from refvps.formats import PRED_DONE_FILE, PRED_FAILURES_FILE, PRED_RUN_FILE, PRED_RUNTIME_FILE
from refvps.loaders import Benchmark, Query, VideoTask, load_benchmark
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


@dataclass
class PredictReport:
    out: Path
    finished: list[dict]
    skipped: int
    failures: list[dict]

    def to_text(self) -> str:
        lines = [f"predictions: {self.out}",
                 f"{len(self.finished)} queries predicted, {self.skipped} already done (skipped), "
                 f"{len(self.failures)} failed"]
        if self.finished:
            seconds = sum(r["seconds"] for r in self.finished)
            lines.append(f"model time {seconds:.1f} s; runtime per query in "
                         f"{self.out / PRED_RUNTIME_FILE}")
        for failure in self.failures:
            lines.append(f"  FAILED {failure['unit']}: {failure['error']}")
        return "\n".join(lines)


def parse_shard(text: str) -> tuple[int, int]:
    """``"i/n"`` (0 <= i < n) -> (i, n)."""
    try:
        index, count = (int(v) for v in text.split("/"))
    except ValueError:
        raise ValueError(f"--shard {text!r}: expected i/n, e.g. 0/4") from None
    if count < 1 or not 0 <= index < count:
        raise ValueError(f"--shard {text!r}: need 0 <= i < n")
    return index, count


def shard_of(video: str, count: int) -> int:
    """The shard a video belongs to (a stable hash of its name)."""
    return int(hashlib.sha1(video.encode()).hexdigest(), 16) % count


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


def plan(bench: Benchmark, out: Path, shard: tuple[int, int] = (0, 1),
         overwrite: bool = False) -> tuple[list[tuple[VideoTask, list[Query]]], int]:
    """(videos of the shard with their queries still to do, number of queries already done)."""
    todo, skipped = [], 0
    for task in bench.tasks():
        if shard_of(task.video, shard[1]) != shard[0]:
            continue
        pending = []
        for query in task.queries:
            if not overwrite and is_done(bench, out, query):
                skipped += 1
            else:
                pending.append(query)
        if pending:
            todo.append((task, pending))
    return todo, skipped


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
        except Exception as exc:  # keep going: the failure is listed at the end
            records.append({"unit": query.unit, "error": f"{type(exc).__name__}: {exc}",
                            "traceback": traceback.format_exc(limit=8)})
    return records


def _check_run_file(out: Path, record: dict, overwrite: bool) -> None:
    path = out / PRED_RUN_FILE
    if path.is_file() and not overwrite:
        previous = json.loads(path.read_text(encoding="utf-8"))
        keys = ("model", "model_args", "benchmark", "split")
        if any(previous.get(k) != record[k] for k in keys):
            raise RefvpsError(
                f"{out} holds predictions of another run "
                f"({', '.join(f'{k}={previous.get(k)!r}' for k in keys)}); use a new --out "
                "folder, or --overwrite to redo every query")


def predict(model: str | ModelSpec, benchmark: str | Benchmark, out: str | Path, *,
            data: str | Path | None = None, split: str | None = None,
            model_args: dict | None = None, shard: tuple[int, int] = (0, 1),
            overwrite: bool = False, executor: str = "local", address: str | None = None,
            workers: int | None = None, progress: bool = True) -> PredictReport:
    """Predict every query of ``benchmark`` (this shard) into ``out``; resumable."""
    from refvps import __version__

    if executor not in EXECUTORS:
        raise ValueError(f"unknown executor {executor!r}; choose one of "
                         f"{', '.join(EXECUTORS)}")
    spec = model if isinstance(model, ModelSpec) else ModelSpec(model, dict(model_args or {}))
    bench = benchmark if isinstance(benchmark, Benchmark) else load_benchmark(benchmark, data, split)
    problems = bench.validate()
    if problems:
        from refvps.errors import ValidationError

        raise ValidationError(f"dataset {bench.root} ({bench.title})", problems)
    bench.root = bench.root.resolve()  # wrappers may change the working directory
    out = Path(out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    run = {"model": spec.name, "model_args": spec.args, "benchmark": bench.name,
           "split": bench.split, "refvps_version": __version__,
           "started": datetime.now(timezone.utc).isoformat(timespec="seconds")}
    _check_run_file(out, run, overwrite)
    todo, skipped = plan(bench, out, shard, overwrite)
    records: list[dict] = []
    total = sum(len(queries) for _, queries in todo)
    bar = tqdm(total=total, unit="query", desc=f"predicting {spec.name}",
               disable=None if progress else True, leave=False)
    try:
        if todo:
            segmenter = spec.build()
            if hasattr(segmenter, "info"):
                run["info"] = _info_dict(segmenter)
            atomic_write_text(out / PRED_RUN_FILE, json.dumps(run, indent=1, default=str) + "\n")
            for batch in _execute(spec, segmenter, bench, todo, out, executor, address, workers):
                records.extend(batch)
                bar.update(len(batch))
    finally:
        bar.close()
    failures = [r for r in records if "error" in r]
    suffix = "" if shard == (0, 1) else f"-shard{shard[0]}of{shard[1]}"
    failures_path = out / PRED_FAILURES_FILE.replace(".json", f"{suffix}.json")
    if failures:
        atomic_write_text(failures_path, json.dumps(failures, indent=1) + "\n")
    elif failures_path.exists():
        failures_path.unlink()
    write_runtime_table(bench, out)
    return PredictReport(out, [r for r in records if "error" not in r], skipped, failures)


def _info_dict(segmenter) -> dict:
    import dataclasses

    try:
        return dataclasses.asdict(segmenter.info())
    except Exception as exc:  # info() of a worker needs it running; not worth failing the run
        return {"error": str(exc)}


def _execute(spec: ModelSpec, segmenter, bench: Benchmark, todo, out: Path, executor: str,
             address: str | None, workers: int | None) -> Iterator[list[dict]]:
    if executor == "ray":
        from refvps.baselines.ray_runner import run_on_ray

        segmenter.close()
        yield from run_on_ray(spec, bench, todo, out, address=address, workers=workers)
        return
    try:
        for task, queries in todo:
            for query in queries:
                yield run_video(segmenter, bench, task, [query], out)
    finally:
        segmenter.close()


def write_runtime_table(bench: Benchmark, out: Path) -> pd.DataFrame:
    """``runtime.csv``: the marker of every finished query of the benchmark found in ``out``."""
    rows = []
    for query in bench.queries():
        try:
            rows.append(json.loads(marker_path(bench, out, query).read_text(encoding="utf-8")))
        except (OSError, ValueError):
            continue
    table = pd.DataFrame(rows)
    if rows:
        atomic_write_text(out / PRED_RUNTIME_FILE, table.to_csv(index=False))
    return table
