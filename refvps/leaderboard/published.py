"""The numbers printed in papers (``refvps/data/published.csv``): schema, loading, merging.

Long form, one row per (printed result, metric, citing paper). Rows that share ``result`` are the
same printed numbers cited by several papers; they merge into one leaderboard row that lists every
citation. docs/leaderboard.md describes each column.
"""
from __future__ import annotations

import io
from importlib import resources

import pandas as pd

from refvps.leaderboard.settings import LOCAL_SETTING, SETTINGS  # noqa: F401  (re-exported)

PUBLISHED_FILE = "published.csv"
COLUMNS = ("result", "benchmark", "split", "setting", "model", "variant", "training_data",
           "metric", "value", "printed_as", "paper", "authors", "arxiv", "copy", "url", "venue",
           "year", "table", "page", "notes")
"""Every column is read as text (ids like arXiv ``2412.01136`` or a page must not turn into
numbers), except ``value``."""

IDENTITY = ("result", "benchmark", "split", "setting", "model", "variant", "training_data")
"""Columns every row of one result must agree on (besides its metric values)."""
PROVENANCE = ("paper", "arxiv", "table")
"""Columns no published row may leave empty."""


def read_published(text: str) -> pd.DataFrame:
    """Parse published-results CSV text with the schema's dtypes."""
    table = pd.read_csv(io.StringIO(text), dtype=str, keep_default_na=False)
    missing = [c for c in COLUMNS if c not in table.columns]
    if missing:
        raise ValueError(f"published results: missing column(s) {', '.join(missing)}")
    table["value"] = pd.to_numeric(table["value"], errors="raise").astype(float)
    return table


def load_published() -> pd.DataFrame:
    """The bundled published results, one row per (result, metric, citing paper)."""
    text = resources.files("refvps").joinpath("data", PUBLISHED_FILE).read_text(encoding="utf-8")
    return read_published(text)


def problems(table: pd.DataFrame) -> list[str]:
    """What is wrong with a published table (empty when it is consistent)."""
    found = []
    for column in PROVENANCE:
        empty = table[table[column].str.strip() == ""]
        found += [f"row {i + 2}: empty {column}" for i in empty.index]
    bad = table[~table["setting"].isin(list(SETTINGS))]
    found += [f"row {i + 2}: setting {s!r} not in the vocabulary" for i, s in bad["setting"].items()]
    for result, rows in table.groupby("result", sort=False):
        for column in IDENTITY[1:]:
            if rows[column].nunique() > 1:
                found.append(f"result {result}: {column} differs between its rows")
        per_metric = rows.groupby("metric")["value"].nunique()
        found += [f"result {result}: {m} differs between citing papers"
                  for m in per_metric[per_metric > 1].index]
        cited = rows.drop_duplicates(["paper", "table", "metric"])
        if len(cited) != len(rows):
            found.append(f"result {result}: a paper's table cites it twice")
    return found


def _citation(row: dict) -> str:
    copy = f" ({row['copy']})" if row["copy"] else ""
    page = f", p. {row['page']}" if row["page"] else ""
    return f"{row['paper']}, arXiv {row['arxiv']}{copy}, {row['table']}{page}"


def _joined(values, sep: str = "; ") -> str:
    return sep.join(dict.fromkeys(v for v in values if v))


def published_results(table: pd.DataFrame | None = None) -> pd.DataFrame:
    """One row per printed result: its metrics as columns, every citation listed.

    ``reference`` is short ("VD-IT Table 1; REM Table 1"), ``provenance`` gives arXiv id, copy,
    table and page of each citation, ``cited_in`` the papers with venue and year.
    """
    table = load_published() if table is None else table
    groups: dict[str, list[dict]] = {}
    for row in table.to_dict(orient="records"):  # plain dicts: ~100x faster than groupby here
        groups.setdefault(row["result"], []).append(row)
    rows = []
    for group in groups.values():
        citations = list({(r["paper"], r["table"]): r for r in group}.values())
        row = {c: group[0][c] for c in IDENTITY}
        row.update(
            printed_as=_joined((r["printed_as"] for r in group), " / "),
            reference=_joined(f"{r['paper']} {r['table']}" for r in citations),
            provenance=_joined(_citation(r) for r in citations),
            cited_in=_joined(f"{r['paper']} ({r['authors']}, {r['venue']} {r['year']})"
                             for r in citations),
            notes=_joined(r["notes"] for r in group))
        for r in group:
            row.setdefault(r["metric"], float(r["value"]))
        rows.append(row)
    return pd.DataFrame(rows)
