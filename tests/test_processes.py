"""Real `refvps eval` processes with worker pools: started from an awkward folder, and killed.

These run the installed ``refvps`` console script (what a user runs), never a stand-in.
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

from tests.heavy_refvps import build_heavy

psutil = pytest.importorskip("psutil", reason="psutil is a dev dependency (pip install -e .[dev])")


def _refvps_command() -> list[str]:
    script = Path(sys.executable).parent / "refvps"
    if script.is_file():
        return [str(script)]
    found = shutil.which("refvps")
    if found is None:
        pytest.skip("the refvps console script is not installed (pip install -e .)")
    return [found]


def test_workers_do_not_import_from_the_current_folder(heavy, tmp_path):
    """A folder named refvps in the current folder (e.g. the parent of a clone) is not refvps.
    (The heavy dataset: a pool starts only for a job that is not small.)"""
    data, preds = heavy
    cwd = tmp_path / "parent-of-a-clone"
    (cwd / "refvps").mkdir(parents=True)
    scores = {}
    for workers in ("1", "2"):
        run = subprocess.run(_refvps_command() + [
            "eval", "--data", str(data), "--preds", str(preds), "-j", workers,
            "--json", "--no-record", "--no-progress"], cwd=cwd, capture_output=True, text=True,
            timeout=300)
        assert run.returncode == 0, run.stderr
        scores[workers] = json.loads(run.stdout)["metrics"]
    assert scores["2"] == scores["1"]


def _wait_for_workers(proc: subprocess.Popen, workers: int, timeout: float = 120) -> list:
    """The eval's descendants, once its pool's workers are running."""
    main = psutil.Process(proc.pid)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, proc.stderr.read().decode()
        children = main.children(recursive=True)
        pool = [c for c in children if _is_worker(c)]
        if len(pool) >= workers:
            time.sleep(0.5)  # let them get into their first task
            return main.children(recursive=True)
        time.sleep(0.05)
    raise AssertionError("the pool never started")


def _is_worker(process) -> bool:
    try:
        return process.parent() is not None and process.parent().pid != os.getpid() \
            and "forkserver" in " ".join(process.parent().cmdline())
    except psutil.Error:
        return False


def _start_eval(data: Path, preds: Path, out: Path, workers: int) -> subprocess.Popen:
    """A real `refvps eval` in a session of its own: a signal sent to it reaches the eval only,
    not its workers."""
    return subprocess.Popen(_refvps_command() + [
        "eval", "--data", str(data), "--preds", str(preds), "-j", str(workers), "--no-record",
        "--no-progress", "--out", str(out)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        start_new_session=True)


def _kill_leftovers(proc: subprocess.Popen, descendants: list) -> None:
    """Whatever a failed test left running: the eval and every process it started."""
    for process in [*descendants, psutil.Process(proc.pid)] if proc.poll() is None \
            else descendants:
        try:
            process.kill()
        except psutil.Error:
            pass


@pytest.fixture(scope="module")
def heavy(tmp_path_factory):
    return build_heavy(tmp_path_factory.mktemp("heavy"))


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM, signal.SIGKILL],
                         ids=["SIGINT", "SIGTERM", "SIGKILL"])
def test_killing_eval_ends_its_workers(heavy, tmp_path, signum):
    data, preds = heavy
    out = tmp_path / "out"
    proc = _start_eval(data, preds, out, workers=3)
    descendants = []
    try:
        descendants = _wait_for_workers(proc, workers=2)  # -j 3: the eval and two pool workers
        assert len(descendants) >= 3  # fork server and two workers (and a resource tracker)
        os.kill(proc.pid, signum)
        started = time.monotonic()
        stdout, stderr = proc.communicate(timeout=15)  # returns once nobody holds the pipes
        elapsed = time.monotonic() - started
        gone, alive = psutil.wait_procs(descendants, timeout=10)
        assert not alive, [p.cmdline() for p in alive]
        assert elapsed < 10
    finally:
        _kill_leftovers(proc, descendants)
    assert proc.returncode == (-signum if signum == signal.SIGKILL else 128 + signum)
    assert not out.exists()  # nothing half-written where the outputs go
    if signum != signal.SIGKILL:  # clean-ups ran: no staging folder left beside it either
        assert not list(tmp_path.glob(".out*")), list(tmp_path.iterdir())
        assert b"Traceback" not in stderr, stderr.decode()


def test_a_worker_killed_mid_scoring_is_an_error_not_a_hang(heavy, tmp_path):
    """A pool worker that dies while scoring (the kernel's OOM killer, say): the eval stops
    with the message naming it, exit 2, no traceback, no output written, no process left."""
    data, preds = heavy
    out = tmp_path / "out"
    proc = _start_eval(data, preds, out, workers=2)
    descendants = []
    try:
        descendants = _wait_for_workers(proc, workers=1)
        worker = next(p for p in descendants if _is_worker(p))
        worker.kill()
        stdout, stderr = proc.communicate(timeout=30)
        gone, alive = psutil.wait_procs(descendants, timeout=10)
        assert not alive, [p.cmdline() for p in alive]
    finally:
        _kill_leftovers(proc, descendants)
    assert proc.returncode == 2, stderr.decode()
    assert b"a worker process of the evaluation pool died" in stderr, stderr.decode()
    assert b"Traceback" not in stderr, stderr.decode()
    assert not out.exists()
