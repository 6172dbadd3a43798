"""VSPW semantic segmentation (mIoU, VC8, VC16): a raw VSPW tree built in code, and exact
equality with a literal transcription of VSPW_code run on the README-converted GT."""
from __future__ import annotations

import json
import shutil
import warnings

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

import literal_vspw_semantic as literal
from problem_checks import evaluation_problems
from refvps.cli import main
from refvps.evaluation import evaluate
from refvps.formats import voc_palette

VIDEOS = {"12_aaaaaaaaaaa": 20, "3_-b_bbbbbbbb": 10, "7_ccccccccccc": 5}  # frames per video
SHAPE = (18, 22)


def write_png(path, array, palette=True):
    path.parent.mkdir(parents=True, exist_ok=True)
    image = Image.fromarray(array.astype(np.uint8))
    if palette:
        image.putpalette(voc_palette().ravel().tolist())
    image.save(path)


def raw_video(rng, n_frames):
    """Blocky raw labels that mostly persist over time: 1..124, others 0, void 255, stray 253."""
    base = rng.choice([0, 1, 2, 29, 61, 124, 255], size=(3, 4))
    frames = []
    for _ in range(n_frames):
        change = rng.random(base.shape) < 0.15
        base = np.where(change, rng.choice([0, 1, 2, 29, 61, 124, 255, 253], size=base.shape),
                        base)
        frames.append(np.kron(base, np.ones((6, 6), int))[:SHAPE[0], :SHAPE[1]].astype(np.uint8))
    return frames


def readme_mapping(raw):
    label = raw.copy()
    label[label == 0] = 255
    label = label - 1
    label[label == 254] = 255
    return label


@pytest.fixture
def dataset(tmp_path):
    rng = np.random.default_rng(124)
    raw_root, converted = tmp_path / "VSPW_480p", tmp_path / "converted"
    gts = {}
    for v, (video, n) in enumerate(VIDEOS.items()):
        gts[video] = raw_video(rng, n)
        for t, raw in enumerate(gts[video]):
            stem = f"{t + 100:08d}"
            write_png(raw_root / "data" / video / "mask" / f"{stem}.png", raw, palette=v != 1)
            write_png(converted / "data" / video / "mask" / f"{stem}.png", readme_mapping(raw))
    for root in (raw_root, converted):
        (root / "val.txt").write_text("".join(f"{video}\n" for video in VIDEOS))
    return raw_root, converted, gts


def write_predictions(folder, gts, rng, noise=0.2):
    for video, frames in gts.items():
        for t, raw in enumerate(frames):
            classes = readme_mapping(raw)
            pred = np.where(classes < 124, classes, 255)
            flip = rng.random(SHAPE) < noise
            pred = np.where(flip, rng.integers(0, 124, SHAPE), pred)
            write_png(folder / video / f"{t + 100:08d}.png", pred)
    return folder


def score(preds, data, **kwargs):
    return evaluate(preds, "vspw-semantic", data, workers=1, progress=False, **kwargs)


@pytest.mark.parametrize("noise", [0.0, 0.03, 0.3])
def test_matches_literal_vspw_code(dataset, tmp_path, noise):
    raw_root, converted, gts = dataset
    preds = write_predictions(tmp_path / "preds", gts, np.random.default_rng(int(noise * 100)),
                              noise)
    result = score(preds, raw_root)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        acc, acc_class, miou, fwiou = literal.miou(converted, preds)
        vc8, vc16 = literal.vc(converted, preds, 8), literal.vc(converted, preds, 16)
    m = result.metrics
    assert (m["mIoU"], m["pixel_acc"], m["class_acc"], m["fwIoU"], m["VC8"], m["VC16"]) == \
        (miou, acc, acc_class, fwiou, vc8, vc16)
    assert (m["VC8_windows"], m["VC16_windows"]) == (12 + 2, 4)  # 20 - 8, 10 - 8; 20 - 16
    if noise == 0.0:
        assert m["mIoU"] == 1.0 and m["VC8"] == 1.0 and m["VC16"] == 1.0
    videos = result.tables["videos"].set_index("video")
    assert np.isnan(videos.loc["7_ccccccccccc", "VC8"])  # 5 frames: no window


def test_out_of_range_predictions_are_problems(dataset, tmp_path):
    raw_root, _converted, gts = dataset
    preds = write_predictions(tmp_path / "preds", gts, np.random.default_rng(0))
    video = "12_aaaaaaaaaaa"
    classes = readme_mapping(gts[video][3])
    bad = np.where(classes < 124, classes, 255)
    bad[classes == classes[classes < 124][0]] = 124  # a 125th class on labelled pixels
    write_png(preds / video / "00000103.png", bad)
    classes = readme_mapping(gts[video][4])
    ok = np.where(classes < 124, classes, 200)  # out of range only on unlabelled pixels: fine
    write_png(preds / video / "00000104.png", ok)
    (preds / "3_-b_bbbbbbbb" / "00000101.png").unlink()
    write_png(preds / "7_ccccccccccc" / "00000100.png", np.zeros((5, 5)))
    message = evaluation_problems(preds, "vspw-semantic", raw_root)
    assert "00000103.png: class id(s) 124 outside 0..123 on labelled pixels" in message
    assert "00000104" not in message
    assert "missing 1 required frame(s): 00000101" in message
    assert "size 5x5 (WxH), expected 22x18" in message
    assert "--allow-missing" not in message  # every frame is needed


def test_cli_and_listing(dataset, tmp_path):
    raw_root, _converted, gts = dataset
    preds = write_predictions(tmp_path / "preds", gts, np.random.default_rng(1))
    run = CliRunner().invoke(main, ["eval", "-b", "vspw-semantic", "--data", str(raw_root),
                                    "--preds", str(preds), "--json", "--no-progress",
                                    "--no-record", "--out", str(tmp_path / "out")])
    assert run.exit_code == 0, run.output
    summary = json.loads(run.output)
    assert set(summary["headline"]) == {"mIoU", "VC8", "VC16"}
    classes = (tmp_path / "out" / "classes.csv").read_text()
    assert classes.startswith("class_id,class,IoU,gt_pixels,pred_pixels,intersection")
    listing = CliRunner().invoke(main, ["benchmarks", "--data", str(raw_root), "--json"])
    record = next(r for r in json.loads(listing.output) if r["benchmark"] == "vspw-semantic")
    assert record["splits"][0]["videos"] == 3 and record["unit"] == "video"
