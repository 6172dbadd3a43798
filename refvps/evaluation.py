"""Score a predictions folder on a benchmark: validate, score per frame, aggregate, report."""
from __future__ import annotations

import hashlib
import json
import math
import os
import tempfile
import time
import warnings
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import pandas as pd

from refvps.errors import Problem, ValidationError
from refvps.loaders import Benchmark, load_benchmark
from refvps.predictions import PredictionStore, check_presence

METRIC_NOTES = {
    "J": "region similarity (Jaccard)",
    "F": "contour accuracy (boundary F)",
    "J&F": "mean of J and F",
    "TC": "temporal consistency: mean |dJ| between consecutive scored frames, lower is better",
}


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

    def write(self, out: str | Path) -> dict[str, str]:
        """Write per-frame rows, per-unit and breakdown tables and summary.json to ``out``."""
        out = Path(out)
        out.mkdir(parents=True, exist_ok=True)
        unit_file = f"{_plural(self.summary['unit_name'])}.csv"
        files = {"frames": "frames.csv", "units": unit_file, "summary": "summary.json"}
        _atomic_csv(self.frames, out / "frames.csv")
        _atomic_csv(self.units, out / unit_file)
        for name, table in self.tables.items():
            files[name] = f"{name}.csv"
            _atomic_csv(table, out / files[name])
        self.summary["files"] = {k: str((out / v).resolve()) for k, v in files.items()}
        _atomic_write(out / "summary.json", json.dumps(_jsonable(self.summary), indent=2) + "\n")
        return self.summary["files"]

    def to_json(self) -> str:
        return json.dumps(_jsonable(self.summary), indent=2)

    def to_text(self) -> str:
        """A readable summary for a terminal."""
        s = self.summary
        c = s["counts"]
        lines = [f"{s['title']}  [split {s['split']}]",
                 f"predictions: {s['predictions']}",
                 f"scored {c['queries']} {_plural(s['unit_name'])} over {c['videos']} videos, "
                 f"{c['frames_scored']} frames",
                 ""]
        for key in s["headline"]:
            value = s["metrics"].get(key)
            note = METRIC_NOTES.get(key, "")
            if key == "TC":
                note += (f" ({s['metrics'].get('TC_units', 0)} {_plural(s['unit_name'])} "
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
        for warning in s.get("warnings", []):
            lines.append(f"  warning: {warning}")
        for name, label in (("concept_groups", "concept group"), ("classes", "class")):
            table = self.tables.get(name)
            if table is not None and len(table):
                lines += ["", f"per {label}:", _table_text(table, s["headline"])]
        return "\n".join(lines)


def _plural(noun: str) -> str:
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


def _jsonable(value):
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, float) and math.isnan(value):
        return None
    if hasattr(value, "item"):
        return _jsonable(value.item())
    return value


def _atomic_write(path: Path, text: str) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(text)
    os.replace(tmp, path)


def _atomic_csv(table: pd.DataFrame, path: Path) -> None:
    _atomic_write(path, table.to_csv(index=False))


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


def evaluate(preds: str | Path, benchmark: str | Benchmark = "ref-vps",
             data: str | Path | None = None, split: str | None = None, *,
             workers: int | None = None, allow_missing: bool = False,
             executor: str = "process", progress: bool = True, decay_mode: str = "davis2017",
             out: str | Path | None = None, name: str | None = None) -> EvalResult:
    """Score predictions ``preds`` (folder or .zip) on ``benchmark`` with its official protocol.

    Raises :class:`ValidationError` listing every problem at once (dataset problems, missing
    predictions unless ``allow_missing``, unknown folders, unreadable or mis-sized masks).
    """
    from refvps import __version__
    from refvps.executors import score_tasks

    started = time.perf_counter()
    bench = benchmark if isinstance(benchmark, Benchmark) else load_benchmark(
        benchmark, data, split, decay_mode=decay_mode)
    dataset_problems = bench.validate()
    if dataset_problems:
        raise ValidationError(f"dataset {bench.root} ({bench.title})", dataset_problems)
    store = PredictionStore(preds, reader=getattr(bench, "prediction_reader", "pil"))
    tasks = bench.tasks()
    bench.bind_predictions(store)
    required = [bench.prediction_relpath(q, f) for t in tasks for q in t.queries for f in q.frames]
    presence = check_presence(store, required, tolerated=bench.tolerated_prediction_paths())
    problems: list[Problem] = list(presence.unknown_problems)
    if not allow_missing:
        problems += presence.missing_problems
    rows: list[dict] = []
    digests: dict[str, str] = {}
    for result in score_tasks(bench, store, tasks, allow_missing=allow_missing, workers=workers,
                              executor=executor, progress=progress):
        rows.extend(result.rows)
        problems.extend(result.problems)
        digests.update(result.digests)
    if problems:
        hint = ("Missing predictions can be scored as empty masks with --allow-missing "
                "(counted in the output)." if presence.missing and not allow_missing else "")
        raise ValidationError(f"predictions {store.path}", problems, hint)

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
    missing_scored = int(frames["pred_missing"].sum()) if len(frames) else 0
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
        "headline": list(bench.headline),
        "metrics": metrics,
        "counts": {
            "videos": int(frames["video"].nunique()) if len(frames) else 0,
            "queries": int(len(units)),
            "frames_scored": int(len(frames)),
            "missing_frames_scored_empty": missing_scored,
            "units_with_missing": int((units["missing_frames"] > 0).sum()) if len(units) else 0,
        },
        "options": {"allow_missing": allow_missing, "decay_mode": bench.decay_mode,
                    "executor": executor},
        "warnings": sorted({str(w.message) for w in caught}),
        "elapsed_s": round(time.perf_counter() - started, 3),
    }
    result = EvalResult(summary, frames, units, tables)
    if out is not None:
        result.write(out)
    return result
