"""Subprocess worker mode: protocol, a worker kept alive, crash recovery, out-of-memory backoff."""
from __future__ import annotations

import json
import sys

import numpy as np
import pytest

from refvps.baselines.protocol import ModelLoadError
from refvps.baselines.runner import predict
from refvps.baselines.subprocess_mode import SubprocessSegmenter
from refvps.baselines.worker import read_masks, write_masks
from refvps.loaders import load_benchmark


def _events(log):
    return [json.loads(line) for line in log.read_text().splitlines()]


def test_masks_round_trip_through_packed_npz(tmp_path):
    masks = np.random.default_rng(0).random((3, 5, 13)) > 0.5  # width not a multiple of 8
    write_masks(str(tmp_path / "m.npz"), masks)
    assert np.array_equal(read_masks(str(tmp_path / "m.npz")), masks)


def test_worker_matches_in_process_and_stays_alive(small_root, tmp_path, standins):
    bench = load_benchmark("ref-vps", small_root)
    log = tmp_path / "log.jsonl"
    report = predict("refvps_standins:Crasher", bench, tmp_path / "w",
                     model_args={"python": sys.executable, "log": str(log)}, progress=False)
    assert len(report.finished) == 12 and not report.failures
    loads = [e for e in _events(log) if e["event"] == "load"]
    pids = {e["pid"] for e in _events(log)}
    assert len(loads) == 1 and len(pids) == 1  # one worker served every query
    assert report.finished[0]["mem_kind"] == "rss_process_peak"
    predict("refvps_standins:Crasher", bench, tmp_path / "l", progress=False)
    for png in (tmp_path / "l").glob("*/*/*.png"):
        assert png.read_bytes() == (tmp_path / "w" / png.relative_to(tmp_path / "l")).read_bytes()


def test_worker_crash_is_survived_by_restarting(small_root, tmp_path, standins):
    bench = load_benchmark("ref-vps", small_root)
    second = bench.tasks()[1].video
    log = tmp_path / "log.jsonl"
    report = predict("refvps_standins:Crasher", bench, tmp_path / "p",
                     model_args={"python": sys.executable, "log": str(log), "video": second,
                                 "mode": "once", "flag": str(tmp_path / "crashed")},
                     progress=False)
    assert len(report.finished) == 12 and not report.failures  # the crashed query was retried
    loads = [e for e in _events(log) if e["event"] == "load"]
    assert len(loads) == 2 and loads[0]["pid"] != loads[1]["pid"]


def test_a_query_that_always_kills_the_worker_fails_alone(small_root, tmp_path, standins):
    bench = load_benchmark("ref-vps", small_root)
    bad = bench.tasks()[0].video
    report = predict("refvps_standins:Crasher", bench, tmp_path / "p",
                     model_args={"python": sys.executable, "video": bad}, progress=False)
    assert sorted(f["unit"] for f in report.failures) == [f"{bad}/{k}" for k in range(4)]
    assert all("WorkerCrashed" in f["error"] and "code 3" in f["error"] for f in report.failures)
    assert len(report.finished) == 8


def test_out_of_memory_in_the_worker_backs_off(small_root, tmp_path, standins):
    bench = load_benchmark("ref-vps", small_root)
    log = tmp_path / "log.jsonl"
    report = predict("refvps_standins:OOMAbove", bench, tmp_path / "p",
                     model_args={"python": sys.executable, "clip_len": "32", "limit": "10",
                                 "log": str(log)}, progress=False)
    assert not report.failures
    assert {(r["clip_len"], r["oom_retries"]) for r in report.finished} == {(8, 2)}
    assert [e["clip_len"] for e in _events(log)][:6] == [32, 16, 8, 32, 16, 8]


def test_worker_errors_and_direct_frames(tmp_path, standins):
    frames = [np.full((6, 8, 3), 100, np.uint8)] * 3
    with SubprocessSegmenter("center-box", sys.executable, {"frac": "0.5"}) as model:
        masks = model.predict(frames, "anything")  # frames sent as lossless PNGs
        assert masks.shape == (3, 6, 8) and masks[:, 2:5, 2:6].all() and masks.sum() == 3 * 12
        assert model.info().params == {"frac": 0.5} and model.hello["protocol"] == 1
    with SubprocessSegmenter("center-box", sys.executable, {"frac": "2"}) as model:
        with pytest.raises(Exception, match="frac must lie in"):
            model.predict(frames, "x")
    with SubprocessSegmenter("no-such-model", sys.executable) as model:
        with pytest.raises(ModelLoadError, match="could not be loaded: .*unknown model"):
            model.predict(frames, "x")
    broken = SubprocessSegmenter("center-box", sys.executable)
    broken.python = "/bin/false"
    with pytest.raises(ModelLoadError, match="exited with code 1") as first:
        broken.predict(frames, "x")
    with pytest.raises(ModelLoadError) as again:  # remembered, not retried
        broken.predict(frames, "x")
    assert again.value is first.value and broken.proc is None


def test_models_check_through_a_worker(tmp_path, standins):
    from click.testing import CliRunner

    from refvps.cli import main

    result = CliRunner().invoke(main, ["models", "--check", "rem-ms", "--model-arg",
                                       f"python={sys.executable}", "--model-arg",
                                       f"repo={tmp_path}/nowhere"])
    assert result.exit_code == 1
    assert f"[ok] python {sys.executable}" in result.output
    assert "[MISSING] repo" in result.output and "[MISSING] checkpoint" in result.output
