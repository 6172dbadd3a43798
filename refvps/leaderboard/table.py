"""The leaderboard: local runs and published numbers in one ranked table (values in percent)."""
from __future__ import annotations

import json
import math
from pathlib import Path

import pandas as pd

from refvps.leaderboard.published import LOCAL_SETTING, published_results
from refvps.leaderboard.records import RunRecord, list_records

PAPER_METRICS: dict[str, tuple[str, ...]] = {"ref-vps": ("J",), "burst": ("J",), "vspw": ("J",),
                                             "a2d-sentences": ("mAP", "oIoU", "mIoU"),
                                             "jhmdb-sentences": ("mAP", "oIoU", "mIoU"),
                                             "vspw-semantic": ("mIoU", "VC8", "VC16")}
"""Metrics each benchmark's papers report; every other benchmark reports J&F, J, F."""
DEFAULT_METRICS = ("J&F", "J", "F")
LOWER_IS_BETTER = frozenset({"TC", "J_decay", "F_decay", "empty_pred_rate"})
BENCHMARK_ORDER = ("ref-vps", "mevis", "ref-ytvos", "ref-davis", "burst", "vspw", "vspw-semantic",
                   "davis17", "a2d-sentences", "jhmdb-sentences")
COLUMNS = ("rank", "benchmark", "split", "setting", "model", "variant", "training_data", "source")
TRAILING = ("reference", "printed_as", "provenance", "cited_in", "notes")
DETAIL = ("printed_as", "provenance", "cited_in", "notes")
"""Columns only the machine formats (CSV, JSON) and ``--markdown --wide`` show."""


def reported_metrics(benchmark: str) -> tuple[str, ...]:
    return PAPER_METRICS.get(benchmark, DEFAULT_METRICS)


def published_rows() -> pd.DataFrame:
    """Published results in wide form, one row per printed result (see ``published``)."""
    return published_results().assign(source="published")


def local_rows(records: list[RunRecord]) -> pd.DataFrame:
    """Local runs in the same wide form, metrics converted to percent."""
    rows = []
    for record in records:
        row = {"benchmark": record.benchmark, "split": record.split, "model": record.name,
               "variant": "", "setting": LOCAL_SETTING, "source": "local",
               "reference": record.run_id, "training_data": "",
               "notes": f"refvps {record.refvps_version}; data {record.data_fingerprint[:12]}"}
        for key, value in record.metrics.items():
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                scale = 1 if key.endswith("_units") else 100
                row[key] = round(value * scale, 2) if not math.isnan(value) else float("nan")
        rows.append(row)
    return pd.DataFrame(rows)


def build_leaderboard(benchmark: str | None = None, metric: str | None = None,
                      published: bool = True, results: str | Path | None = None
                      ) -> tuple[pd.DataFrame, list[str]]:
    """(ranked table, warnings). Ranks are within each benchmark, by ``metric`` (default: the
    first metric the benchmark's papers report), best first; rows without it rank last."""
    records, warnings = list_records(results)
    parts = [local_rows(records)]
    if published:
        parts.append(published_rows())
    table = pd.concat([p for p in parts if len(p)], ignore_index=True) if any(
        len(p) for p in parts) else pd.DataFrame(columns=list(COLUMNS))
    if benchmark:
        table = table[table["benchmark"] == benchmark]
    benches = sorted(table["benchmark"].unique(), key=_bench_order)
    metrics: list[str] = []
    for name in benches:
        metrics += [m for m in reported_metrics(name) if m not in metrics]
    if metric and metric not in metrics:
        metrics.insert(0, metric)
    for name in metrics:
        if name not in table.columns:
            table[name] = float("nan")
    ranked = [_rank(table[table["benchmark"] == name], metric or reported_metrics(name)[0])
              for name in benches]
    table = pd.concat(ranked, ignore_index=True) if ranked else table.assign(rank=pd.Series())
    columns = list(COLUMNS) + metrics + list(TRAILING)
    for name in columns:
        if name not in table.columns:
            table[name] = ""
    return table[columns].reset_index(drop=True), warnings


def _bench_order(name: str) -> tuple[int, str]:
    return (BENCHMARK_ORDER.index(name) if name in BENCHMARK_ORDER else len(BENCHMARK_ORDER), name)


def _rank(table: pd.DataFrame, metric: str) -> pd.DataFrame:
    ascending = metric in LOWER_IS_BETTER
    table = table.sort_values([metric, "source", "model"], ascending=[ascending, True, True],
                              na_position="last", kind="stable")
    rank = table[metric].rank(method="min", ascending=ascending)
    return table.assign(rank=rank.astype("Int64"))


# --- rendering ------------------------------------------------------------------------------
def to_csv(table: pd.DataFrame) -> str:
    return table.to_csv(index=False)


def to_json(table: pd.DataFrame) -> str:
    records = json.loads(table.to_json(orient="records"))
    return json.dumps(records, indent=2, ensure_ascii=False)


def to_markdown(table: pd.DataFrame, wide_columns: bool = False) -> str:
    """A GitHub-flavoured Markdown table (no extra dependency)."""
    columns = list(table.columns) if wide_columns else [c for c in table.columns
                                                       if c not in DETAIL]
    lines = ["| " + " | ".join(columns) + " |", "|" + "|".join("---" for _ in columns) + "|"]
    for _, row in table[columns].iterrows():
        lines.append("| " + " | ".join(_cell(row[c]).replace("|", "\\|") for c in columns) + " |")
    return "\n".join(lines)


def to_text(table: pd.DataFrame) -> str:
    if table.empty:
        return "(no results: run `refvps eval`, or drop --no-published)"
    columns = [c for c in table.columns if c not in DETAIL]
    shown = table[columns].copy()
    for column in shown.columns:
        shown[column] = shown[column].map(_cell)
    return shown.to_string(index=False)


def _cell(value) -> str:
    if value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value)):
        return "-"
    if isinstance(value, float):
        return f"{value:.2f}".rstrip("0").rstrip(".") if value != int(value) else f"{value:.1f}"
    return str(value)
