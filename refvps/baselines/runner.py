"""Run a segmenter over every query of a benchmark and write the standard predictions layout.

Layout: ``<out>/<benchmark.prediction_relpath(query, frame)>`` (0/255 PNGs) for every frame the
benchmark asks models to predict, then ``<video>/<query>/.done.json`` with the query's runtime,
peak memory and clip length. A query with a valid marker is skipped on the next run (resume);
a query without one is redone. ``run.json`` records the model and its arguments and, once it
has loaded, the model's own info (version, upstream commit, checkpoint sha256, parameters);
``runtime.csv`` every finished query, ``failures.json`` the queries that failed. The model is
loaded before the first query: a model that cannot load stops the run with one
:class:`~refvps.baselines.protocol.ModelLoadError` (per-query failures do not).
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable, Iterator

import pandas as pd
from tqdm import tqdm

from refvps.baselines.queries import (ModelSpec, info_dict, is_done, load_model, marker_path,
                                      run_query, run_video, segment_with_backoff)
from refvps.errors import RefvpsError
from refvps.fileio import atomic_write_text
from refvps.executors import EXECUTORS
from refvps.formats import PRED_FAILURES_FILE, PRED_RUN_FILE, PRED_RUNTIME_FILE
from refvps.loaders import Benchmark, Query, VideoTask, load_benchmark

__all__ = ["ModelSpec", "PredictReport", "is_done", "marker_path", "parse_shard", "plan",
           "predict", "run_query", "run_video", "segment_with_backoff", "shard_of",
           "write_runtime_table"]


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

    def loaded(info: dict) -> None:  # run.json describes the model as it loaded
        run["info"] = info
        atomic_write_text(out / PRED_RUN_FILE, json.dumps(run, indent=1, default=str) + "\n")

    try:
        if todo:
            for batch in _execute(spec, bench, todo, out, executor, address, workers, loaded):
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


def _execute(spec: ModelSpec, bench: Benchmark, todo, out: Path, executor: str,
             address: str | None, workers: int | None,
             loaded: Callable[[dict], None]) -> Iterator[list[dict]]:
    """Load the model (once; a load error ends the run), report its info, then each query."""
    if executor == "ray":
        from refvps.baselines.ray_runner import run_on_ray

        yield from run_on_ray(spec, bench, todo, out, address=address, workers=workers,
                              loaded=loaded)
        return
    segmenter = spec.build()
    try:
        load_model(segmenter)
        loaded(info_dict(segmenter))
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
