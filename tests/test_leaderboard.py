import io
import json

import pandas as pd
import pytest
from click.testing import CliRunner

from refvps.cli import main
from refvps.leaderboard import save_record
from refvps.leaderboard.published import (COLUMNS, SETTINGS, load_published, problems,
                                          published_results, read_published)
from refvps.leaderboard.table import build_leaderboard, published_rows
from test_records import _result_of, _write_bad

def test_published_rows_are_traceable():
    table = load_published()
    assert problems(table) == []
    assert len(table) > 300
    for column in ("result", "benchmark", "split", "model", "metric", "setting", "training_data",
                   "printed_as", "paper", "authors", "arxiv", "url", "venue", "year", "table"):
        assert (table[column].str.strip() != "").all(), column
    assert set(table["setting"]) <= set(SETTINGS)
    assert set(table["benchmark"]) == {"ref-vps", "mevis", "ref-davis", "ref-ytvos", "burst", "vspw",
                                       "davis17", "a2d-sentences", "jhmdb-sentences"}
    assert table["value"].between(0, 100).all()
    assert not table.duplicated(["result", "paper", "table", "metric"]).any()


def test_published_ids_stay_strings():
    table = load_published()
    assert set(table["arxiv"]) == {"2410.23287v2", "2312.15715", "2403.12042", "2412.01136"}
    assert all(isinstance(v, str) for v in table["year"]) and "2024" in set(table["year"])
    text = "\n".join([",".join(COLUMNS),
                      "r/001,ref-vps,test,standard,M,,x,J,1.0,M,P,A,0001.10,,u,v,2020,Table 1,007,"])
    row = read_published(text).iloc[0]
    assert (row["result"], row["arxiv"], row["page"], row["year"]) == ("r/001", "0001.10", "007",
                                                                       "2020")


def test_problems_are_found():
    table = load_published()
    bad = table.copy()
    bad.loc[0, "table"] = ""
    bad.loc[1, "setting"] = "fine-tuned"
    bad.loc[bad["result"] == bad.loc[5, "result"], "value"] += [0.0] + [1.0] * (
        (bad["result"] == bad.loc[5, "result"]).sum() - 1)
    found = problems(bad)
    assert any("row 2: empty table" in line for line in found)
    assert any("'fine-tuned' not in the vocabulary" in line for line in found)


def _value(rows, **keys):
    mask = pd.Series(True, index=rows.index)
    for key, value in keys.items():
        mask &= rows[key] == value
    assert mask.sum() == 1, keys
    return float(rows.loc[mask, "value"].iloc[0])


def test_published_values_as_printed():
    table = load_published()
    # spot checks against the papers (REM Tables 1, I, 4, H; SOLA Table 1; UniRef++ Table 3)
    assert _value(table, paper="REM", table="Table 1", model="REM", variant="Wan-14B",
                  benchmark="ref-davis", metric="J&F") == 75.0
    assert _value(table, paper="REM", table="Table I", model="REM",
                  training_data="Wan-14B, masks: MeViS only", metric="F") == 60.9
    assert _value(table, paper="SOLA", table="Table 1", model="SOLA", metric="J") == 45.2
    assert _value(table, paper="UniRef++", table="Table 3", model="UniRef++", variant="Swin-L",
                  benchmark="ref-davis", metric="J&F") == 67.2
    table4 = table[(table["paper"] == "REM") & (table["table"] == "Table 4")]
    assert dict(zip(table4["printed_as"], table4["value"])) == {
        "MUTR": 25.4, "UNINEXT": 28.7, "VD-IT": 37.9, "GLUS": 34.6, "REM (MS-1.4B)": 49.0,
        "REM (Wan-14B)": 50.0}
    # Table 4's margins as REM's prose states them: 12.1 points (31.9 %) over VD-IT, 21.3 (74.2 %)
    assert round(50.0 - 37.9, 1) == 12.1 and round((50.0 - 37.9) / 37.9 * 100, 1) == 31.9
    assert round(50.0 - 28.7, 1) == 21.3 and round((50.0 - 28.7) / 28.7 * 100, 1) == 74.2
    assert _value(table, table="Table H", benchmark="ref-vps", model="UNINEXT", metric="TC") == 5.2
    assert set(table.loc[table["table"] == "Table H", "setting"]) == {"24fps"}


def test_one_printed_result_is_one_row_with_all_citations():
    wide = published_results()
    assert not wide["result"].duplicated().any()
    referformer = wide[(wide["benchmark"] == "ref-davis") & (wide["J&F"] == 61.1)]
    assert len(referformer) == 1
    assert referformer["reference"].iloc[0] == "VD-IT Table 1; UniRef++ Table 3; REM Table 1"
    assert "REM, arXiv 2410.23287v2 (HTML), Table 1" in referformer["provenance"].iloc[0]
    vps = wide[(wide["benchmark"] == "ref-vps") & (wide["setting"] == "standard")]
    assert set(vps["provenance"]) == {"REM, arXiv 2410.23287v2 (PDF), Table 4"}


def test_published_triples_are_consistent_or_flagged():
    wide = published_rows()
    full = wide.dropna(subset=["J&F", "J", "F"])
    gap = (full["J&F"] - (full["J"] + full["F"]) / 2).abs()
    off = full[gap > 0.051]
    assert len(off) == 4  # URVOS and MLRL on Ref-DAVIS, UniRef++ on DAVIS17, as printed
    assert off["notes"].str.contains("(J+F)/2", regex=False).all()


def test_leaderboard_ranks_local_and_published(sample_runs, tmp_path):
    from refvps.report.run import load_run

    store = tmp_path / "store"
    for name in ("shifted", "perfect"):
        save_record(_result_of(load_run(sample_runs[name])), store)
    table, warnings = build_leaderboard("ref-vps", published=False, results=store)
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
    by_f, _ = build_leaderboard("ref-vps", metric="F", published=False, results=store)
    assert "F" in by_f.columns and by_f["F"].is_monotonic_decreasing
    everything, _ = build_leaderboard(results=store)
    assert set(everything["benchmark"]) == {"ref-vps", "mevis", "ref-davis", "ref-ytvos", "burst",
                                            "vspw", "davis17", "a2d-sentences", "jhmdb-sentences"}
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
