"""MeViS: loader, GT union, official protocol (vs a literal transcription), missing modes."""
from __future__ import annotations

import json
import shutil
import zipfile

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

import _official_mevis as official
from _mevis_data import build_mevis, gt_union, shift_right, write_predictions
from problem_checks import assert_each_once
from refvps.cli import main
from refvps.errors import RefvpsError, ValidationError
from refvps.evaluation import evaluate
from refvps.loaders import benchmark_class, load_benchmark
from refvps.predictions import PredictionStore

B_VIDEO, C_VIDEO = "5f4e3d2c1b0a", "9e8d7c6b5a4f"


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    base = tmp_path_factory.mktemp("mevis")
    build_mevis(base)
    return base


@pytest.fixture(scope="module")
def shifted(root):
    return write_predictions(root / "preds" / "shifted", "valid_u", shift_right)


def run(preds, root, split="valid_u", **kwargs):
    kwargs.setdefault("workers", 1)
    return evaluate(preds, "mevis", root, split, progress=False, **kwargs)


def per_expression(result) -> dict[str, tuple[float, float]]:
    units = result.units
    return {f"{v}_{q}": (j, f) for v, q, j, f in
            zip(units["video"], units["query_id"], units["J"], units["F"])}


def assert_matches_official(result, preds, root, split="valid_u"):
    expected = official.eval_mevis(str(preds), str(root / "mevis" / split))
    got = per_expression(result)
    assert set(got) == set(expected)
    for key, (j, f) in expected.items():
        assert got[key][0] == pytest.approx(j, abs=1e-12), key
        assert got[key][1] == pytest.approx(f, abs=1e-12), key
    j, f, jf = official.summary(expected)
    assert result.metrics["J"] == pytest.approx(j, abs=1e-12)
    assert result.metrics["F"] == pytest.approx(f, abs=1e-12)
    assert result.metrics["J&F"] == pytest.approx(jf, abs=1e-12)


def test_loader_reads_official_layout(root):
    bench = load_benchmark("mevis", root, "valid_u")
    assert bench.validate() == []
    queries = {q.unit: q for q in bench.queries()}
    assert list(queries) == [f"{B_VIDEO}/0", f"{B_VIDEO}/1", f"{B_VIDEO}/2", f"{B_VIDEO}/4",
                             f"{C_VIDEO}/0", f"{C_VIDEO}/1"]  # ids verbatim, gap at "3" kept
    assert queries[f"{B_VIDEO}/0"].text == "the bird flying away"
    assert queries[f"{B_VIDEO}/1"].target == (0, 1)
    assert queries[f"{B_VIDEO}/2"].target == ()
    assert queries[f"{B_VIDEO}/0"].frames == ("00000", "00001", "00002", "00003")
    kinds = {u: q.meta["targets"] for u, q in queries.items()}
    assert kinds[f"{B_VIDEO}/1"] == "multi" and kinds[f"{B_VIDEO}/2"] == "none"
    assert load_benchmark("mevis", root / "mevis", "train").validate() == []  # root = the folder


def test_gt_is_the_binary_union_and_empty_rle_equals_null(root):
    bench = load_benchmark("mevis", root, "valid_u")
    task = next(t for t in bench.tasks() if t.video == B_VIDEO)
    gt = bench.load_gt(task)
    queries = {q.query_id: q for q in task.queries}
    for t in range(4):
        for exp_id in ("0", "1", "2", "4"):
            fg, void = gt.target(queries[exp_id], f"{t:05d}")
            assert void is None and fg.dtype == bool and fg.shape == (29, 17)
            np.testing.assert_array_equal(fg, gt_union("valid_u", B_VIDEO, exp_id, t))
    overlap = gt.target(queries["1"], "00001")[0]
    assert overlap.sum() == 8 * 6 + 10 * 8 - 3 * 3  # two rectangles overlapping in 3 x 3 px
    assert not gt.target(queries["1"], "00002")[0].any()  # null + all-zero RLE


def test_gt_decoded_once_per_object_and_frame(root, shifted, monkeypatch):
    import refvps.loaders.mevis as mevis_module

    calls = []
    real = mevis_module.rle_decode
    monkeypatch.setattr(mevis_module, "rle_decode", lambda rle: calls.append(1) or real(rle))
    run(shifted, root)
    # non-null (anno, frame) entries: anno 0: 3, anno 1: 4 (one all-zero RLE), anno 2: 0, anno 5: 3
    assert len(calls) == 10


def test_perfect_and_empty_scores_by_hand(root, tmp_path):
    perfect = run(write_predictions(tmp_path / "perfect", "valid_u"), root)
    assert perfect.metrics["J"] == perfect.metrics["F"] == perfect.metrics["J&F"] == 1.0
    empty = run(write_predictions(tmp_path / "empty", "valid_u", np.zeros_like), root)
    # J = F = share of frames with empty GT: B/0 1/4, B/1 1/4, B/2 1, B/4 1, C/0 0, C/1 0
    assert empty.metrics["J"] == pytest.approx(2.5 / 6)
    assert empty.metrics["F"] == pytest.approx(2.5 / 6)
    assert empty.metrics["J&F"] == pytest.approx(2.5 / 6)
    assert empty.summary["counts"] == {
        "videos": 2, "queries": 6, "frames_scored": 4 * 4 + 2 * 3,
        "missing_frames_scored_empty": 0, "units_with_missing": 0,
        "videos_missing_scored_zero": 0, "expressions_scored_zero": 0, "expressions_dropped": 0}
    assert set(empty.tables["targets"]["targets"]) == {"none", "single", "multi"}


def test_shifted_matches_literal_official_script(root, shifted):
    result = run(shifted, root)
    # C/0: a 16 x 20 box moved one column right on every frame: J = 19 / 21 by hand
    assert per_expression(result)[f"{C_VIDEO}_0"][0] == pytest.approx(19 / 21, abs=1e-15)
    assert_matches_official(result, shifted, root)


def test_zip_predictions_with_videos_at_the_root(root, shifted, tmp_path):
    archive = tmp_path / "preds.zip"
    with zipfile.ZipFile(archive, "w") as handle:
        for path in sorted(shifted.rglob("*.png")):
            handle.write(path, path.relative_to(shifted).as_posix())
    assert run(archive, root).metrics == run(shifted, root).metrics


def test_strict_lists_every_missing_video_expression_and_frame(root, tmp_path):
    preds = write_predictions(tmp_path / "p", "valid_u",
                              skip=(f"{B_VIDEO}/", f"{C_VIDEO}/1/", f"{C_VIDEO}/0/00002"))
    with pytest.raises(ValidationError) as info:
        run(preds, root)
    text = str(info.value)
    assert len(info.value.problems) == 3
    assert f"{B_VIDEO}: folder missing (16 required frame(s))" in text
    assert f"{C_VIDEO}/1: folder missing (3 required frame(s))" in text
    assert f"{C_VIDEO}/0: missing 1 required frame(s): 00002" in text
    assert "--missing official" in text


def test_official_mode_zero_video_and_dropped_expressions(pooled, root, tmp_path):
    preds = write_predictions(tmp_path / "p", "valid_u", shift_right,
                              skip=(f"{B_VIDEO}/", f"{C_VIDEO}/1/"))
    result = run(preds, root, missing="official", workers=2)
    assert_matches_official(result, preds, root)
    counts = result.summary["counts"]
    assert (counts["videos_missing_scored_zero"], counts["expressions_scored_zero"],
            counts["expressions_dropped"]) == (1, 4, 1)
    assert counts["queries"] == 5  # C/1 dropped from the mean
    assert result.metrics["J"] == pytest.approx((19 / 21) / 5)  # 4 zeros and C/0
    assert result.summary["options"]["missing"] == "official"
    warnings = "\n".join(result.summary["warnings"])
    assert "video folder missing: its 4 expression(s) scored J = F = 0" in warnings
    assert "expression folder missing" in warnings


def test_official_mode_size_and_unreadable_quirks(root, tmp_path):
    preds = write_predictions(tmp_path / "p", "valid_u")
    Image.fromarray(np.zeros((30, 45), np.uint8)).save(preds / C_VIDEO / "0" / "00001.png")
    (preds / C_VIDEO / "1" / "00002.png").write_bytes(b"not a png")
    for t in range(4):  # a no-target expression predicted at another size: the official script
        Image.fromarray(np.zeros((10, 10), np.uint8)).save(  # never compares, it scores it
            preds / B_VIDEO / "2" / f"{t:05d}.png")
    with pytest.raises(ValidationError) as info:
        run(preds, root)
    assert len(info.value.problems) == 4 + 2  # B/2 four frames, C/0 size, C/1 unreadable
    assert "--missing official" in str(info.value)  # the hint docs/benchmarks/mevis.md promises
    result = run(preds, root, missing="official")
    assert_matches_official(result, preds, root)
    assert result.summary["counts"]["expressions_dropped"] == 2
    assert result.summary["counts"]["queries"] == 4


def test_palette_prediction_with_black_foreground_reads_empty(root, tmp_path):
    """cv2 grayscale sees palette colours: a foreground index painted black is background."""
    preds = write_predictions(tmp_path / "p", "valid_u")
    for t in range(3):
        image = Image.fromarray(gt_union("valid_u", C_VIDEO, "0", t).astype(np.uint8), mode="L")
        image = image.convert("P")
        image.putpalette([0, 0, 0] * 256)  # index 1 (foreground) is black too
        image.save(preds / C_VIDEO / "0" / f"{t:05d}.png")
    result = run(preds, root)
    assert per_expression(result)[f"{C_VIDEO}_0"] == (0.0, 0.0)  # scored as an empty prediction
    assert_matches_official(result, preds, root)
    assert PredictionStore(preds, reader="pil").read_binary(f"{C_VIDEO}/0/00000.png").any()


def test_allow_missing_scores_a_missing_video_as_empty(root, tmp_path):
    preds = write_predictions(tmp_path / "p", "valid_u", skip=(f"{B_VIDEO}/",))
    result = run(preds, root, allow_missing=True)
    got = per_expression(result)
    assert [got[f"{B_VIDEO}_{e}"][0] for e in "0124"] == [0.25, 0.25, 1.0, 1.0]
    assert result.summary["counts"]["missing_frames_scored_empty"] == 16


def test_train_split_keeps_the_one_frame_video(root, tmp_path):
    result = run(write_predictions(tmp_path / "p", "train"), root, split="train")
    assert result.summary["counts"]["queries"] == 2 and result.metrics["J"] == 1.0
    assert result.metrics["TC_units"] == 1  # TC is undefined on one frame


def test_valid_split_has_no_ground_truth(root, tmp_path):
    with pytest.raises(RefvpsError, match="refvps submit --benchmark mevis --split valid"):
        run(tmp_path, root, split="valid")


def test_missing_mode_conflicts(root, shifted):
    with pytest.raises(RefvpsError, match="exclude each other"):
        run(shifted, root, allow_missing=True, missing="official")
    with pytest.raises(RefvpsError, match="not supported by ref-vps"):
        evaluate(shifted, benchmark_class("ref-vps")(root), missing="official", progress=False)


def test_cli_eval_missing_official(root, tmp_path):
    preds = write_predictions(tmp_path / "p", "valid_u", skip=(f"{B_VIDEO}/",))
    runner = CliRunner()
    ok = runner.invoke(main, ["eval", "-b", "mevis", "--data", str(root), "--preds", str(preds),
                              "--missing", "official", "--json", "--no-progress", "-j", "1"])
    assert ok.exit_code == 0, ok.output
    assert json.loads(ok.output)["counts"]["videos_missing_scored_zero"] == 1
    strict = runner.invoke(main, ["eval", "-b", "mevis", "--data", str(root), "--preds",
                                  str(preds), "--no-progress", "-j", "1"])
    assert strict.exit_code == 2 and "folder missing" in strict.output
    other = runner.invoke(main, ["eval", "--data", str(root), "--preds", str(preds),
                                 "--missing", "official"])
    assert other.exit_code == 2 and "not supported by ref-vps" in other.output


def _edit_split(root, tmp_path, edit) -> object:
    copy = tmp_path / "data"
    shutil.copytree(root / "mevis", copy / "mevis")
    split = copy / "mevis" / "valid_u"
    meta = json.loads((split / "meta_expressions.json").read_text())
    masks = json.loads((split / "mask_dict.json").read_text())
    edit(meta["videos"], masks, split)
    (split / "meta_expressions.json").write_text(json.dumps(meta))
    (split / "mask_dict.json").write_text(json.dumps(masks))
    return load_benchmark("mevis", copy, "valid_u")


def test_dataset_problems_are_all_reported(root, tmp_path):
    def edit(videos, masks, split):
        videos[B_VIDEO]["expressions"]["0"]["anno_id"] = [99]
        videos[B_VIDEO]["expressions"]["2"]["anno_id"] = "none"
        videos[B_VIDEO]["expressions"]["4"]["exp"] = " "
        masks["1"] = masks["1"][:3]
        masks["5"][1] = {"counts": "x"}
        masks["5"][2] = {"size": [31, 44], "counts": masks["5"][2]["counts"]}
        Image.new("RGB", (45, 30)).save(split / "JPEGImages" / C_VIDEO / "00000.jpg")

    problems = [str(p) for p in _edit_split(root, tmp_path, edit).validate()]
    expected = ["anno_id 99 of 5f4e3d2c1b0a/0 is not in mask_dict.json",
                "expressions.2.anno_id: must be a list of integers",
                "expressions.4.exp: must be a non-empty text",
                "expected a list of 4 entries (one per frame of 5f4e3d2c1b0a)",
                "mask_dict.json: 5.1: neither null nor an RLE object",
                "the RLE masks of this video have different sizes (WxH: 44x31, 45x31)"]
    assert_each_once(problems, expected)


def test_image_size_mismatch_and_missing_files(root, tmp_path):
    def edit(videos, masks, split):
        Image.new("RGB", (45, 30)).save(split / "JPEGImages" / C_VIDEO / "00000.jpg")

    bench = _edit_split(root, tmp_path, edit)
    assert [p.what for p in bench.validate()] == [
        "image is 45x30 (WxH) but the video's RLE masks are 45x31"]
    (bench.split_dir / "mask_dict.json").unlink()
    (bench.split_dir / "meta_expressions.json").write_text("{not json")
    fresh = load_benchmark("mevis", tmp_path / "data", "valid_u")
    whats = sorted(p.what.split(" (")[0] for p in fresh.validate())
    assert whats == ["file not found", "malformed JSON"]
    with pytest.raises(ValidationError, match="malformed JSON"):
        run(tmp_path, tmp_path / "data")



def test_official_mode_empty_video_folder_counts_as_present(root, tmp_path):
    preds = write_predictions(tmp_path / "p", "valid_u", skip=(f"{B_VIDEO}/",))
    (preds / B_VIDEO).mkdir()
    result = run(preds, root, missing="official")
    assert_matches_official(result, preds, root)
    assert result.summary["counts"]["expressions_dropped"] == 4
    assert result.summary["counts"]["videos_missing_scored_zero"] == 0


def test_malformed_rle_is_reported_with_its_anno_id(root, tmp_path):
    from pycocotools import mask as mask_utils

    def edit(videos, masks, split):
        too_long = mask_utils.encode(np.asfortranarray(np.ones((32, 45), np.uint8)))
        masks["5"][1] = {"size": [31, 45], "counts": too_long["counts"].decode("ascii")}

    bench = _edit_split(root, tmp_path, edit)
    assert bench.validate() == []  # structure is fine; the runs are checked when decoded
    preds = write_predictions(tmp_path / "p", "valid_u")
    with pytest.raises(ValidationError) as info:
        run(preds, tmp_path / "data")
    assert [p.what for p in info.value.problems] == [
        "entry 1: malformed RLE (Invalid RLE mask representation)"]
    assert info.value.problems[0].where.endswith("valid_u/mask_dict.json [5]")


def test_data_may_be_the_split_folder(root, shifted):
    """--data .../valid_u (where the official --mevis_exp_path lives) picks that split."""
    split_dir = root / "mevis" / "valid_u"
    bench = load_benchmark("mevis", split_dir)
    assert (bench.root, bench.split) == (root / "mevis", "valid_u")
    assert run(shifted, split_dir, split=None).metrics == run(shifted, root).metrics
    with pytest.raises(ValueError, match="split folder"):
        load_benchmark("mevis", split_dir, split="train")
    runner = CliRunner().invoke(main, ["eval", "-b", "mevis", "--data", str(split_dir), "--preds",
                                       str(shifted), "--no-progress", "--no-record", "-j", "1"])
    assert runner.exit_code == 0, runner.output


def test_pool_splits_the_shortest_videos_and_scores_every_query_once(pooled, root, shifted):
    """A pool scores the shortest videos' expressions in parts (so no worker waits for
    another's whole video); every expression is still scored once, with the serial result."""
    import pandas as pd

    from refvps.evaluation import open_predictions
    from refvps.executors import _schedule

    bench = load_benchmark("mevis", root, "valid_u")
    store, tasks, _presence = open_predictions(bench, shifted)
    scheduled = _schedule(bench, store, tasks, workers=2)
    assert len(scheduled) > len(tasks)  # some video was split
    units = sorted(q.unit for task in scheduled for q in task.queries)
    assert units == sorted(q.unit for task in tasks for q in task.queries)  # a partition
    for video in {task.video for task in scheduled}:
        parts = [task.part for task in scheduled if task.video == video]
        assert sorted(parts) == list(range(len(parts)))
    serial, in_pool = run(shifted, root), run(shifted, root, workers=2)
    pd.testing.assert_frame_equal(serial.frames, in_pool.frames)
    assert serial.metrics == in_pool.metrics and serial.summary["counts"] == in_pool.summary["counts"]


def test_split_task_halves_by_frames(root):
    from refvps.loaders.base import Query, VideoTask

    bench = load_benchmark("mevis", root, "valid_u")
    queries = [Query("v", str(i), "", tuple(range(n))) for i, n in enumerate((10, 10, 30, 5))]
    task = VideoTask("v", queries, gt="shared")
    halves = bench.split_task(task, _AllFolders())
    # 20 + 35 frames is the most even cut (50 + 5 the other candidate)
    assert [sum(len(q.frames) for q in half.queries) for half in halves] == [20, 35]
    assert [q for half in halves for q in half.queries] == queries
    assert [half.part for half in halves] == [0, 1] and {h.gt for h in halves} == {"shared"}
    single = VideoTask("v", queries[:1])
    assert bench.split_task(single, _AllFolders()) == [single]
    bench.set_missing_mode("official")  # a video missing under the official rule stays whole
    assert bench.split_task(task, _NoFolders()) == [task]


def test_split_task_in_more_parts_cuts_at_the_nearest_query_boundaries(root):
    from refvps.loaders.base import Query, VideoTask

    bench = load_benchmark("mevis", root, "valid_u")
    sizes = (10, 10, 30, 5, 25, 20)  # 100 frames; cumulative 10 20 50 55 80 100
    queries = [Query("v", str(i), "", tuple(range(n))) for i, n in enumerate(sizes)]
    task = VideoTask("v", queries, gt="shared")

    def frames(parts):
        return [sum(len(q.frames) for q in part.queries) for part in parts]

    thirds = bench.split_task(task, _AllFolders(), 3)  # shares end at 33.3 and 66.7
    assert frames(thirds) == [20, 35, 45]  # cuts at 20 (13.3 off; 50 is 16.7) and 55 (11.7)
    quarters = bench.split_task(task, _AllFolders(), 4)  # shares end at 25, 50, 75
    assert frames(quarters) == [20, 30, 30, 20]  # cuts at 20, 50, 80
    for parts in (thirds, quarters):
        assert [q for part in parts for q in part.queries] == queries
        assert [part.part for part in parts] == list(range(len(parts)))
        assert {part.gt for part in parts} == {"shared"}
    # More parts than queries: one query each, never an empty part.
    assert frames(bench.split_task(task, _AllFolders(), 20)) == list(sizes)
    assert bench.split_task(task, _AllFolders(), 1) == [task]


def test_pool_schedule_caps_tasks_at_a_share_of_the_job(root):
    """Tasks longer than 1/(PARTS_PER_WORKER x workers) of the job are cut; the shortest
    videos are halved; the order is largest first."""
    from refvps.executors import PARTS_PER_WORKER, _schedule
    from refvps.loaders.base import Query, VideoTask

    bench = load_benchmark("mevis", root, "valid_u")
    assert PARTS_PER_WORKER == 4

    def video(name, n_queries, frames_each):
        return VideoTask(name, [Query(name, str(i), "", tuple(range(frames_each)))
                                for i in range(n_queries)])

    # 2 workers: 1,600 frames, cap 200. "big" (800) -> 4 parts of 200; "mid" (400) -> 2;
    # "a" and "b" (200 each) are the 2 shortest -> halves of 100.
    tasks = [video("a", 4, 50), video("big", 16, 50), video("b", 4, 50), video("mid", 8, 50)]
    scheduled = _schedule(bench, _AllFolders(), tasks, workers=2)
    sizes = [sum(len(q.frames) for q in task.queries) for task in scheduled]
    assert sizes == [200] * 6 + [100] * 4
    assert sorted(task.video for task in scheduled) == ["a"] * 2 + ["b"] * 2 + ["big"] * 4 + \
        ["mid"] * 2


class _AllFolders:
    def has_folder(self, name: str) -> bool:
        return True


class _NoFolders:
    def has_folder(self, name: str) -> bool:
        return False
