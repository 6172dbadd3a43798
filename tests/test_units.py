"""One unit convention across eval, runs, report, compare and leaderboard: fractions by default,
--percent everywhere for the papers' convention."""
import json

import pytest
from click.testing import CliRunner

from refvps.cli import main
from refvps.units import is_score, scale_metrics


def _run(*args):
    result = CliRunner().invoke(main, [str(a) for a in args])
    assert result.exit_code == 0, result.output
    return result.stdout


def test_scores_and_counts():
    assert all(map(is_score, ("J", "F", "J&F", "TC", "J_recall", "F_decay", "empty_pred_rate")))
    assert not any(map(is_score, ("TC_units", "n_classes", "objects_per_run", "swapped", "rank")))
    assert scale_metrics({"J": 0.5, "TC_units": 40, "prediction_layout": "standard"}, True) == \
        {"J": 50.0, "TC_units": 40, "prediction_layout": "standard"}


def test_one_unit_convention_across_commands(sample, tmp_path):
    store = tmp_path / "store"
    common = ["--data", sample.root, "--results", store, "--no-progress", "-j", "1"]
    shifted = json.loads(_run("eval", "--preds", sample.predictions["shifted"], "--json",
                              *common))
    j = shifted["metrics"]["J"]
    assert 0.5 < j < 0.9 and shifted["metrics"]["TC_units"] == 40
    shown = json.loads(_run("eval", "--preds", sample.predictions["shifted"], "--json",
                            "--percent", "--no-record", *common))
    assert shown["metrics"]["J"] == pytest.approx(100 * j) and shown["metrics"]["TC_units"] == 40
    assert f"J      {j:.4f}" in _run("eval", "--preds", sample.predictions["shifted"],
                                      "--no-record", *common)
    _run("eval", "--preds", sample.predictions["perfect"], *common)

    assert f"J {j:.4f}" in _run("runs", "--results", store)
    assert f"J {100 * j:.2f}" in _run("runs", "--results", store, "--percent")
    rows = json.loads(_run("runs", "--results", store, "--json", "--percent"))
    assert rows[0]["metrics"]["J"] == pytest.approx(100 * j)

    board = json.loads(_run("leaderboard", "-b", "ref-vps", "--json", "--results", store))
    local = {r["model"]: r for r in board if r["source"] == "local"}
    rem = [r for r in board if r["model"] == "REM" and r["variant"] == "Wan-14B"]
    assert local["shifted"]["J"] == pytest.approx(j) and rem[0]["J"] == pytest.approx(0.5)
    board = json.loads(_run("leaderboard", "-b", "ref-vps", "--json", "--percent", "--results",
                            store))
    local = {r["model"]: r for r in board if r["source"] == "local"}
    rem = [r for r in board if r["model"] == "REM" and r["variant"] == "Wan-14B"]
    assert local["shifted"]["J"] == pytest.approx(100 * j) and rem[0]["J"] == 50.0
    # our TC and REM's "Temp. Con." (percent points, lower is better) on one scale
    assert local["shifted"]["TC"] == pytest.approx(100 * shifted["metrics"]["TC"])

    text = _run("report", "shifted", "--results", store, "--no-dynamics", "--no-gallery",
                "--boot", "50", "--out", tmp_path / "rep")
    assert f"J      {j:.4f}  95% CI" in text
    text = _run("report", "shifted", "--results", store, "--no-dynamics", "--no-gallery",
                "--boot", "50", "--out", tmp_path / "rep", "--percent")
    assert f"J      {100 * j:.2f}  95% CI" in text

    plain = json.loads(_run("compare", "perfect", "shifted", "--results", store, "--json",
                            "--boot", "50"))
    percent = json.loads(_run("compare", "perfect", "shifted", "--results", store, "--json",
                              "--boot", "50", "--percent"))
    row = {r["metric"]: r for r in plain["metrics"]}["J"]
    row_pc = {r["metric"]: r for r in percent["metrics"]}["J"]
    assert row["A"] == 1.0 and row["B"] == pytest.approx(j)
    assert row_pc["A"] == 100.0 and row_pc["diff"] == pytest.approx(100 * row["diff"])
    assert row_pc["p_value"] == row["p_value"]
    assert plain["unit"] == "fraction" and percent["unit"] == "percent"
