"""VSPW stuff (REM referring protocol): a VSPW tree built in code after dataset-formats §9.6.

Hand-computed expected scores are derived in the comments; a slow literal transcription of REM's
``stuff/eval_stuff.py`` logic with aligned (sorted) listings checks random predictions.
"""
from __future__ import annotations

import json
import os
import shutil
from collections import defaultdict
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from literal_davis import literal_j_stack
from problem_checks import evaluation_problems
from refvps.cli import main
from refvps.evaluation import evaluate
from refvps.formats import VSPW_STUFF_CLASSES, voc_palette
from refvps.loaders import load_benchmark

A, B = "127_-hIVCYO4C90", "1002_3nW_Y_u1S08"
WALL, SKY, FOOD, TRAIN, OTHERS, VOID, STRAY = 1, 29, 122, 124, 0, 255, 253  # raw values
NAME_OF_RAW = {stuff_id + 1: name for stuff_id, name in VSPW_STUFF_CLASSES}

# video -> ((H, W), {stem: [(raw, (y0, y1, x0, x1)), ...]}); painted in order over raw 0
VIDEOS = {
    A: ((31, 45), {
        "00000166": [(WALL, (0, 10, 0, 20)), (SKY, (12, 18, 5, 15)), (TRAIN, (20, 25, 20, 30)),
                     (VOID, (30, 31, 0, 45)), (STRAY, (25, 26, 40, 41))],
        "00000167": [(WALL, (0, 10, 0, 20)), (TRAIN, (20, 25, 20, 30)), (VOID, (30, 31, 0, 45))],
        "00000168": [(WALL, (0, 5, 0, 10)), (SKY, (12, 18, 5, 15)), (VOID, (30, 31, 0, 45))],
    }),
    B: ((29, 17), {
        "00001173": [(WALL, (0, 8, 0, 8)), (FOOD, (10, 20, 2, 6)), (VOID, (0, 29, 16, 17))],
        "00001174": [(WALL, (0, 8, 0, 8)), (VOID, (0, 29, 16, 17))],
    }),
}


def raw_mask(video: str, stem: str) -> np.ndarray:
    shape, frames = VIDEOS[video]
    labels = np.full(shape, OTHERS, np.uint8)
    for raw, (y0, y1, x0, x1) in frames[stem]:
        labels[y0:y1, x0:x1] = raw
    return labels


def write_png(path: Path, array: np.ndarray, palette: bool = True) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    image = Image.fromarray(array.astype(np.uint8))
    if palette:
        image.putpalette(voc_palette().ravel().tolist())
    image.save(path)


def build_vspw(root: Path) -> Path:
    """Write ``root/VSPW_480p`` and return it."""
    data = root / "VSPW_480p"
    data.mkdir(parents=True)
    (data / "val.txt").write_text(f"{A}\n{B}\n")
    (data / "train.txt").write_text("0_wHveSGjXyDY")  # no trailing newline
    (data / "test.txt").write_text("\n")
    labels = {name: str(raw) for raw, name in NAME_OF_RAW.items()}
    labels.update(others="0", train="124")
    (data / "label_num_dic_final.json").write_text(json.dumps(labels))
    for v_index, (video, (shape, frames)) in enumerate(VIDEOS.items()):
        for t, stem in enumerate(frames):
            write_png(data / "data" / video / "mask" / f"{stem}.png", raw_mask(video, stem),
                      palette=v_index == 0)  # A as palette PNGs, B as grayscale
            origin = data / "data" / video / "origin" / f"{stem}.jpg"
            origin.parent.mkdir(parents=True, exist_ok=True)
            Image.new("RGB", shape[::-1], (20 * t, 7 * v_index, 128)).save(origin, quality=95)
    return data


def shifted(mask: np.ndarray) -> np.ndarray:
    out = np.zeros_like(mask)
    out[:, 1:] = mask[:, :-1]
    return out


def write_predictions(out: Path, make, layout: str = "rem") -> Path:
    """Predictions for every (video, stuff class present); files created in REVERSE order."""
    rng = np.random.default_rng(11)
    for video, (_shape, frames) in VIDEOS.items():
        present = sorted({raw for stem in frames for raw in np.unique(raw_mask(video, stem))
                          if raw in NAME_OF_RAW})
        for raw in present:
            for stem in reversed(list(frames)):
                gt = (raw_mask(video, stem) == raw).astype(np.uint8)
                name = NAME_OF_RAW[raw]
                rel = f"vspw_val/{video}/{name}/pred/{stem}.png" if layout == "rem" \
                    else f"{video}/{name}/{stem}.png"
                write_png(out / rel, make(gt, rng))
    return out


# --- literal transcription of REM stuff/eval_stuff.py, listings sorted (aligned) ------------
def literal_rem_stuff(vspw: Path, result_dir: Path) -> tuple[float, dict]:
    stuffname2id = {name: stuff_id for stuff_id, name in VSPW_STUFF_CLASSES}
    stuff2vids = defaultdict(list)
    for video in sorted(os.listdir(result_dir)):
        for stf in sorted(os.listdir(result_dir / video)):
            stuff2vids[stf].append(video)
    stuff_J = defaultdict(list)
    per_unit = {}
    for stuff, vids in stuff2vids.items():
        for vid in vids:
            mask_path = vspw / "data" / vid / "mask"
            gt_masks = []
            for mp in sorted(os.listdir(mask_path)):
                msk = np.array(Image.open(mask_path / mp))
                msk[msk == 0] = 255
                msk = msk - 1
                msk[msk == 254] = 124
                gt_msk = np.zeros(msk.shape)
                gt_msk[msk == stuffname2id[stuff]] = 1
                gt_masks.append(gt_msk)
            gt_masks = np.stack(gt_masks)[None, ...]
            pred_path = result_dir / vid / stuff / "pred"
            res_masks = np.stack([np.array(Image.open(pred_path / pf))
                                  for pf in sorted(os.listdir(pred_path))])[None, ...]
            j_metrics_res = np.zeros((res_masks.shape[0], gt_masks.shape[0], gt_masks.shape[1]))
            for ii in range(gt_masks.shape[0]):
                for jj in range(res_masks.shape[0]):
                    j_metrics_res[jj, ii, :] = literal_j_stack(gt_masks[ii, ...],
                                                                   res_masks[jj, ...])
            per_unit[f"{vid}/{stuff}"] = np.mean(j_metrics_res)
            stuff_J[stuff].append(np.mean(j_metrics_res))
    overall = np.mean(np.array([np.mean(np.array(v)) for v in stuff_J.values()]))
    return overall, per_unit


# --- tests ---------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def vspw(tmp_path_factory) -> Path:
    return build_vspw(tmp_path_factory.mktemp("vspw"))


@pytest.fixture(scope="module")
def shifted_preds(vspw) -> Path:
    return write_predictions(vspw.parent / "shifted", lambda gt, rng: shifted(gt))


def test_stuff_table():
    ids = [stuff_id for stuff_id, _ in VSPW_STUFF_CLASSES]
    names = dict(VSPW_STUFF_CLASSES)
    assert len(ids) == len(set(ids)) == 66
    assert (names[0], names[28], names[121], names[6]) == ("wall", "sky", "food",
                                                           "Playground_slide")
    assert 123 not in names and 60 not in names  # train and person are things, not stuff


def test_queries_and_frames(vspw):
    """Queries for stuff classes present in any frame; train/others/void/253 give none."""
    bench = load_benchmark("vspw", vspw)
    assert bench.validate() == []
    got = [(q.video, q.query_id, q.text, q.target, q.meta["stuff_id"], q.frames)
           for q in bench.queries()]
    a_frames = ("00000166", "00000167", "00000168")
    assert got == [(B, "wall", "the wall", (1,), 0, ("00001173", "00001174")),
                   (B, "food", "the food", (122,), 121, ("00001173", "00001174")),
                   (A, "wall", "the wall", (1,), 0, a_frames),
                   (A, "sky", "the sky", (29,), 28, a_frames)]
    assert load_benchmark("vspw", vspw, split="train").video_ids() == ["0_wHveSGjXyDY"]
    assert load_benchmark("vspw", vspw, split="test").video_ids() == []


def test_gt_is_raw_equal_id_plus_one_without_void(vspw):
    bench = load_benchmark("vspw", vspw)
    task = next(t for t in bench.tasks() if t.video == A)
    gt = bench.load_gt(task)
    wall, sky = task.queries
    fg, void = gt.target(wall, "00000166")
    assert void is None and fg.sum() == 200 and fg[:10, :20].all()
    assert gt.target(sky, "00000167")[0].sum() == 0
    decoded = gt.labels["00000166"]
    assert gt.target(sky, "00000166")[0].sum() == 60
    assert gt.labels["00000166"] is decoded and len(gt.digests) == 2  # decoded once, shared


# Hand values for the shifted predictions (GT moved one column right; r x c box -> (c-1)/(c+1)):
#   A/wall: 10x20 -> 19/21, 10x20 -> 19/21, 5x10 -> 9/11
#   A/sky : 6x10 -> 9/11, absent (both empty) -> 1, 6x10 -> 9/11
#   B/wall: 8x8 -> 7/9 twice;   B/food: 10x4 -> 3/5, absent -> 1 => 0.8
A_WALL = (19 / 21 + 19 / 21 + 9 / 11) / 3
A_SKY = (9 / 11 + 1 + 9 / 11) / 3
EXPECTED = ((A_WALL + 7 / 9) / 2 + A_SKY + 0.8) / 3


def test_shifted_hand_values_rem_layout_reverse_written(pooled, vspw, shifted_preds):
    result = evaluate(shifted_preds, "vspw", vspw, workers=2, progress=False)
    assert result.metrics["prediction_layout"] == "rem"
    assert result.metrics["J"] == pytest.approx(EXPECTED, abs=1e-12)
    units = result.units.set_index("unit")["J"]
    assert units[f"{A}/wall"] == pytest.approx(A_WALL, abs=1e-12)
    assert units[f"{B}/food"] == pytest.approx(0.8, abs=1e-12)
    assert result.metrics["n_classes"] == 3
    frames = result.frames.set_index(["unit", "frame"])["J"]
    assert frames[(f"{A}/wall", "00000168")] == pytest.approx(9 / 11)  # paired by name


def test_matches_literal_rem_on_random_predictions(vspw, tmp_path):
    def noisy(gt, rng):
        pred = (rng.random(gt.shape) < 0.3).astype(np.uint8)
        return np.where(rng.random(gt.shape) < 0.6, gt, pred)

    preds = write_predictions(tmp_path / "random", noisy)
    overall, per_unit = literal_rem_stuff(vspw, preds / "vspw_val")
    result = evaluate(preds, "vspw", vspw, workers=1, progress=False)
    assert result.units.set_index("unit")["J"].to_dict() == per_unit
    assert result.metrics["J"] == pytest.approx(overall, rel=1e-15)
    direct = evaluate(preds / "vspw_val", "vspw", vspw, workers=1, progress=False)
    assert direct.metrics["J"] == result.metrics["J"]


def test_standard_layout_perfect_and_cli(vspw, tmp_path):
    preds = write_predictions(tmp_path / "perfect", lambda gt, rng: gt * 255, layout="standard")
    run = CliRunner().invoke(main, ["eval", "--benchmark", "vspw", "--data", str(vspw),
                                    "--preds", str(preds), "--json", "--workers", "1",
                                    "--no-progress"])
    assert run.exit_code == 0, run.output
    summary = json.loads(run.output)
    assert summary["metrics"]["J"] == 1.0 and summary["metrics"]["prediction_layout"] == "standard"
    assert summary["counts"] == {"videos": 2, "queries": 4, "frames_scored": 10,
                                 "missing_frames_scored_empty": 0, "units_with_missing": 0}


# --- validation error paths ----------------------------------------------------------------
def _problems(preds, vspw, **kw) -> str:
    return evaluation_problems(preds, "vspw", vspw, **kw)


@pytest.fixture
def broken(tmp_path, shifted_preds) -> Path:
    copy = tmp_path / "preds"
    shutil.copytree(shifted_preds, copy)
    return copy


def test_missing_frame(vspw, broken):
    (broken / f"vspw_val/{A}/sky/pred/00000167.png").unlink()
    message = _problems(broken, vspw)
    assert f"{A}/sky/pred" in message and "00000167" in message
    result = evaluate(broken, "vspw", vspw, workers=1, progress=False, allow_missing=True)
    assert result.summary["counts"]["missing_frames_scored_empty"] == 1
    assert result.metrics["J"] == pytest.approx(EXPECTED, abs=1e-12)  # empty on empty GT: J = 1


def test_wrong_size_corrupt_png_unknown_video(vspw, broken):
    write_png(broken / f"vspw_val/{B}/wall/pred/00001173.png", np.zeros((17, 29), np.uint8))
    (broken / f"vspw_val/{A}/wall/pred/00000166.png").write_bytes(b"garbage")
    write_png(broken / "vspw_val/99_notAVideo00/wall/pred/00000001.png", np.zeros((3, 3)))
    message = _problems(broken, vspw)
    assert "size 29x17 (WxH), expected 17x29" in message
    assert "00000166.png" in message and "unreadable image" in message
    assert "99_notAVideo00" in message and "unknown folder" in message


def test_dataset_problems(tmp_path):
    data = build_vspw(tmp_path)
    (data / "data" / A / "mask" / "00000167.png").write_bytes(b"not a png")
    write_png(data / "data" / B / "mask" / "00001174.png", np.zeros((10, 10), np.uint8))
    (data / "val.txt").write_text(f"{A}\n{B}\n404_missingVideo\n")
    labels = json.loads((data / "label_num_dic_final.json").read_text())
    labels["sky"] = "30"
    (data / "label_num_dic_final.json").write_text(json.dumps(labels))
    text = "\n".join(str(p) for p in load_benchmark("vspw", data).validate())
    assert "00000167.png: unreadable image" in text
    assert "00001174.png: size 10x10 (WxH) differs from the video's 17x29" in text
    assert "mask folder of video '404_missingVideo' not found" in text
    assert "stuff class 'sky' should have raw id 29, found \"30\"" in text
    (data / "val.txt").unlink()
    assert "split list not found" in str(load_benchmark("vspw", data).validate()[0])


def test_frame_path_points_at_origin_frames(vspw):
    bench = load_benchmark("vspw", vspw)
    stem = next(iter(VIDEOS[A][1]))
    path = bench.frame_path(A, stem)
    assert path == vspw / "data" / A / "origin" / f"{stem}.jpg"
    assert path.is_file()


# --- --missing official: REM's query set (every prediction folder given) ---------------------
def test_official_mode_scores_every_prediction_folder_like_rem(vspw, broken):
    """A class absent from the GT is scored (J = 1 on empty frames), a GT class without a folder
    is skipped; both are counted and warned, and the numbers equal REM's on the same folder."""
    root = broken / "vspw_val"
    for stem in VIDEOS[A][1]:  # food never occurs in A: an empty prediction scores 1
        write_png(root / f"{A}/food/pred/{stem}.png", np.zeros(VIDEOS[A][0], np.uint8))
    for stem in VIDEOS[B][1]:  # sky never occurs in B: a non-empty prediction scores 0
        write_png(root / f"{B}/sky/pred/{stem}.png", np.ones(VIDEOS[B][0], np.uint8))
    shutil.rmtree(root / f"{B}/food")
    assert "unknown folder" in _problems(broken, vspw)  # strict: the GT query set only
    result = evaluate(broken, "vspw", vspw, workers=1, progress=False, missing="official")
    overall, per_unit = literal_rem_stuff(vspw, root)
    assert result.units.set_index("unit")["J"].to_dict() == per_unit
    assert result.metrics["J"] == pytest.approx(overall, rel=1e-15)
    assert per_unit[f"{A}/food"] == 1.0 and per_unit[f"{B}/sky"] == 0.0
    assert f"{B}/food" not in per_unit
    counts = result.summary["counts"]
    assert counts["queries_absent_from_gt"] == 2 and counts["gt_queries_without_predictions"] == 1
    warnings = "\n".join(result.summary["warnings"])
    assert f"{A}/food" in warnings and f"{B}/sky" in warnings and f"{B}/food" in warnings
    assert result.summary["options"]["missing"] == "official"
    write_png(root / f"{A}/not_a_class/pred/00000166.png", np.zeros((3, 3), np.uint8))
    message = evaluation_problems(broken, "vspw", vspw, missing="official")
    assert "not_a_class" in message and "unknown folder" in message
