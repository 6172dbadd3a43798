"""Score a predictions folder on a benchmark: validate, score per frame, aggregate, report."""
from __future__ import annotations

import hashlib
import inspect
import json
import math
import time
import warnings
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable, Sequence

import pandas as pd

from refvps.errors import Problem, RefvpsError, ValidationError
from refvps.faults import checkpoint
from refvps.fileio import OutputFolder, jsonable
from refvps.loaders import Benchmark, VideoTask, benchmark_class, load_benchmark
from refvps.predictions import PredictionStore, Presence, check_presence

METRIC_NOTES = {
    "J": "region similarity (Jaccard)",
    "F": "contour accuracy (boundary F)",
    "J&F": "mean of J and F",
    "TC": "temporal consistency: mean |dJ| between consecutive scored frames, lower is better",
}


STANDARD_COUNTS = ("videos", "queries", "frames_scored", "missing_frames_scored_empty",
                   "units_with_missing")


@dataclass
class EvalResult:
    """Everything one evaluation produced; per-frame rows are the source of truth."""

    summary: dict
    frames: pd.DataFrame
    units: pd.DataFrame
    tables: dict[str, pd.DataFrame] = field(default_factory=dict)

    @property
    def metrics(self) -> dict:
        return self.summary["metrics"]

    def write(self, out: str | Path | OutputFolder) -> dict[str, str]:
        """Write per-frame rows, per-unit and breakdown tables and summary.json to ``out``, as
        one set: a reader sees the previous set of files or this one, never a mix."""
        folder = out if isinstance(out, OutputFolder) else output_folder(out)
        with folder:
            files = self.write_files(folder.staging, folder.path)
            folder.commit()
        return files

    def write_files(self, staging: Path, final: Path) -> dict[str, str]:
        """Write the output files into ``staging``, naming them by where they will be once
        ``staging`` is renamed to ``final``; returns those names (also kept in the summary)."""
        unit_file = f"{plural(self.summary['unit_name'])}.csv"
        files = {"frames": "frames.csv", "units": unit_file, "summary": "summary.json"}
        files.update({name: f"{name}.csv" for name in self.tables})
        tables = {"frames": self.frames, "units": self.units, **self.tables}
        for name, table in tables.items():
            (staging / files[name]).write_text(table.to_csv(index=False), encoding="utf-8")
            checkpoint(f"eval.wrote:{files[name]}")
        self.summary["files"] = {k: str(final / v) for k, v in files.items()}
        (staging / "summary.json").write_text(json.dumps(jsonable(self.summary), indent=2) + "\n",
                                              encoding="utf-8")
        return self.summary["files"]

    def to_json(self) -> str:
        return json.dumps(jsonable(self.summary), indent=2)

    def to_text(self) -> str:
        """A readable summary for a terminal."""
        s = self.summary
        c = s["counts"]
        lines = [f"{s['title']}  [split {s['split']}]",
                 f"predictions: {s['predictions']}",
                 f"scored {c['queries']} {plural(s['unit_name'])} over {c['videos']} videos, "
                 f"{c['frames_scored']} frames",
                 ""]
        for key in s["headline"]:
            value = s["metrics"].get(key)
            note = METRIC_NOTES.get(key, "")
            if key == "TC":
                note += (f" ({s['metrics'].get('TC_units', 0)} {plural(s['unit_name'])} "
                         "with >= 2 frames)")
            lines.append(f"  {key:<6} {_fmt(value)}   {note}")
        extra = [k for k in ("J_recall", "F_recall", "J_decay", "F_decay", "empty_pred_rate")
                 if k in s["metrics"]]
        if extra:
            lines.append("  " + "  ".join(f"{k} {_fmt(s['metrics'][k])}" for k in extra))
        if c.get("missing_frames_scored_empty"):
            lines.append(f"\n  {c['missing_frames_scored_empty']} missing prediction frame(s) "
                         f"scored as empty (--allow-missing) in {c['units_with_missing']} "
                         f"{s['unit_name']}(s)")
        extra_counts = {k: v for k, v in c.items() if k not in STANDARD_COUNTS and v}
        if extra_counts:
            lines.append("\n  " + ", ".join(f"{k.replace('_', ' ')}: {v}"
                                             for k, v in extra_counts.items()))
        for warning in s.get("warnings", []):
            lines.append(f"  warning: {warning}")
        for note in s.get("notes", []):
            lines.append(f"  note: {note}")
        for name, label in (("runs", "run"), ("concept_groups", "concept group"),
                            ("classes", "class")):
            table = self.tables.get(name)
            if table is not None and len(table):
                lines += ["", f"per {label}:", _table_text(table, s["headline"])]
        return "\n".join(lines)


def plural(noun: str) -> str:
    """English plural of a unit name ("query" -> "queries", "expression" -> "expressions")."""
    return noun[:-1] + "ies" if noun.endswith("y") else noun + "s"


def _table_text(table: pd.DataFrame, headline: tuple, rows: int = 20) -> str:
    """The table, or for long ones its best and worst rows by the first headline metric."""
    cols = [table.columns[0], "n_units"] + [h for h in headline if h in table.columns]
    table = table[cols]
    if len(table) <= rows:
        return table.to_string(index=False, float_format=lambda v: f"{v:.4f}")
    ranked = table.sort_values(cols[2], ascending=False, kind="stable")
    shown = pd.concat([ranked.head(rows // 2), ranked.tail(rows // 2)])
    text = shown.to_string(index=False, float_format=lambda v: f"{v:.4f}").splitlines()
    cut = rows // 2 + 1
    return "\n".join(text[:cut] + [f"  ... {len(table) - rows} more (all in the --out tables)"]
                     + text[cut:])


def _fmt(value) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "   n/a"
    return f"{value:.4f}"


def previous_outputs(folder: Path) -> list[str]:
    """Entries of ``folder`` that are not files of an earlier refvps run written there."""
    entries = sorted(p.name for p in folder.iterdir())
    try:
        summary = json.loads((folder / "summary.json").read_text(encoding="utf-8"))
        files = summary["files"] if "refvps_version" in summary else {}
        ours = {Path(str(name)).name for name in files.values()} | {"summary.json"}
    except (OSError, ValueError, TypeError, KeyError, AttributeError):
        return entries
    return [name for name in entries if name not in ours or not (folder / name).is_file()]


def output_folder(out: str | Path) -> OutputFolder:
    """The ``--out`` folder of an evaluation (replaced as a whole; see :class:`OutputFolder`)."""
    return OutputFolder(out, "--out", owned=previous_outputs)


def _problem_hint(bench: Benchmark, presence: Presence, allow_missing: bool) -> str:
    """What the user can do about the problems: lenient modes, when the benchmark has them."""
    if allow_missing:
        return ""
    if presence.missing:
        if getattr(bench, "missing_hint", None) is not None:
            return bench.missing_hint
        return _missing_hint(bench)
    if bench.missing == "strict" and "official" in bench.missing_modes:
        return ("--missing official handles unusable predictions as the official script does "
                f"(counted and warned in the output; docs/benchmarks/{bench.name}.md).")
    return ""


def _missing_hint(bench: Benchmark) -> str:
    if "official" not in bench.missing_modes:
        return ("Missing predictions can be scored as empty masks with --allow-missing "
                "(counted in the output).")
    return ("Missing predictions can be scored as empty masks with --allow-missing, or handled "
            "as the official script does with --missing official; both are counted in the "
            f"output (docs/benchmarks/{bench.name}.md).")


def _tolerated_warnings(mode: str, tolerated: list[Problem], limit: int = 20) -> list[str]:
    """One warning per input problem a lenient missing mode accepted (the first ``limit``)."""
    lines = [f"--missing {mode}: {problem}" for problem in tolerated[:limit]]
    if len(tolerated) > limit:
        lines.append(f"--missing {mode}: ... and {len(tolerated) - limit} more")
    return lines


def data_fingerprint(benchmark: Benchmark, gt_digests: dict[str, str]) -> str:
    """sha256 over the metadata files and every ground-truth file scored (names and bytes)."""
    digest = hashlib.sha256()
    for path in benchmark.metadata_files():
        if path.is_file():
            digest.update(f"{path.name}\0".encode())
            digest.update(hashlib.sha256(path.read_bytes()).digest())
    for name in sorted(gt_digests):
        digest.update(f"{name}\0{gt_digests[name]}\n".encode())
    return digest.hexdigest()


def open_predictions(bench: Benchmark, preds: str | Path,
                     on_tasks: Callable[[list[VideoTask]], None] | None = None
                     ) -> tuple[PredictionStore, list[VideoTask], Presence]:
    """Validate the dataset, open the predictions and check which required files are there
    (``on_tasks`` is called with the tasks before that check)."""
    dataset_problems = bench.validate()
    if dataset_problems:
        raise ValidationError(f"dataset {bench.root} ({bench.title})", dataset_problems)
    store = PredictionStore(preds, reader=getattr(bench, "prediction_reader", "pil"))
    bench.bind_predictions(store)  # before tasks(): a query set may depend on the predictions
    tasks = bench.tasks()
    if not any(task.queries for task in tasks):
        raise RefvpsError(f"{bench.title}: nothing to score, split {bench.split!r} of {bench.root} "
                          "has no videos with queries")
    if on_tasks is not None:
        on_tasks(tasks)
    required = bench.required_predictions(store, tasks)
    presence = check_presence(store, required, tolerated=bench.tolerated_prediction_paths())
    return store, tasks, presence


def evaluate(preds: str | Path, benchmark: str | Benchmark = "ref-vps",
             data: str | Path | None = None, split: str | None = None, *,
             workers: int | None = None, allow_missing: bool = False,
             executor: str = "local", progress: bool = True, decay_mode: str = "davis2017",
             out: str | Path | None = None, name: str | None = None,
             address: str | None = None, missing: str | None = None,
             runs: Sequence[int] | None = None) -> EvalResult:
    """Score predictions ``preds`` (folder or .zip) on ``benchmark`` with its official protocol.

    Raises :class:`ValidationError` listing every problem at once (dataset problems, missing
    predictions unless ``allow_missing``, unknown folders, unreadable or mis-sized masks).
    ``missing`` selects one of the benchmark's ``missing_modes`` (e.g. MeViS ``"official"``,
    which reproduces the official script's handling; what it tolerated is counted and warned).
    ``runs`` picks annotator runs of benchmarks that have them (Ref-DAVIS: 0..3).
    ``workers`` processes score, this one included (default: every core); a job under
    ``refvps.executors.SMALL_JOB_FRAMES`` query-frames is scored in this process alone.
    ``out`` is checked and locked before anything is scored, and written as one set.
    """
    started = time.perf_counter()
    output = output_folder(out).open() if out is not None else None  # fail before scoring
    try:
        result = _evaluate(preds, benchmark, data, split, workers=workers,
                           allow_missing=allow_missing, executor=executor, progress=progress,
                           decay_mode=decay_mode, name=name, address=address, missing=missing,
                           runs=runs, started=started)
        if output is not None:
            result.write(output)
    finally:
        if output is not None:
            output.close()
    return result


def _evaluate(preds, benchmark, data, split, *, workers, allow_missing, executor, progress,
              decay_mode, name, address, missing, runs, started) -> EvalResult:
    from refvps import __version__
    from refvps.executors import (pool_workers, score_tasks, start_pool_server,
                                  start_resource_tracker)

    if missing is not None and not isinstance(benchmark, Benchmark):
        benchmark_class(benchmark).check_missing_mode(missing)  # before looking for the data
    options = {} if runs is None else {"runs": tuple(runs)}
    if options and isinstance(benchmark, Benchmark):
        raise RefvpsError("runs= goes to the benchmark itself when one is passed, e.g. "
                          "load_benchmark('ref-davis', data, runs=(0,))")
    if options and "runs" not in inspect.signature(benchmark_class(benchmark)).parameters:
        raise RefvpsError(f"--runs applies to benchmarks with annotator runs (ref-davis), not "
                          f"{benchmark}")
    if executor == "local":
        start_resource_tracker(workers)  # on another core, while the benchmark loads
    bench = benchmark if isinstance(benchmark, Benchmark) else load_benchmark(
        benchmark, data, split, decay_mode=decay_mode, **options)
    if missing is not None:
        bench.set_missing_mode(missing)
    if allow_missing and bench.missing != "strict":
        raise RefvpsError(f"--allow-missing and --missing {bench.missing} exclude each other")
    if bench.split in bench.server_splits:
        raise RefvpsError(
            f"{bench.title}: split {bench.split!r} has no public ground truth; it is scored by the "
            f"evaluation server. Build the upload with: refvps submit --benchmark {bench.name} "
            f"--split {bench.split} --data DATA --preds {preds} --out submission.zip")

    def start_pool(tasks: list[VideoTask]) -> None:  # on another core, while the files are listed
        if executor == "local" and pool_workers(tasks, workers) > 1:
            start_pool_server((type(bench).__module__,))

    store, tasks, presence = open_predictions(bench, preds, on_tasks=start_pool)
    problems: list[Problem] = list(presence.unknown_problems)
    if not allow_missing and bench.missing == "strict":
        problems += presence.missing_problems
    rows: list[dict] = []
    digests: dict[str, str] = {}
    extra_counts: dict[str, int] = {}
    tolerated: list[Problem] = []
    for result in score_tasks(bench, store, tasks, allow_missing=allow_missing, workers=workers,
                              executor=executor, progress=progress, address=address):
        rows.extend(result.rows)
        problems.extend(result.problems)
        digests.update(result.digests)
        tolerated.extend(result.tolerated)
        for key, value in result.counts.items():
            extra_counts[key] = extra_counts.get(key, 0) + value
    # A problem with a video's ground truth is reported by every part of a split video.
    problems, tolerated = list(dict.fromkeys(problems)), list(dict.fromkeys(tolerated))
    if problems:
        raise ValidationError(f"predictions {store.path}", problems,
                              _problem_hint(bench, presence, allow_missing))

    frames = pd.DataFrame(rows)
    order = {q.unit: i for i, q in enumerate(bench.queries())}
    frames = frames.sort_values(["unit", "t"], key=lambda col: col.map(order)
                                if col.name == "unit" else col, kind="stable").reset_index(drop=True)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", RuntimeWarning)
        scores = bench.unit_scores(frames)
    meta = bench.units_table()
    units = meta.merge(scores, on="unit", how="inner")
    metrics, tables = bench.aggregate(frames, units)
    missing_scored = int(frames["pred_missing"].sum()) if allow_missing and len(frames) else 0
    summary = {
        "refvps_version": __version__,
        "benchmark": bench.name,
        "title": bench.title,
        "split": bench.split,
        "protocol": bench.protocol,
        "reference": bench.reference,
        "name": name or Path(preds).name.removesuffix(".zip"),
        "predictions": str(Path(preds).resolve()),
        "data_root": str(bench.root.resolve()),
        "data_fingerprint": data_fingerprint(bench, digests),
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "unit_name": bench.unit_name,
        "unit_weight": bench.unit_weight,
        "class_key": bench.class_key,
        "headline": list(bench.headline),
        "metrics": metrics,
        "counts": {
            "videos": int(frames["video"].nunique()) if len(frames) else 0,
            "queries": int(len(units)),
            "frames_scored": int(len(frames)),
            "missing_frames_scored_empty": missing_scored,
            "units_with_missing": int((units["missing_frames"] > 0).sum())
            if allow_missing and len(units) else 0,
            **extra_counts,
        },
        "options": {"allow_missing": allow_missing, "missing": bench.missing,
                    "decay_mode": bench.decay_mode, "executor": executor},
        "warnings": sorted({str(w.message) for w in caught})
        + _tolerated_warnings(bench.missing, tolerated),
        "notes": bench.notes() + store.notes(),
        "elapsed_s": round(time.perf_counter() - started, 3),
    }
    return EvalResult(summary, frames, units, tables)
