import json
import os
import time

import pytest
from click.testing import CliRunner

from refvps.cli import main
from refvps.errors import RefvpsError
from refvps.evaluation import evaluate
from refvps.leaderboard import list_records, resolve_run, results_root, save_record
from refvps.leaderboard.records import RECORD_FILE, RUNS_DIR


def test_results_root_precedence(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    monkeypatch.delenv("REFVPS_RESULTS")
    assert results_root() == tmp_path / "xdg" / "refvps" / "results"
    monkeypatch.setenv("REFVPS_RESULTS", str(tmp_path / "env"))
    assert results_root() == tmp_path / "env"
    assert results_root(tmp_path / "flag") == tmp_path / "flag"


def test_record_keeps_outputs_in_the_store(sample, tmp_path):
    result = evaluate(sample.predictions["shifted"], "ref-vps", sample.root, workers=1,
                      progress=False)
    record = save_record(result, tmp_path / "store")
    saved = json.loads(record.path.read_text())
    assert record.path.parent.parent == tmp_path / "store" / RUNS_DIR
    assert saved["name"] == "shifted"  # the predictions folder name
    assert saved["benchmark"] == "ref-vps" and saved["split"] == "test"
    assert saved["data_fingerprint"] == result.summary["data_fingerprint"]
    assert len(saved["data_fingerprint"]) == 64
    assert saved["metrics"]["J"] == pytest.approx(result.metrics["J"])
    assert saved["refvps_version"] and saved["created"] and saved["protocol"]
    assert os.path.isfile(saved["frames_table"])
    assert os.path.dirname(saved["frames_table"]) == str(record.path.parent)
    assert (record.path.parent / "summary.json").is_file()


def test_record_points_at_out_when_given(sample, tmp_path):
    result = evaluate(sample.predictions["empty"], "ref-vps", sample.root, workers=1,
                      progress=False, out=tmp_path / "out", name="my model")
    record = save_record(result, tmp_path / "store")
    assert record.name == "my model"
    assert record.outputs == str((tmp_path / "out").resolve())
    assert sorted(p.name for p in record.path.parent.iterdir()) == [RECORD_FILE]


def _write_bad(store, name, text):
    folder = store / RUNS_DIR / name
    folder.mkdir(parents=True)
    (folder / RECORD_FILE).write_text(text)
    return folder / RECORD_FILE


def test_corrupt_records_are_reported_not_fatal(sample_runs, tmp_path):
    store = tmp_path / "store"
    from refvps.report.run import load_run

    good = save_record(_result_of(load_run(sample_runs["perfect"])), store)
    bad = [_write_bad(store, "a-truncated", '{"run_id": "x", "name"'),
           _write_bad(store, "b-missing-keys", '{"run_id": "x"}'),
           _write_bad(store, "c-list", "[1, 2]")]
    records, warnings = list_records(store)
    assert [r.run_id for r in records] == [good.run_id]
    assert len(warnings) == 3
    for path, line in zip(bad, warnings):
        assert str(path) in line
    assert "missing key(s)" in warnings[1]
    result = CliRunner().invoke(main, ["runs", "--results", str(store)])
    assert result.exit_code == 0, result.output
    assert good.run_id in result.stdout
    assert str(bad[0]) in result.stderr


def test_record_write_is_atomic(sample_runs, tmp_path, monkeypatch):
    from refvps.report.run import load_run

    from refvps.faults import InjectedFault

    monkeypatch.setenv("REFVPS_FAULT", "output.staged:raise")  # files written, not yet renamed
    with pytest.raises(InjectedFault):
        save_record(_result_of(load_run(sample_runs["perfect"])), tmp_path / "store")
    assert not list((tmp_path / "store").rglob(RECORD_FILE))  # no half-written record
    assert list_records(tmp_path / "store") == ([], [])
    assert not [p for p in (tmp_path / "store").rglob("*") if p.name != "runs"]  # no debris


def test_resolve_run(sample_runs, tmp_path):
    from refvps.report.run import load_run

    store = tmp_path / "store"
    first = save_record(_result_of(load_run(sample_runs["perfect"])), store)
    second = save_record(_result_of(load_run(sample_runs["shifted"])), store)
    assert resolve_run(sample_runs["perfect"], store) == sample_runs["perfect"]
    assert resolve_run(first.run_id, store) == sample_runs["perfect"].resolve()
    assert resolve_run(second.run_id[:-2], store) == sample_runs["shifted"].resolve()
    assert resolve_run("shifted", store) == sample_runs["shifted"].resolve()
    assert resolve_run(first.path.parent, store) == sample_runs["perfect"].resolve()
    with pytest.raises(RefvpsError, match="no run 'nope'"):
        resolve_run("nope", store)


def test_cli_eval_records_unless_told_not_to(sample, tmp_path):
    store = tmp_path / "store"
    args = ["eval", "--data", str(sample.root), "--preds", str(sample.predictions["shifted"]),
            "-j", "1", "--no-progress", "--results", str(store)]
    result = CliRunner().invoke(main, args + ["--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["name"] == "shifted"  # stdout stays pure JSON
    records, _ = list_records(store)
    assert len(records) == 1 and (tmp_path / "store" / RUNS_DIR / records[0].run_id /
                                  "frames.csv").is_file()
    result = CliRunner().invoke(main, args + ["--no-record"])
    assert result.exit_code == 0, result.output
    assert len(list_records(store)[0]) == 1


def _result_of(run):
    from refvps.evaluation import EvalResult

    summary = dict(run.summary)
    summary.pop("files", None)
    summary["files"] = {k: str(run.folder.resolve() / name) for k, name in
                        (("frames", "frames.csv"), ("summary", "summary.json"))}
    return EvalResult(summary, run.frames, run.units, run.tables)


def test_runs_recorded_in_the_same_second_keep_their_order():
    """Run ids carry milliseconds, so two runs recorded within one second list oldest first
    whatever their names (the name comes after the time in the id)."""
    from refvps.leaderboard import records

    ids = []
    for name in ("zeta", "alpha"):  # recorded in this order, names sorting the other way
        ids.append(records.new_run_id(name, "ref-vps"))
        time.sleep(0.002)
    assert ids[0][:19] < ids[1][:19]  # the time parts alone order them
    assert sorted(ids, key=lambda i: ("2026-01-01T00:00:00+00:00", i)) == ids
