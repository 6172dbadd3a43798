"""The leaderboard: local runs and published numbers in one table, ranked per comparable group.

A group is (benchmark, split, setting): rows of different splits (MeViS online ``valid`` vs local
``valid_u``) or settings (zero-shot, 24 fps, ...) are never ranked against each other. Local runs
rank with the ``standard`` published rows of their benchmark and split. Values are fractions in
[0, 1] unless ``percent`` (see :mod:`refvps.units`).
"""
from __future__ import annotations

import json
import math
from pathlib import Path

import pandas as pd

from refvps.leaderboard.published import published_results
from refvps.leaderboard.settings import LOCAL_SETTING, SETTINGS
from refvps.leaderboard.records import (RunRecord, latest_per_identity, list_records,
                                        results_root)
from refvps.units import factor, is_score

PAPER_METRICS: dict[str, tuple[str, ...]] = {"ref-vps": ("J",), "burst": ("J",), "vspw": ("J",),
                                             "a2d-sentences": ("mAP", "oIoU", "mIoU"),
                                             "jhmdb-sentences": ("mAP", "oIoU", "mIoU"),
                                             "vspw-semantic": ("mIoU", "VC8", "VC16")}
"""Metrics each benchmark's papers report; every other benchmark reports J&F, J, F."""
DEFAULT_METRICS = ("J&F", "J", "F")
METRIC_ORDER = ("J&F", "J", "F", "TC")
"""Metric columns in this order in every table (other benchmarks' metrics follow, in the order of
:data:`PAPER_METRICS`): where a benchmark's papers report J&F, J&F is both its first column and
its ranking metric; where they report only J, the J&F column is empty and J comes first."""
LOWER_IS_BETTER = frozenset({"TC", "J_decay", "F_decay", "empty_pred_rate"})
BENCHMARK_ORDER = ("ref-vps", "mevis", "ref-ytvos", "ref-davis", "burst", "vspw", "vspw-semantic",
                   "davis17", "a2d-sentences", "jhmdb-sentences")
SETTING_ORDER = ("standard", LOCAL_SETTING, *[s for s in SETTINGS if s != "standard"])
COLUMNS = ("rank", "benchmark", "split", "setting", "model", "variant", "training_data", "source")
TRAILING = ("reference", "printed_as", "provenance", "cited_in", "notes")
DETAIL = ("printed_as", "provenance", "cited_in", "notes")
"""Columns only the machine formats (CSV, JSON) and ``--wide`` show."""
IDENTITY = ("benchmark", "split", "setting", "model", "variant", "training_data", "source",
            "reference")
"""What tells two rows apart in the default tables (besides their values)."""


def reported_metrics(benchmark: str) -> tuple[str, ...]:
    return PAPER_METRICS.get(benchmark, DEFAULT_METRICS)


def published_rows() -> pd.DataFrame:
    """Published results in wide form, one row per printed result, values in percent as
    printed (see :mod:`refvps.leaderboard.published`)."""
    return published_results().assign(source="published")


def local_rows(records: list[RunRecord]) -> pd.DataFrame:
    """Local runs in the same wide form, values as stored (fractions)."""
    rows = []
    for record in records:
        row = {"benchmark": record.benchmark, "split": record.split, "model": record.name,
               "variant": "", "setting": LOCAL_SETTING, "source": "local",
               "reference": record.run_id, "training_data": "",
               "notes": f"refvps {record.refvps_version}; data {record.data_fingerprint[:12]}"}
        for key, value in record.metrics.items():
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                row[key] = float(value)
        rows.append(row)
    return pd.DataFrame(rows)


def build_leaderboard(benchmark: str | None = None, metric: str | None = None,
                      published: bool = True, results: str | Path | None = None, *,
                      setting: str | None = None, percent: bool = False
                      ) -> tuple[pd.DataFrame, list[str]]:
    """(table, warnings). Ranks are within each (benchmark, split, setting) group, by ``metric``
    (default: the first metric the benchmark's papers report that the group has), best first,
    rows without it last. Local runs: the latest of each (predictions, data) pair (see
    :func:`~refvps.leaderboard.records.latest_per_identity`). ``setting`` keeps one setting
    (``standard`` keeps the local runs that rank with it)."""
    records, warnings = list_records(results)
    kept, _ = latest_per_identity(records)
    local = local_rows(kept)
    parts = [_scaled(local, percent, 1.0)]
    if published:
        parts.append(_scaled(published_rows(), percent, 100.0))
    parts = [p for p in parts if len(p)]
    table = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(
        columns=list(COLUMNS))
    if benchmark:
        table = table[table["benchmark"] == benchmark]
    if setting:
        keep = table["setting"] == setting
        if setting == "standard":
            keep |= table["setting"] == LOCAL_SETTING
        table = table[keep]
    shown = _shown_metrics(table)
    metrics = [m for m in dict.fromkeys((*METRIC_ORDER, *(m for ms in PAPER_METRICS.values()
                                                           for m in ms))) if m in shown]
    if metric and metric not in metrics:
        metrics.insert(0, metric)
    for name in metrics:
        if name not in table.columns:
            table[name] = float("nan")
    groups = []
    if len(table):
        grouped = table.groupby(["benchmark", "split", "_group"], sort=False)
        for key in sorted(grouped.groups, key=_group_order):
            rows = grouped.get_group(key)
            groups.append(_rank(rows, _ranking_metric(rows, metric)))
    table = pd.concat(groups, ignore_index=True) if groups else table.assign(rank=pd.Series())
    columns = list(COLUMNS) + metrics + list(TRAILING)
    for name in columns:
        if name not in table.columns:
            table[name] = ""
    return table[columns].reset_index(drop=True), warnings


def _scaled(table: pd.DataFrame, percent: bool, stored: float) -> pd.DataFrame:
    """Scores from their stored unit (1: fraction, 100: percent) into the shown one; each row
    gets its ranking group (local runs rank with the standard rows)."""
    if table.empty:
        return table
    table = table.copy()
    for column in table.columns:
        if is_score(column) and pd.api.types.is_numeric_dtype(table[column]):
            values = table[column] * factor(percent) / stored
            # printed percent has at most 2 decimals: 2.8 -> 0.028, not 0.027999999999999997
            table[column] = values.round(6) if stored != factor(percent) else values
    table["_group"] = table["setting"].replace(LOCAL_SETTING, "standard")
    return table


def _shown_metrics(table: pd.DataFrame) -> set[str]:
    """The benchmarks' reported metrics, plus TC where a published row prints it (REM Table H),
    so local TC is shown next to it."""
    shown = {m for name in table["benchmark"].unique() for m in reported_metrics(name)}
    if "TC" in table.columns and (table["source"] == "published").any():
        if table.loc[table["source"] == "published", "TC"].notna().any():
            shown.add("TC")
    return shown


def _ranking_metric(rows: pd.DataFrame, metric: str | None) -> str:
    if metric:
        return metric
    reported = reported_metrics(rows["benchmark"].iloc[0])
    for name in reported + ("J",):
        if name in rows.columns and rows[name].notna().any():
            return name
    return reported[0]


def _group_order(key: tuple) -> tuple:
    benchmark, split, group = key
    order = BENCHMARK_ORDER.index(benchmark) if benchmark in BENCHMARK_ORDER else len(
        BENCHMARK_ORDER)
    return (order, benchmark, split, SETTING_ORDER.index(group) if group in SETTING_ORDER
            else len(SETTING_ORDER), group)


def _rank(table: pd.DataFrame, metric: str) -> pd.DataFrame:
    if metric not in table.columns:
        table = table.assign(**{metric: float("nan")})
    ascending = metric in LOWER_IS_BETTER
    table = table.sort_values([metric, "source", "model"], ascending=[ascending, True, True],
                              na_position="last", kind="stable")
    rank = table[metric].rank(method="min", ascending=ascending)
    return table.assign(rank=rank.astype("Int64"))


def empty_message(benchmark: str | None, setting: str | None, published: bool,
                  results: str | Path | None) -> str:
    """Why a leaderboard is empty, naming only the filters that were given."""
    what = " ".join(x for x in (benchmark, f"setting {setting}" if setting else None) if x)
    what = f" for {what}" if what else ""
    store = results_root(results)
    if published:
        return (f"(no published results{what} and no local runs in {store}: score predictions "
                f"with `refvps eval --preds DIR`)")
    return (f"(no local runs{what} in {store}: score predictions with `refvps eval --preds DIR`,"
            f" or drop --no-published to see the papers' numbers)")


# --- rendering ------------------------------------------------------------------------------
def to_csv(table: pd.DataFrame) -> str:
    return table.to_csv(index=False)


def to_json(table: pd.DataFrame) -> str:
    from refvps.fileio import jsonable

    records = [{k: (None if v is pd.NA else v) for k, v in row.items()}
               for row in table.to_dict(orient="records")]
    return json.dumps(jsonable(records), indent=2, ensure_ascii=False)


def shown_columns(table: pd.DataFrame, wide: bool = False) -> list[str]:
    """The default tables' columns: identity and metrics; ``wide`` adds provenance and notes."""
    return list(table.columns) if wide else [c for c in table.columns if c not in DETAIL]


def to_markdown(table: pd.DataFrame, wide: bool = False, percent: bool = False) -> str:
    """A GitHub-flavoured Markdown table (no extra dependency)."""
    columns = shown_columns(table, wide)
    lines = ["| " + " | ".join(columns) + " |", "|" + "|".join("---" for _ in columns) + "|"]
    for _, row in table[columns].iterrows():
        lines.append("| " + " | ".join(_cell(row[c], percent).replace("|", "\\|")
                                       for c in columns) + " |")
    return "\n".join(lines)


def to_text(table: pd.DataFrame, wide: bool = False, percent: bool = False) -> str:
    """A plain-text table: words left-aligned, rank and scores right-aligned."""
    columns = shown_columns(table, wide)
    cells = [[_cell(v, percent) for v in row] for row in table[columns].itertuples(index=False)]
    widths = [max([len(c), *(len(row[i]) for row in cells)]) for i, c in enumerate(columns)]
    right = [c == "rank" or is_score(c) for c in columns]

    def line(values) -> str:
        return "  ".join(v.rjust(w) if r else v.ljust(w)
                         for v, w, r in zip(values, widths, right)).rstrip()

    return "\n".join([line(columns)] + [line(row) for row in cells])


def _cell(value, percent: bool = False) -> str:
    if value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value)):
        return "-"
    if isinstance(value, float):
        return f"{value:.2f}" if percent else f"{value:.4f}"
    return str(value)
