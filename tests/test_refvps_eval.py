"""Ref-VPS loader, validation and evaluation on the hand-built fixture (dataset-formats §9.7)."""
from __future__ import annotations

import json
import shutil
import zipfile

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from refvps.errors import RefvpsError, ValidationError
from refvps.evaluation import evaluate
from refvps.loaders import load_benchmark
from refvps_fixture import build_refvps, write_png_labels, write_predictions

# Hand-computed J of the predictions shifted right by 5 columns (see refvps_fixture.CLIPS):
#   vps_0001/00000  GT empty, prediction empty                          -> 1
#   vps_0001/00004  GT 150 px, prediction 150 px of which 50 px in Ignore:
#                   I = 100, U = 150 + 100 - 100 = 150                  -> 2/3
#   vps_0001/00008  GT 100 px, prediction 100 px, overlap 5 x 10 = 50   -> 50/150 = 1/3
#   vps_0002/00000  only Ignore and background, prediction empty        -> 1
#   vps_0002/00004  GT 80 px, prediction 80 px, overlap 3 x 10 = 30     -> 30/130 = 3/13
J_CLIP_1 = (1 + 2 / 3 + 1 / 3) / 3
J_CLIP_2 = (1 + 3 / 13) / 2


@pytest.fixture
def dataset(tmp_path):
    build_refvps(tmp_path / "data")
    return tmp_path / "data"


def test_loader_reads_queries_concepts_and_frames(dataset):
    bench = load_benchmark("ref-vps", dataset)
    assert bench.validate() == []
    queries = bench.queries()
    assert len(queries) == 8
    first = queries[0]
    assert first.video == "vps_0001" and first.query_id == "0"
    assert first.frames == ("00000", "00004", "00008")
    assert first.target == (1,)
    assert first.meta["annotator"] == 0 and first.meta["exp_idx"] == 0
    assert queries[2].text == "the café steam rising"
    units = bench.units_table()
    assert units["n_words"].max() > 25
    assert units.loc[units.video == "vps_0002", "concept_groups"].iloc[0] == [
        "temporal_object_changes", "pattern_evolution"]


def test_data_root_may_be_the_benchmark_folder_itself(dataset):
    assert load_benchmark("ref-vps", dataset / "ref-vps").root == dataset / "ref-vps"


def test_perfect_predictions_score_one(dataset, tmp_path):
    preds = write_predictions(tmp_path / "perfect")
    result = evaluate(preds, "ref-vps", dataset, workers=1, progress=False)
    assert result.metrics["J"] == 1.0 and result.metrics["F"] == 1.0
    assert result.metrics["TC"] == 0.0
    assert result.summary["counts"] == {"videos": 2, "queries": 8, "frames_scored": 20,
                                        "missing_frames_scored_empty": 0, "units_with_missing": 0}


def test_shifted_predictions_hand_computed(pooled, dataset, tmp_path):
    preds = write_predictions(tmp_path / "shifted", dx=5)
    result = evaluate(preds, "ref-vps", dataset, workers=2, progress=False)
    frames = result.frames.set_index(["unit", "frame"])["J"]
    assert frames[("vps_0001/0", "00004")] == 2 / 3
    assert frames[("vps_0001/3", "00008")] == 1 / 3
    assert frames[("vps_0002/1", "00000")] == 1.0
    assert frames[("vps_0002/2", "00004")] == 3 / 13
    assert result.metrics["J"] == pytest.approx((J_CLIP_1 + J_CLIP_2) / 2, rel=1e-15)
    # temporal consistency of clip 1: |2/3 - 1| and |1/3 - 2/3| -> 1/3; clip 2: |3/13 - 1|
    tc = result.units.set_index("unit")["TC"]
    assert tc["vps_0001/0"] == pytest.approx(1 / 3, rel=1e-15)
    assert tc["vps_0002/0"] == pytest.approx(10 / 13, rel=1e-15)
    groups = result.tables["concept_groups"].set_index("concept_groups")
    assert groups.loc["pattern_evolution", "J"] == pytest.approx(J_CLIP_2, rel=1e-15)
    assert groups.loc["temporal_object_changes", "n_units"] == 8


def test_serial_and_pool_results_are_identical(pooled, dataset, tmp_path, monkeypatch):
    """With 2 workers this process scores tasks too, beside one pool worker, from one queue:
    held up on its first task, it leaves the rest to the pool; the results are the serial ones."""
    import time

    import refvps.loaders.base as base

    preds = write_predictions(tmp_path / "shifted", dx=5)
    serial = evaluate(preds, "ref-vps", dataset, workers=1, progress=False)
    here = []
    real = base.score_safely

    def slow_here(benchmark, task, *args):
        if not here:
            time.sleep(3)  # the pool worker starts and takes the other tasks meanwhile
        here.append(task.video)
        return real(benchmark, task, *args)

    monkeypatch.setattr(base, "score_safely", slow_here)  # this process only
    in_pool = evaluate(preds, "ref-vps", dataset, workers=2, progress=False)
    tasks = len(load_benchmark("ref-vps", dataset).tasks())
    assert 1 <= len(here) < tasks, here
    pd.testing.assert_frame_equal(serial.frames, in_pool.frames)
    assert serial.metrics == in_pool.metrics


def test_two_workers_score_a_small_job_in_this_process(dataset, tmp_path, monkeypatch):
    """Under SMALL_JOB_FRAMES query-frames no pool starts, whatever the worker count: it would
    make two workers slower than one."""
    import refvps.executors as executors

    def no_pool(*args, **kwargs):
        raise AssertionError("a pool was started for a small job")

    monkeypatch.setattr(executors, "process_pool", no_pool)
    monkeypatch.setattr(executors, "start_pool_server", no_pool)
    preds = write_predictions(tmp_path / "p", dx=5)
    result = evaluate(preds, "ref-vps", dataset, workers=2, progress=False)
    assert result.summary["counts"]["frames_scored"] < executors.SMALL_JOB_FRAMES
    assert result.metrics == evaluate(preds, "ref-vps", dataset, workers=1,
                                      progress=False).metrics


def test_resource_tracker_starts_before_the_benchmark_loads_when_a_pool_may_run(
        dataset, tmp_path, monkeypatch):
    """With more than one worker the resource tracker (which the fork server would start
    first) is started before the benchmark loads, so that it is up when the fork server starts;
    with one worker, or on Ray, it is not started at all."""
    from multiprocessing import resource_tracker

    import refvps.evaluation as evaluation

    events: list[str] = []
    monkeypatch.setattr(resource_tracker, "ensure_running", lambda: events.append("tracker"))
    loader = evaluation.load_benchmark

    def load_benchmark(*args, **kwargs):
        events.append("benchmark")
        return loader(*args, **kwargs)

    monkeypatch.setattr(evaluation, "load_benchmark", load_benchmark)
    preds = write_predictions(tmp_path / "p")
    evaluate(preds, "ref-vps", dataset, workers=1, progress=False)
    assert events == ["benchmark"]
    events.clear()
    evaluate(preds, "ref-vps", dataset, workers=2, progress=False)
    assert events == ["tracker", "benchmark"]


def test_prediction_inside_ignore_scores_one(dataset, tmp_path):
    preds = write_predictions(tmp_path / "p")
    inside = np.zeros((29, 17), np.uint8)
    inside[0:5, :] = 255  # exactly the Ignore band of vps_0002/00000
    for exp_id in range(4):
        Image.fromarray(inside).save(preds / "vps_0002" / str(exp_id) / "00000.png")
    result = evaluate(preds, "ref-vps", dataset, workers=1, progress=False)
    assert result.metrics["J"] == 1.0


def test_missing_unannotated_frame_is_fine_and_zip_works(pooled, dataset, tmp_path):
    preds = write_predictions(tmp_path / "p", dx=5)
    (preds / "vps_0001" / "0" / "00001.png").unlink()  # not an annotated frame
    archive = tmp_path / "preds.zip"
    with zipfile.ZipFile(archive, "w") as handle:
        for path in sorted(preds.rglob("*.png")):
            handle.write(path, "Annotations/" + path.relative_to(preds).as_posix())
    from_dir = evaluate(preds, "ref-vps", dataset, workers=1, progress=False)
    from_zip = evaluate(archive, "ref-vps", dataset, workers=2, progress=False)
    assert from_zip.metrics == from_dir.metrics
    assert from_dir.metrics["J"] == pytest.approx((J_CLIP_1 + J_CLIP_2) / 2, rel=1e-15)


def test_all_prediction_problems_reported_at_once(pooled, dataset, tmp_path):
    preds = write_predictions(tmp_path / "p")
    (preds / "vps_0001" / "0" / "00004.png").unlink()                  # missing annotated frame
    shutil.rmtree(preds / "vps_0001" / "2")                            # missing expression
    Image.new("L", (10, 10)).save(preds / "vps_0001" / "1" / "00008.png")     # wrong size
    Image.new("RGB", (45, 31)).save(preds / "vps_0001" / "3" / "00000.png")   # RGB
    (preds / "vps_0002" / "0" / "00004.png").write_bytes(b"garbage")          # corrupt
    Image.fromarray(np.zeros((29, 17), np.uint16)).save(preds / "vps_0002" / "1" / "00000.png")
    (preds / "vps_9999" / "0").mkdir(parents=True)                     # unknown video
    Image.new("L", (45, 31)).save(preds / "vps_9999" / "0" / "00000.png")
    with pytest.raises(ValidationError) as info:
        evaluate(preds, "ref-vps", dataset, workers=2, progress=False)
    text = str(info.value)
    assert len(info.value.problems) == 7, text
    for needle in ["vps_0001/0: missing 1 required frame(s): 00004",
                   "vps_0001/2: folder missing (3 required frame(s))",
                   "vps_0001/1/00008.png: size 10x10 (WxH), expected 45x31",
                   "vps_0001/3/00000.png: is an RGB image",
                   "vps_0002/0/00004.png: unreadable image",
                   "vps_0002/1/00000.png: is a 16-bit image",
                   "vps_9999: unknown folder", "--allow-missing"]:
        assert needle in text, needle


def test_allow_missing_scores_missing_frames_as_empty_and_counts_them(dataset, tmp_path):
    preds = write_predictions(tmp_path / "p")
    (preds / "vps_0001" / "0" / "00004.png").unlink()
    shutil.rmtree(preds / "vps_0002" / "3")
    result = evaluate(preds, "ref-vps", dataset, workers=1, progress=False, allow_missing=True)
    counts = result.summary["counts"]
    assert counts["missing_frames_scored_empty"] == 3  # one frame + both frames of vps_0002/3
    assert counts["units_with_missing"] == 2
    units = result.units.set_index("unit")["J"]
    assert units["vps_0001/0"] == 2 / 3  # (1 + 0 + 1) / 3: empty prediction on a 150 px target
    assert units["vps_0002/3"] == 0.5  # ignore-only frame still scores 1, the target frame 0
    assert "scored as empty" in result.to_text()


def test_dataset_validation_reports_every_problem(dataset, tmp_path):
    root = dataset / "ref-vps"
    (root / "Annotations" / "vps_0001" / "00004.png").unlink()                 # missing PNG
    write_png_labels(root / "Annotations" / "vps_0002" / "00004.png",
                     np.zeros((10, 10), np.uint8))                             # size mismatch
    meta = json.loads((root / "meta_expressions.json").read_text())
    meta["videos"]["vps_0001"]["anno_frames"].append("00099")                  # not in frames
    meta["videos"]["vps_0002"]["concept"] = "no_such_concept"                  # unknown concept
    (root / "meta_expressions.json").write_text(json.dumps(meta))
    problems = load_benchmark("ref-vps", dataset).validate()
    text = "\n".join(map(str, problems))
    assert "vps_0001/00004.png: annotated frame has no annotation PNG" in text
    assert "vps_0002/00004.png: size 10x10 (WxH), meta says 17x29" in text
    assert "annotated frame '00099' is not in 'frames'" in text
    assert "unknown concept id 'no_such_concept'" in text
    assert "00099.png: annotated frame has no annotation PNG" in text
    assert len(problems) == 5
    with pytest.raises(ValidationError, match="5 problem"):
        evaluate(write_predictions(tmp_path / "p"), "ref-vps", dataset, progress=False)


def test_malformed_json_names_the_file(dataset):
    (dataset / "ref-vps" / "concepts.json").write_text("{not json")
    (dataset / "ref-vps" / "meta_expressions.json").write_text("[1, 2")
    problems = load_benchmark("ref-vps", dataset).validate()
    text = "\n".join(map(str, problems))
    assert "concepts.json: malformed JSON" in text
    assert "meta_expressions.json: malformed JSON" in text


def test_outputs_written(dataset, tmp_path):
    preds = write_predictions(tmp_path / "shifted", dx=5)
    out = tmp_path / "out"
    result = evaluate(preds, "ref-vps", dataset, workers=1, progress=False, out=out)
    for name in ["frames.csv", "expressions.csv", "clips.csv", "concepts.csv",
                 "concept_groups.csv", "annotators.csv", "summary.json"]:
        assert (out / name).is_file(), name
    frames = pd.read_csv(out / "frames.csv", dtype={"frame": str, "query_id": str})
    assert len(frames) == 20
    assert frames["J"].mean() == pytest.approx(result.frames["J"].mean(), rel=1e-15)
    summary = json.loads((out / "summary.json").read_text())
    assert summary["benchmark"] == "ref-vps" and summary["split"] == "test"
    assert len(summary["data_fingerprint"]) == 64
    assert summary["metrics"]["J"] == result.metrics["J"]
    assert summary["files"]["frames"].endswith("frames.csv")
    clips = pd.read_csv(out / "clips.csv").set_index("video")
    assert clips.loc["vps_0002", "J"] == pytest.approx(J_CLIP_2, rel=1e-15)


def test_fingerprint_changes_with_ground_truth(pooled, dataset, tmp_path):
    preds = write_predictions(tmp_path / "p")
    before = evaluate(preds, "ref-vps", dataset, workers=1, progress=False)
    again = evaluate(preds, "ref-vps", dataset, workers=2, progress=False)
    assert before.summary["data_fingerprint"] == again.summary["data_fingerprint"]
    path = dataset / "ref-vps" / "Annotations" / "vps_0001" / "00008.png"
    labels = np.array(Image.open(path))
    labels[0, 0] = 255
    write_png_labels(path, labels)
    after = evaluate(preds, "ref-vps", dataset, workers=1, progress=False)
    assert after.summary["data_fingerprint"] != before.summary["data_fingerprint"]


def _long_clip_dataset(root, n_anno):
    """One clip of ``n_anno`` annotated 3x4 frames whose target shrinks to nothing."""
    data = root / "ref-vps"
    frames = [f"{i:05d}" for i in range(n_anno)]
    for i, frame in enumerate(frames):
        labels = np.zeros((3, 4), np.uint8)
        if i < n_anno // 2:
            labels[:, :2] = 1
        write_png_labels(data / "Annotations" / "long" / f"{frame}.png", labels)
    meta = {"videos": {"long": {"height": 3, "width": 4, "frames": frames, "anno_frames": frames,
                                "expressions": {"0": {"exp": "the thing", "obj_id": [1]}}}}}
    (data / "FORMAT").write_text("refvps-format 0.1 (proposal)\n")
    (data / "meta_expressions.json").write_text(json.dumps(meta))
    (data / "concepts.json").write_text(json.dumps({"groups": [], "concepts": []}))
    preds = root / "preds" / "long" / "0"
    preds.mkdir(parents=True)
    full = np.zeros((3, 4), np.uint8)
    full[:, :2] = 255
    for frame in frames:
        Image.fromarray(full).save(preds / f"{frame}.png")
    return root


def test_decay_bug_is_reported_for_long_sequences(tmp_path):
    root = _long_clip_dataset(tmp_path, 257)
    official = evaluate(root / "preds", "ref-vps", root, workers=1, progress=False)
    assert np.isnan(official.metrics["J_decay"])  # the uint8 wrap of davis2017 db_statistics
    assert any("uint8" in w for w in official.summary["warnings"])
    fixed = evaluate(root / "preds", "ref-vps", root, workers=1, progress=False,
                     decay_mode="fixed")
    # first bin = frames 0..64 (all J = 1), last bin = frames 192..256 (all J = 0)
    assert fixed.metrics["J_decay"] == 1.0
    assert fixed.summary["warnings"] == []
    assert fixed.summary["options"]["decay_mode"] == "fixed"


def test_a_dataset_without_queries_is_a_clear_error(tmp_path):
    from refvps.errors import RefvpsError

    data = tmp_path / "ref-vps"
    (data / "Annotations").mkdir(parents=True)
    (data / "FORMAT").write_text("refvps-format 0.1 (proposal)\n")
    (data / "meta_expressions.json").write_text('{"videos": {}}')
    (data / "concepts.json").write_text('{"groups": [], "concepts": []}')
    (tmp_path / "preds").mkdir()
    with pytest.raises(RefvpsError, match="nothing to score"):
        evaluate(tmp_path / "preds", "ref-vps", tmp_path, progress=False)


def test_a_pool_that_cannot_start_a_worker_is_an_error(pooled, dataset, tmp_path, monkeypatch):
    """Starting a worker fails where ``ProcessPoolExecutor`` starts one (``_adjust_process_count``
    -> ``_spawn_process`` -> ``Process.start``, e.g. EAGAIN from fork): an error naming the
    cause and the way out, even though this process went on scoring meanwhile."""
    from concurrent.futures import ProcessPoolExecutor

    def cannot_fork(self):
        raise BlockingIOError(11, "Resource temporarily unavailable")

    monkeypatch.setattr(ProcessPoolExecutor, "_adjust_process_count", cannot_fork)
    preds = write_predictions(tmp_path / "p", dx=5)
    with pytest.raises(RefvpsError) as info:
        evaluate(preds, "ref-vps", dataset, workers=2, progress=False)
    message = str(info.value)
    assert "could not start a worker process" in message and "Resource temporarily" in message
    assert "workers=1" in message
