import io
import json

import pandas as pd
import pytest
from click.testing import CliRunner

from refvps.cli import main
from refvps.leaderboard import save_record
from refvps.leaderboard.published import (COLUMNS, SETTINGS, load_published, problems,
                                          published_results, read_published)
from refvps.leaderboard.table import (IDENTITY, build_leaderboard, published_rows, shown_columns,
                                      to_markdown, to_text)
from refvps.units import is_score
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


def test_each_printed_result_once():
    wide = published_results()
    same = ["benchmark", "split", "model", *(c for c in wide.columns if is_score(c))]
    assert not wide.duplicated(same).any()
    # the same numbers printed in two papers are one result citing both
    cited = wide.set_index("result")["reference"]
    assert cited["ref-ytvos/cmsa-resnet-50"] == "VD-IT Table 1; UniRef++ Table 3"
    assert cited["mevis/dshmp"] == "SOLA Table 1; REM Table I"


def test_published_triples_are_consistent_or_flagged():
    wide = published_rows()
    full = wide.dropna(subset=["J&F", "J", "F"])
    gap = (full["J&F"] - (full["J"] + full["F"]) / 2).abs()
    off = full[gap > 0.051]
    assert len(off) == 4  # URVOS and MLRL on Ref-DAVIS, UniRef++ on DAVIS17, as printed
    assert off["notes"].str.contains("(J+F)/2", regex=False).all()


def _store(sample_runs, tmp_path, names=("shifted", "perfect")):
    from refvps.report.run import load_run

    store = tmp_path / "store"
    for name in names:
        save_record(_result_of(load_run(sample_runs[name])), store)
    return store


def test_leaderboard_ranks_local_and_published(sample_runs, tmp_path):
    store = _store(sample_runs, tmp_path)
    table, warnings = build_leaderboard("ref-vps", published=False, results=store)
    assert warnings == []
    assert list(table["model"]) == ["perfect", "shifted"]
    assert list(table["rank"]) == [1, 2]
    metric_columns = [c for c in table.columns if c in ("J", "F", "J&F", "TC")]
    assert metric_columns == ["J"]  # Ref-VPS papers report J only
    assert table["J"].iloc[0] == 1.0  # fractions unless percent
    with_papers, _ = build_leaderboard("ref-vps", results=store, percent=True)
    assert [c for c in with_papers.columns if c in ("J", "F", "J&F", "TC")] == ["J", "TC"]
    standard = with_papers[with_papers["setting"].isin(["standard", "local"])]
    assert list(standard["rank"]) == list(range(1, 9))
    assert list(standard["model"][:3]) == ["perfect", "shifted", "REM"]
    assert standard["J"].iloc[0] == 100.0
    mevis, _ = build_leaderboard("mevis", results=store)
    assert [c for c in mevis.columns if c in ("J", "F", "J&F")] == ["J&F", "J", "F"]
    first = mevis[mevis["setting"] == "standard"]
    assert first["J&F"].is_monotonic_decreasing and (mevis["source"] == "published").all()
    assert first["rank"].iloc[0] == 1 and first["model"].iloc[0] == "REM"
    by_f, _ = build_leaderboard("ref-vps", metric="F", published=False, results=store)
    assert "F" in by_f.columns and by_f["F"].is_monotonic_decreasing
    everything, _ = build_leaderboard(results=store)
    assert set(everything["benchmark"]) == {"ref-vps", "mevis", "ref-davis", "ref-ytvos", "burst",
                                            "vspw", "davis17", "a2d-sentences", "jhmdb-sentences"}
    assert list(everything["benchmark"].drop_duplicates())[0] == "ref-vps"
    # one column order for every benchmark: J&F first where it is the ranking metric
    assert [c for c in everything.columns if c in ("J", "F", "J&F", "TC")] == ["J&F", "J", "F",
                                                                               "TC"]


def test_table4_methods_with_provenance_on_the_cli(tmp_path):
    result = CliRunner().invoke(main, ["leaderboard", "-b", "ref-vps", "--csv", "--results",
                                       str(tmp_path / "empty")])
    assert result.exit_code == 0, result.output
    table = pd.read_csv(io.StringIO(result.stdout), dtype=str, keep_default_na=False)
    table4 = table[table["reference"] == "REM Table 4"]
    assert sorted(table4["printed_as"]) == sorted(["MUTR", "UNINEXT", "VD-IT", "GLUS",
                                                   "REM (MS-1.4B)", "REM (Wan-14B)"])
    assert set(table4["provenance"]) == {"REM, arXiv 2410.23287v2 (PDF), Table 4"}
    assert set(table4["cited_in"]) == {"REM (Bagchi et al., arXiv preprint 2025)"}
    assert list(table4["rank"]) == ["1", "2", "3", "4", "5", "6"]
    table_h = table[table["setting"] == "24fps"]
    assert len(table_h) == 4 and (table_h["reference"] == "REM Table H").all()
    assert dict(zip(table_h["model"], table_h["TC"].astype(float))) == {
        "REM": 0.028, "VD-IT": 0.047, "UNINEXT": 0.052, "MUTR": 0.029}
    assert list(table_h["rank"]) == ["1", "2", "3", "4"]  # ranked apart from Table 4


def _looks(table, text):
    """The rows of a rendered table as the reader sees them, without rank and values."""
    columns = [c for c in shown_columns(table) if c in IDENTITY]
    return [tuple(row) for row in table[columns].astype(str).itertuples(index=False)]


@pytest.mark.parametrize("benchmark", ["ref-vps", "mevis", "ref-ytvos", "ref-davis", "burst",
                                       "vspw", None])
def test_no_two_rows_of_a_default_table_look_alike(sample_runs, tmp_path, benchmark):
    store = _store(sample_runs, tmp_path)
    table, _ = build_leaderboard(benchmark, results=store)
    looks = _looks(table, to_text(table))
    assert len(looks) == len(set(looks)) == len(table)
    lines = to_text(table).splitlines()[1:]
    assert len(set(line.split(None, 1)[1] for line in lines)) == len(lines)
    markdown = to_markdown(table).splitlines()[2:]
    assert len(set(line.split("|", 2)[2] for line in markdown)) == len(markdown)
    assert "training_data" in to_text(table).splitlines()[0]
    assert "training_data" in to_markdown(table).splitlines()[0]


def test_the_issue_s_lookalikes_are_told_apart():
    table, _ = build_leaderboard("mevis", results="/nonexistent-store")
    rem = table[(table["model"] == "REM") & (table["variant"] == "Wan-14B")]
    assert sorted(rem["J&F"] * 100) == pytest.approx([57.6, 60.3])
    assert rem["training_data"].nunique() == 2
    vdit, _ = build_leaderboard("ref-ytvos", results="/nonexistent-store")
    vdit = vdit[vdit["model"] == "VD-IT"]
    assert vdit["training_data"].nunique() == len(vdit) == 2
    davis, _ = build_leaderboard("ref-davis", setting="standard", results="/nonexistent-store")
    assert (davis["J&F"] == 0.611).sum() == 1  # ReferFormer 61.1 once, citing three papers
    assert davis.loc[davis["J&F"] == 0.611, "reference"].iloc[0].count("Table") == 3


def test_settings_and_splits_are_ranked_apart(sample_runs, tmp_path):
    table, _ = build_leaderboard("ref-davis", results=tmp_path / "none")
    for (setting, split), rows in table.groupby(["setting", "split"]):
        assert list(rows["rank"]) == sorted(rows["rank"]) and rows["rank"].iloc[0] == 1
    assert set(table["split"]) == {"val"}
    assert list(table["setting"].drop_duplicates()) == ["standard", "zero-shot",
                                                        "trained-on-target", "24fps"]
    zero, _ = build_leaderboard(setting="zero-shot", results=tmp_path / "none")
    assert set(zero["setting"]) == {"zero-shot"} and set(zero["model"]) == {
        "ReferFormer", "LMPM", "DsHmp", "SOLA"}
    # a local MeViS run on valid_u never shares a ranking with the online valid split
    from refvps.report.run import load_run

    run = _result_of(load_run(sample_runs["shifted"]))
    run.summary.update(benchmark="mevis", split="valid_u")
    save_record(run, tmp_path / "store")
    mevis, _ = build_leaderboard("mevis", results=tmp_path / "store")
    local = mevis[mevis["source"] == "local"]
    assert list(local["split"]) == ["valid_u"] and list(local["rank"]) == [1]
    assert (mevis.loc[mevis["source"] == "published", "split"] == "valid").all()


def test_local_runs_deduplicated_latest_kept(sample, sample_runs, tmp_path):
    import shutil

    from refvps.report.run import load_run

    store = tmp_path / "store"
    def rerun(created):  # the same predictions scored again later
        result = _result_of(load_run(sample_runs["shifted"]))
        result.summary["created"] = created
        return result

    first = save_record(rerun("2030-01-01T10:00:00+00:00"), store)
    second = save_record(rerun("2030-01-01T10:05:00+00:00"), store)
    assert first.predictions_digest == second.predictions_digest != ""
    table, _ = build_leaderboard("ref-vps", published=False, results=store)
    assert list(table["reference"]) == [second.run_id]
    # other predictions (one mask changed) on the same data: another row
    copy = tmp_path / "preds"
    shutil.copytree(sample.predictions["shifted"], copy)
    mask = sorted(copy.rglob("*.png"))[0]
    mask.write_bytes(mask.read_bytes() + b"\0")
    run = rerun("2030-01-01T10:10:00+00:00")
    run.summary["predictions"] = str(copy)
    third = save_record(run, store)
    assert third.predictions_digest != second.predictions_digest
    table, _ = build_leaderboard("ref-vps", published=False, results=store)
    assert sorted(table["reference"]) == sorted([second.run_id, third.run_id])
    # the history stays in `refvps runs`
    result = CliRunner().invoke(main, ["runs", "--results", str(store)])
    assert result.output.count("  shifted  ") == 3
    assert f"{first.run_id}  ref-vps/test  shifted" in result.output
    assert f"(superseded by {second.run_id})" in result.output


def test_messages_name_only_the_filters_given(tmp_path):
    store = tmp_path / "none"
    result = CliRunner().invoke(main, ["leaderboard", "-b", "burst", "--setting", "zero-shot",
                                       "--results", str(store)])
    assert result.exit_code == 0 and "no published results for burst setting zero-shot" in \
        result.output
    assert "--no-published" not in result.output
    result = CliRunner().invoke(main, ["leaderboard", "-b", "burst", "--no-published",
                                       "--results", str(store)])
    assert "no local runs for burst" in result.output and "drop --no-published" in result.output
    result = CliRunner().invoke(main, ["leaderboard", "-b", "burst", "--results", str(store)])
    assert result.output.count("REM Table 3") == 5


@pytest.mark.parametrize("flags", [["--csv", "--json"], ["--csv", "--markdown"],
                                   ["--markdown", "--json"]])
def test_conflicting_formats_are_refused(flags, tmp_path):
    result = CliRunner().invoke(main, ["leaderboard", *flags, "--results", str(tmp_path)])
    assert result.exit_code == 2
    assert "exclude each other" in result.output and result.stdout.count("\n") <= 3


def test_cli_csv_is_clean_and_reads_back(sample_runs, tmp_path):
    from refvps.report.run import load_run

    store = tmp_path / "store"
    save_record(_result_of(load_run(sample_runs["shifted"])), store)
    bad = _write_bad(store, "zz-bad", "not json")
    result = CliRunner().invoke(main, ["leaderboard", "--csv", "--results", str(store)])
    assert result.exit_code == 0, result.output
    table = pd.read_csv(io.StringIO(result.stdout))
    assert set(table["source"]) == {"local", "published"}
    assert {"rank", "benchmark", "model", "J", "J&F", "F", "reference", "provenance"} <= set(
        table.columns)
    local = table[table["source"] == "local"]
    assert list(local["model"]) == ["shifted"] and local["benchmark"].iloc[0] == "ref-vps"
    assert str(bad) in result.stderr and str(bad) not in result.stdout

    result = CliRunner().invoke(main, ["leaderboard", "--json", "--no-published", "-b", "ref-vps",
                                       "--results", str(store)])
    rows = json.loads(result.stdout)
    assert [r["model"] for r in rows] == ["shifted"]
    assert rows[0]["J"] == load_run(sample_runs["shifted"]).summary["metrics"]["J"]

    result = CliRunner().invoke(main, ["leaderboard", "--markdown", "-b", "ref-davis",
                                       "--results", str(store)])
    lines = result.stdout.strip().splitlines()
    assert lines[0].startswith("| rank | benchmark |") and set(lines[1]) <= {"|", "-"}
    assert len(lines) == 2 + len(published_rows().query("benchmark == 'ref-davis'"))
    assert "provenance" not in lines[0]
    wide = CliRunner().invoke(main, ["leaderboard", "--markdown", "--wide", "-b", "ref-davis",
                                     "--results", str(store)]).stdout
    assert "| provenance |" in wide.splitlines()[0]
