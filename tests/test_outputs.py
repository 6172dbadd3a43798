"""`--out` is all or nothing: checked before scoring, written as one set under a lock.

Real `refvps eval` processes are SIGKILLed at every step of the write (named fault points, see
refvps/faults.py) and at random moments; after each, the output folder must hold exactly the
previous run's files or exactly the new run's, never a mix, a stray temporary or a lone table.
"""
from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from refvps.evaluation import evaluate, output_folder
from refvps.faults import InjectedFault
from refvps.fileio import OutputFolder
from refvps.locks import ProcessLock
from tests.refvps_fixture import build_refvps, write_predictions

ENV = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """A dataset, two prediction sets A and B, and the output folder each gives on its own."""
    root = tmp_path_factory.mktemp("outputs")
    build_refvps(root / "data")
    preds = {"A": write_predictions(root / "preds-a", dx=0),
             "B": write_predictions(root / "preds-b", dx=3)}
    for name, folder in preds.items():
        evaluate(folder, "ref-vps", root / "data", workers=1, progress=False, name=name,
                 out=root / f"ref-{name}")
    return root, preds, {name: state(root / f"ref-{name}") for name in preds}


def state(out: Path):
    """What a reader finds in ``out``: None, or (run name, {file: bytes}) after checking that
    the folder holds exactly the files its summary lists (nothing stale, nothing temporary)."""
    if not out.exists():
        return None
    summary = json.loads((out / "summary.json").read_text())
    listed = {Path(p).name for p in summary["files"].values()}
    assert sorted(os.listdir(out)) == sorted(listed), (sorted(os.listdir(out)), listed)
    assert all(Path(p).parent == out.resolve() for p in summary["files"].values())
    tables = {name: (out / name).read_bytes() for name in listed if name != "summary.json"}
    return summary["name"], tables


def _eval(root: Path, preds: Path, out: Path, name: str, fault: str | None = None, **popen):
    env = dict(ENV, REFVPS_FAULT=fault) if fault else ENV
    return subprocess.Popen([sys.executable, "-m", "refvps", "eval", "--data", str(root / "data"),
                             "--preds", str(preds), "--out", str(out), "--name", name,
                             "--no-progress", "--no-record"], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, **popen)


REPLACE_POINTS = ["eval.wrote:frames.csv", "output.staged", "output.exchanged",
                  "output.committed"]
FRESH_POINTS = ["output.staged", "output.renamed"]


@pytest.mark.parametrize("scenario, point",
                         [("replace", p) for p in REPLACE_POINTS]
                         + [("fresh", p) for p in FRESH_POINTS])
def test_a_kill_at_any_step_leaves_the_old_set_or_the_new(runs, tmp_path, scenario, point):
    root, preds, expected = runs
    out = tmp_path / "out"
    if scenario == "replace":
        shutil.copytree(root / "ref-A", out)
        # the copy's summary names its own folder, as a run written there would
        summary = json.loads((out / "summary.json").read_text())
        summary["files"] = {k: str(out / Path(v).name) for k, v in summary["files"].items()}
        (out / "summary.json").write_text(json.dumps(summary))
    proc = _eval(root, preds["B"], out, "B", fault=f"{point}:kill")
    proc.communicate(timeout=120)
    assert proc.returncode == -signal.SIGKILL, point
    after = state(out)
    before = expected["A"] if scenario == "replace" else None
    assert after in (before, expected["B"]), point
    if point.startswith("eval.") or point == "output.staged":
        assert after == before  # nothing was renamed yet
    if point == "output.committed":
        assert after == expected["B"]
    # the next writer of that folder finds it as the kill left it, and tidies the rest
    with output_folder(out):
        assert state(out) == after
    assert sorted(p.name for p in tmp_path.iterdir()) == (["out"] if after else [])


def test_random_kills_leave_the_old_set_or_the_new(runs, tmp_path):
    root, preds, expected = runs
    out = tmp_path / "out"
    for delay in (0.5, 1.5, 2.5, 3.5):
        previous = state(out)
        name = "A" if previous is None or previous[0] == "B" else "B"
        proc = _eval(root, preds[name], out, name)
        time.sleep(delay)
        proc.send_signal(signal.SIGKILL)
        proc.communicate(timeout=120)
        assert state(out) in (previous, expected[name]), delay


@pytest.mark.parametrize("exchange", [True, False], ids=["exchange", "two-renames"])
def test_an_exception_at_each_commit_step(runs, tmp_path, monkeypatch, exchange):
    """In process, including the two-rename replacement used where no atomic exchange exists."""
    root, preds, expected = runs
    if not exchange:
        monkeypatch.setattr("refvps.fileio.exchange_paths", lambda a, b: False)
    points = ["output.staged", "output.exchanged" if exchange else "output.moved-aside",
              "output.renamed", "output.committed"]
    for point in points:
        out = tmp_path / point
        evaluate(preds["A"], "ref-vps", root / "data", workers=1, progress=False, name="A",
                 out=out)
        monkeypatch.setenv("REFVPS_FAULT", f"{point}:raise")
        try:
            evaluate(preds["B"], "ref-vps", root / "data", workers=1, progress=False,
                     name="B", out=out)
        except InjectedFault:
            pass
        monkeypatch.delenv("REFVPS_FAULT")
        assert state(out) in (expected["A"], expected["B"]), point
        if point in ("output.staged", "output.moved-aside"):  # put back by the writer itself
            assert state(out) == expected["A"], point
        assert not [p for p in tmp_path.iterdir() if p.name.startswith(f".{point}")
                    and any(p.glob("stage-*"))], point


def _clean_error(proc_or_run, *needles):
    assert proc_or_run.returncode == 2, proc_or_run.stderr
    for needle in needles:
        assert needle in proc_or_run.stderr, proc_or_run.stderr
    assert "Traceback" not in proc_or_run.stderr


def _run(root, preds, out, *extra):
    return subprocess.run([sys.executable, "-m", "refvps", "eval", "--data", str(root / "data"),
                           "--preds", str(preds), "--out", str(out), "--no-progress", *extra],
                          env=ENV, capture_output=True, text=True, timeout=120)


def test_out_is_checked_before_scoring(runs, tmp_path):
    root, _, _ = runs
    empty_preds = tmp_path / "no-predictions"  # scoring these would report missing files
    empty_preds.mkdir()
    (tmp_path / "a-file").write_text("x")
    cases = {tmp_path / "a-file" / "sub": "is a file, not a folder",
             tmp_path / "a-file": "is a file"}  # (click's own check)
    foreign = tmp_path / "my-notes"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("mine")
    cases[foreign] = "refvps did not write there (notes.txt)"
    for out, message in cases.items():
        run = _run(root, empty_preds, out, "--no-record")
        _clean_error(run, str(out), message)
        assert "missing" not in run.stderr  # refused before the predictions were looked at
    # a usable --out, but the predictions fail: no folder is left behind, not even its parents
    run = _run(root, empty_preds, tmp_path / "new" / "deeper" / "out", "--no-record")
    _clean_error(run, "missing")
    assert (foreign / "notes.txt").read_text() == "mine"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a-file", "my-notes", "no-predictions"]


@pytest.fixture
def read_only_folder(tmp_path):
    """A folder on a read-only filesystem (a tmpfs mounted ro), or one without write permission
    when this process may not mount (and is not root, for whom permissions do not apply)."""
    folder = tmp_path / "ro"
    folder.mkdir()
    mounted = False
    if shutil.which("mount"):
        mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "ro,size=1m", "tmpfs", str(folder)],
                                 capture_output=True).returncode == 0
    if not mounted:
        if os.geteuid() == 0:
            pytest.skip("root without permission to mount: no way to make a folder unwritable")
        folder.chmod(0o555)
    yield folder
    if mounted:
        subprocess.run(["umount", str(folder)], check=True)
    else:
        folder.chmod(0o755)


def test_a_read_only_out_or_store_fails_before_scoring(runs, tmp_path, read_only_folder):
    root, preds, _ = runs
    empty_preds = tmp_path / "no-predictions"
    empty_preds.mkdir()
    run = _run(root, empty_preds, read_only_folder / "out", "--no-record")
    _clean_error(run, "cannot write there")
    assert "missing" not in run.stderr
    run = _run(root, empty_preds, tmp_path / "out", "--results", str(read_only_folder / "store"))
    _clean_error(run, "results store", "cannot write there")
    assert "missing" not in run.stderr and not (tmp_path / "out").exists()


def test_stale_tables_never_stay_beside_new_ones(runs, tmp_path):
    root, preds, expected = runs
    out = tmp_path / "out"
    evaluate(preds["A"], "ref-vps", root / "data", workers=1, progress=False, name="A", out=out)
    summary = json.loads((out / "summary.json").read_text())
    summary["files"]["old_breakdown"] = str(out / "old_breakdown.csv")  # from an older version
    (out / "summary.json").write_text(json.dumps(summary))
    (out / "old_breakdown.csv").write_text("stale\n")
    evaluate(preds["B"], "ref-vps", root / "data", workers=1, progress=False, name="B", out=out)
    assert state(out) == expected["B"] and not (out / "old_breakdown.csv").exists()


def test_a_second_eval_on_the_same_out_is_refused_naming_the_holder(runs, tmp_path):
    root, preds, _ = runs
    out = tmp_path / "out"
    with OutputFolder(out) as held:
        run = _run(root, preds["B"], out, "--no-record")
        _clean_error(run, f"pid {os.getpid()}", "in use")
        assert held.staging.is_dir()
    assert not out.exists()


def test_two_concurrent_evals_never_mix(runs, tmp_path):
    root, preds, expected = runs
    out = tmp_path / "out"
    procs = {name: _eval(root, preds[name], out, name) for name in ("A", "B")}
    results = {name: proc.communicate(timeout=120) + (proc.returncode,)
               for name, proc in procs.items()}
    for name, (_, stderr, code) in results.items():
        assert code == 0 or (code == 2 and b"in use by pid" in stderr), stderr.decode()
    assert any(code == 0 for _, _, code in results.values())
    assert state(out) in (expected["A"], expected["B"])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_lock_holder_is_named_and_released(tmp_path):
    lock = ProcessLock(tmp_path / "lock", purpose="testing")
    with lock:
        assert lock.read_holder()["pid"] == os.getpid()
        assert lock.read_holder()["purpose"] == "testing"
    assert lock.read_holder() == {}


def test_the_next_writer_puts_back_a_folder_left_aside_by_a_kill(runs, tmp_path):
    """What a writer SIGKILLed between the two renames leaves (where no atomic exchange
    exists): the folder moved into the sibling, the new one staged beside it."""
    root, preds, expected = runs
    out = tmp_path / "out"
    evaluate(preds["A"], "ref-vps", root / "data", workers=1, progress=False, name="A", out=out)
    side = tmp_path / ".out.refvps"
    (side / "stage-1-dead").mkdir(parents=True)
    (side / "stage-1-dead" / "frames.csv").write_text("half")
    out.rename(side / "old-1-dead")
    with output_folder(out):
        assert state(out) == expected["A"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]
