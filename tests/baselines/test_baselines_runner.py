"""refvps predict / run with reference and stand-in segmenters on the sample benchmark."""
from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from refvps.baselines.reference import center_box
from refvps.baselines.runner import ModelSpec, parse_shard, predict, shard_of
from refvps.cli import main
from refvps.evaluation import evaluate
from refvps.loaders import load_benchmark


def _meta(sample_root):
    return json.loads((sample_root / "ref-vps" / "meta_expressions.json").read_text())["videos"]


def test_oracle_predict_then_eval_scores_one_and_writes_every_24fps_frame(sample_root, tmp_path):
    out = tmp_path / "oracle"
    result = CliRunner().invoke(main, ["predict", "--model", "oracle", "--data", str(sample_root),
                                       "--out", str(out), "--no-progress"])
    assert result.exit_code == 0, result.output
    meta = _meta(sample_root)
    for clip, record in meta.items():
        for exp_id in record["expressions"]:
            names = sorted(p.stem for p in (out / clip / exp_id).glob("*.png"))
            assert names == record["frames"]  # all 24 fps frames, not only the 6 fps ones
            assert (out / clip / exp_id / ".done.json").is_file()
    image = Image.open(next((out / "clip").parent.glob("*/0/00000.png")))
    assert image.mode == "L" and set(np.unique(np.array(image))) <= {0, 255}
    result = CliRunner().invoke(main, ["eval", "--data", str(sample_root), "--preds", str(out),
                                       "--json", "--no-progress", "-j", "1"])
    assert result.exit_code == 0, result.output
    metrics = json.loads(result.output)["metrics"]
    assert metrics["J"] == 1.0 and metrics["F"] == 1.0
    runtime = (out / "runtime.csv").read_text().splitlines()
    assert len(runtime) == 1 + 40 and "peak_mem_mb" in runtime[0]


def test_center_box_pixels_and_run_command(small_root, tmp_path):
    out = tmp_path / "box"
    result = CliRunner().invoke(main, ["run", "--model", "center-box", "--model-arg", "frac=0.5",
                                       "--data", str(small_root), "--out", str(out),
                                       "--no-progress", "--json"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.output[result.output.index("{"):])
    assert 0.0 < summary["metrics"]["J"] < 1.0
    clip = next(iter(_meta(small_root)))
    height, width = _meta(small_root)[clip]["height"], _meta(small_root)[clip]["width"]
    mask = np.array(Image.open(out / clip / "0" / "00003.png")) > 0
    expected = np.zeros((height, width), bool)  # by hand: rows H/4..3H/4, cols W/4..3W/4
    expected[round(height / 4):round(3 * height / 4), round(width / 4):round(3 * width / 4)] = True
    assert np.array_equal(mask, expected)
    assert center_box(4, 8, 0.5).sum() == 2 * 4


def test_noisy_oracle_is_seeded_and_worse_than_the_oracle(small_root, tmp_path):
    bench = load_benchmark("ref-vps", small_root)
    for name, seed in (("a", 0), ("b", 0), ("c", 1)):
        predict("noisy-oracle", bench, tmp_path / name, model_args={"flip": "0.02", "seed": seed},
                progress=False)
    first = next((tmp_path / "a").glob("*/1/00004.png"))
    same = tmp_path / "b" / first.relative_to(tmp_path / "a")
    other = tmp_path / "c" / first.relative_to(tmp_path / "a")
    assert first.read_bytes() == same.read_bytes() != other.read_bytes()
    noisy = np.array(Image.open(first)) > 0
    oracle_dir = tmp_path / "oracle"
    predict("oracle", bench, oracle_dir, progress=False)
    exact = np.array(Image.open(oracle_dir / first.relative_to(tmp_path / "a"))) > 0
    assert 0.005 < np.mean(noisy != exact) < 0.04  # about 2 % of the pixels flipped
    assert evaluate(tmp_path / "a", bench, workers=1, progress=False).metrics["J"] < 1.0


def test_resume_skips_finished_queries_and_overwrite_redoes_them(small_root, tmp_path):
    bench = load_benchmark("ref-vps", small_root)
    out = tmp_path / "p"
    first = predict("empty", bench, out, progress=False)
    assert len(first.finished) == 12 and first.skipped == 0
    query = bench.queries()[5]
    (out / query.video / query.query_id / ".done.json").unlink()  # as if killed mid-query
    again = predict("empty", bench, out, progress=False)
    assert [r["unit"] for r in again.finished] == [query.unit] and again.skipped == 11
    redo = predict("empty", bench, out, overwrite=True, progress=False)
    assert len(redo.finished) == 12 and redo.skipped == 0


def test_another_model_into_the_same_folder_is_refused(small_root, tmp_path):
    bench = load_benchmark("ref-vps", small_root)
    predict("empty", bench, tmp_path / "p", progress=False)
    with pytest.raises(Exception, match="another run"):
        predict("full-frame", bench, tmp_path / "p", progress=False)


def test_process_crash_resumes_without_redoing_finished_queries(small_root, tmp_path, standins):
    bench = load_benchmark("ref-vps", small_root)
    order = [task.video for task in bench.tasks()]
    log = tmp_path / "log.jsonl"
    command = [sys.executable, "-m", "refvps", "predict", "--model", "refvps_standins:Crasher",
               "--data", str(small_root), "--out", str(tmp_path / "p"), "--no-progress",
               "--model-arg", f"log={log}", "--model-arg", f"video={order[2]}",
               "--model-arg", "mode=once", "--model-arg", f"flag={tmp_path / 'crashed'}"]
    crashed = subprocess.run(command, capture_output=True)
    assert crashed.returncode == 3  # the whole predict process died on the 3rd video
    done_before = [json.loads(l)["video"] for l in log.read_text().splitlines() if "video" in l]
    assert done_before == [order[0]] * 4 + [order[1]] * 4
    log.unlink()
    resumed = subprocess.run(command, capture_output=True, text=True)
    assert resumed.returncode == 0, resumed.stderr
    redone = [json.loads(l)["video"] for l in log.read_text().splitlines() if "video" in l]
    assert redone == [order[2]] * 4
    assert "8 already done" in resumed.stdout


def test_failing_queries_are_listed_and_the_rest_finishes(small_root, tmp_path, standins):
    bench = load_benchmark("ref-vps", small_root)
    bad = bench.tasks()[2].video
    out = tmp_path / "p"
    result = CliRunner().invoke(main, ["predict", "--model", "refvps_standins:Crasher", "--data",
                                       str(small_root), "--out", str(out), "--no-progress",
                                       "--model-arg", f"fail_video={bad}"])
    assert result.exit_code == 1
    assert result.output.count("FAILED") == 4 and f"FAILED {bad}/0: ValueError" in result.output
    failures = json.loads((out / "failures.json").read_text())
    assert sorted(f["unit"] for f in failures) == [f"{bad}/{k}" for k in range(4)]
    assert len(list(out.glob("*/*/.done.json"))) == 8


def test_out_of_memory_backs_off_to_shorter_clips(small_root, tmp_path, standins):
    bench = load_benchmark("ref-vps", small_root)
    log = tmp_path / "log.jsonl"
    report = predict("refvps_standins:OOMAbove", bench, tmp_path / "p",
                     model_args={"clip_len": "32", "limit": "10", "log": str(log)}, progress=False)
    assert not report.failures
    first = report.finished[0]
    # by hand: 32 (OOM) -> 16 (OOM) -> 8 fits; every query starts again from 32
    assert first["clip_len"] == 8 and first["oom_retries"] == 2
    tries = [json.loads(l)["clip_len"] for l in log.read_text().splitlines()]
    assert tries[:6] == [32, 16, 8, 32, 16, 8]
    too_small = predict("refvps_standins:OOMAbove", bench, tmp_path / "q",
                        model_args={"clip_len": "4", "limit": "0"}, progress=False)
    assert len(too_small.failures) == 12
    assert "no shorter clip length" in too_small.failures[0]["error"]


def test_shards_partition_the_videos(small_root, tmp_path):
    bench = load_benchmark("ref-vps", small_root)
    units = []
    for index in range(3):
        report = predict("empty", bench, tmp_path / "p", shard=(index, 3), progress=False)
        units += [r["unit"] for r in report.finished]
    assert sorted(units) == sorted(q.unit for q in bench.queries())
    assert parse_shard("1/4") == (1, 4) and shard_of("abc", 1) == 0
    with pytest.raises(ValueError):
        parse_shard("4/4")


def test_model_spec_rejects_unknown_arguments():
    with pytest.raises(ValueError, match="unknown model argument"):
        ModelSpec("center-box", {"fraction": "0.3"}).build()
    with pytest.raises(ValueError, match="expected float"):
        ModelSpec("center-box", {"frac": "big"}).build()
