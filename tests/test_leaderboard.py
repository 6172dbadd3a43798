import io
import json

import pandas as pd
import pytest
from click.testing import CliRunner

from refvps.cli import main
from refvps.leaderboard import save_record
from refvps.leaderboard.table import build_leaderboard, load_published, published_rows
from test_records import _result_of, _write_bad

PROVENANCE = ("benchmark", "split", "model", "metric", "value", "setting", "training_data",
              "paper", "source", "table")


def test_published_rows_carry_provenance():
    table = load_published()
    assert len(table) > 250
    for column in PROVENANCE:
        assert (table[column].astype(str).str.strip() != "").all(), column
    assert set(table["benchmark"]) == {"mevis", "ref-davis", "ref-ytvos"}
    assert set(table["metric"]) == {"J&F", "J", "F"}
    assert table["value"].between(0, 100).all()
    assert set(table["source"]) == {"000", "001", "002", "003"}
    assert not table.duplicated(["source", "table", "benchmark", "model", "variant",
                                 "training_data", "setting", "metric"]).any()


def _value(rows, **keys):
    mask = pd.Series(True, index=rows.index)
    for key, value in keys.items():
        mask &= rows[key] == value
    assert mask.sum() == 1, keys
    return float(rows.loc[mask, "value"].iloc[0])


def test_published_values_as_printed():
    table = load_published()
    # spot checks against the papers (REM Table 1 / Table I, SOLA Table 1, UniRef++ Table 3)
    assert _value(table, source="000", table="Table 1", model="REM", variant="Wan-14B",
                  benchmark="ref-davis", metric="J&F") == 75.0
    assert _value(table, source="000", table="Table I", model="REM", training_data="MeViS",
                  metric="F") == 60.9
    assert _value(table, source="003", table="Table 1", model="SOLA", metric="J") == 45.2
    assert _value(table, source="001", table="Table 3", model="UniRef++", variant="Swin-L",
                  benchmark="ref-davis", metric="J&F") == 67.2
    # prose-only margins (REM MS-1.4B on MeViS = GLUS + 2.2) are not numbers of the table
    rem_mevis = table[(table["model"] == "REM") & (table["benchmark"] == "mevis")]
    assert set(rem_mevis["variant"]) == {"Wan-14B"}


def test_published_triples_are_consistent_or_flagged():
    wide = published_rows()
    full = wide.dropna(subset=["J&F", "J", "F"])
    gap = (full["J&F"] - (full["J"] + full["F"]) / 2).abs()
    off = full[gap > 0.051]
    assert len(off) == 3  # URVOS (twice) and MLRL on Ref-DAVIS, as printed
    assert off["notes"].str.contains("(J+F)/2", regex=False).all()


def test_leaderboard_ranks_local_and_published(sample_runs, tmp_path):
    from refvps.report.run import load_run

    store = tmp_path / "store"
    for name in ("shifted", "perfect"):
        save_record(_result_of(load_run(sample_runs[name])), store)
    table, warnings = build_leaderboard("ref-vps", results=store)
    assert warnings == []
    assert list(table["model"]) == ["perfect", "shifted"]
    assert list(table["rank"]) == [1, 2]
    metric_columns = [c for c in table.columns if c in ("J", "F", "J&F", "TC")]
    assert metric_columns == ["J"]  # Ref-VPS papers report J only
    assert table["J"].iloc[0] == 100.0
    mevis, _ = build_leaderboard("mevis", results=store)
    assert [c for c in mevis.columns if c in ("J", "F", "J&F")] == ["J&F", "J", "F"]
    assert mevis["J&F"].is_monotonic_decreasing and (mevis["source"] == "published").all()
    assert mevis["rank"].iloc[0] == 1 and mevis["model"].iloc[0] == "REM"
    by_f, _ = build_leaderboard("ref-vps", metric="F", results=store)
    assert "F" in by_f.columns and by_f["F"].is_monotonic_decreasing
    everything, _ = build_leaderboard(results=store)
    assert set(everything["benchmark"]) == {"ref-vps", "mevis", "ref-davis", "ref-ytvos"}
    assert list(everything["benchmark"].drop_duplicates())[0] == "ref-vps"


def test_cli_csv_is_clean_and_reads_back(sample_runs, tmp_path):
    from refvps.report.run import load_run

    store = tmp_path / "store"
    save_record(_result_of(load_run(sample_runs["shifted"])), store)
    bad = _write_bad(store, "zz-bad", "not json")
    result = CliRunner().invoke(main, ["leaderboard", "--csv", "--results", str(store)])
    assert result.exit_code == 0, result.output
    table = pd.read_csv(io.StringIO(result.stdout))
    assert set(table["source"]) == {"local", "published"}
    assert {"rank", "benchmark", "model", "J", "J&F", "F", "reference"} <= set(table.columns)
    local = table[table["source"] == "local"]
    assert list(local["model"]) == ["shifted"] and local["benchmark"].iloc[0] == "ref-vps"
    assert str(bad) in result.stderr and str(bad) not in result.stdout

    result = CliRunner().invoke(main, ["leaderboard", "--json", "--no-published", "-b", "ref-vps",
                                       "--results", str(store)])
    rows = json.loads(result.stdout)
    assert [r["model"] for r in rows] == ["shifted"]
    assert rows[0]["J"] == pytest.approx(round(load_run(sample_runs["shifted"])
                                               .summary["metrics"]["J"] * 100, 2))

    result = CliRunner().invoke(main, ["leaderboard", "--markdown", "-b", "ref-davis",
                                       "--results", str(store)])
    lines = result.stdout.strip().splitlines()
    assert lines[0].startswith("| rank | benchmark |") and set(lines[1]) <= {"|", "-"}
    assert len(lines) == 2 + len(published_rows().query("benchmark == 'ref-davis'"))
