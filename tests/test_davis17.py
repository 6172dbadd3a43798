"""DAVIS-2017 semi-supervised VOS: a DAVIS tree built in code, hand values and exact equality
with a literal transcription of davis2017-evaluation's semi-supervised task."""
from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

import literal_davis_semisupervised as literal
from problem_checks import evaluation_problems
from refvps.cli import main
from refvps.evaluation import evaluate
from refvps.loaders import load_benchmark
from refvps.masks import write_label_mask

FRAMES = [f"{t:05d}" for t in range(6)]


def box_labels(t: int) -> np.ndarray:
    """bear: object 1 a 10 x 12 box moving right, object 2 absent on frame 1, void stripe."""
    labels = np.zeros((30, 40), np.uint8)
    labels[5:15, 2 + t:14 + t] = 1
    if t != 1:
        labels[20:26, 20:30] = 2
    labels[:, 39] = 255
    return labels


def make_davis(root, sequences: dict, val=None) -> "Path":
    davis = root / "davis-2017" / "DAVIS"
    for seq, frames in sequences.items():
        for t, labels in enumerate(frames):
            write_label_mask(davis / "Annotations/480p" / seq / f"{t:05d}.png", labels)
            jpeg = davis / "JPEGImages/480p" / seq / f"{t:05d}.jpg"
            jpeg.parent.mkdir(parents=True, exist_ok=True)
            Image.new("RGB", labels.shape[::-1], (9 * t, 40, 90)).save(jpeg)
    sets = davis / "ImageSets/2017"
    sets.mkdir(parents=True)
    (sets / "val.txt").write_text("\n".join(val or sequences) + "\n")
    (sets / "train.txt").write_text("")
    return davis


def write_preds(folder, seq: str, frames) -> None:
    for t, labels in enumerate(frames):
        write_label_mask(folder / seq / f"{t:05d}.png", labels)


@pytest.fixture
def bear(tmp_path):
    return make_davis(tmp_path, {"bear": [box_labels(t) for t in range(6)]})


def score(preds, data, **kwargs):
    return evaluate(preds, "davis17", data, workers=1, progress=False, **kwargs)


def test_first_and_last_frames_are_not_scored_and_void_is_background(bear, tmp_path):
    preds = tmp_path / "preds"
    frames = [np.where(box_labels(t) == 255, 0, box_labels(t)) for t in range(1, 5)]
    for t, labels in zip(range(1, 5), frames):
        write_label_mask(preds / "bear" / f"{t:05d}.png", labels)  # no 00000 / 00005 needed
    perfect = score(preds, bear.parent.parent)
    assert perfect.metrics["J&F"] == 1.0 and perfect.summary["counts"]["frames_scored"] == 2 * 4
    assert list(perfect.units["unit"]) == ["bear/1", "bear/2"]
    # object 1 also painted over the void column on frame 1: void is background here, so
    # J = 120 / (120 + 10) on that frame (the unsupervised task would ignore those pixels)
    spill = np.where(box_labels(1) == 255, 1, box_labels(1))
    spill[:, 39] = 0
    spill[5:15, 39] = 1
    write_label_mask(preds / "bear" / "00001.png", spill)
    result = score(preds, bear.parent.parent)
    frame_j = result.frames.set_index(["unit", "frame"])["J"]
    assert frame_j[("bear/1", "00001")] == 120 / 130
    assert result.units.set_index("unit").loc["bear/1", "J"] == (120 / 130 + 3) / 4


def test_matches_literal_official_evaluation_on_random_sequences(tmp_path):
    rng = np.random.default_rng(2017)
    sequences, predictions = {}, {}
    for s, (n_obj, n_frames, shape) in enumerate([(3, 7, (24, 31)), (1, 5, (17, 20)),
                                                  (2, 9, (40, 28))]):
        gt = []
        for t in range(n_frames):
            labels = rng.integers(0, n_obj + 1, shape).astype(np.uint8)
            labels[rng.random(shape) < 0.05] = 255
            if t == 0:
                labels[0, 0] = n_obj  # the first frame holds every object
            elif t == 2:
                labels[labels == 1] = 0  # an object absent from a frame
            gt.append(labels)
        sequences[f"seq-{s}"] = gt
        preds = []
        for t, labels in enumerate(gt):
            pred = np.where(rng.random(shape) < 0.7, np.where(labels == 255, 0, labels),
                            rng.integers(0, n_obj + 1, shape)).astype(np.uint8)
            if s == 1:
                pred[:] = 0  # no object predicted at all: zero padding
            if s == 2 and t == 4:
                pred[pred == 2] = 0  # the highest id absent from a frame
            preds.append(pred)
        predictions[f"seq-{s}"] = preds
    davis = make_davis(tmp_path, sequences)
    for seq, frames in predictions.items():
        write_preds(tmp_path / "preds", seq, frames)
    expected, per_object = literal.semisupervised(davis, tmp_path / "preds")
    result = score(tmp_path / "preds", davis)
    m = result.metrics
    assert (m["J&F"], m["J"], m["J_recall"], m["J_decay"], m["F"], m["F_recall"], m["F_decay"]) \
        == (expected["J&F"], expected["JM"], expected["JR"], expected["JD"], expected["FM"],
            expected["FR"], expected["FD"])
    units = result.units.set_index("official_label")
    assert {label: (units.loc[label, "J"], units.loc[label, "F"]) for label in units.index} \
        == per_object


def test_problems_are_listed_at_once(bear, tmp_path):
    preds = tmp_path / "preds"
    write_preds(preds, "bear", [box_labels(t) % 255 for t in range(6)])
    (preds / "bear" / "00003.png").unlink()
    write_label_mask(preds / "bear" / "00002.png", np.full((30, 40), 3, np.uint8))
    write_label_mask(preds / "bear" / "00004.png", np.zeros((10, 10), np.uint8))
    write_label_mask(preds / "goat" / "00001.png", np.zeros((30, 40), np.uint8))
    message = evaluation_problems(preds, "davis17", bear)
    assert "missing 1 required frame(s): 00003" in message
    assert "object id 3 but sequence bear has 2 object(s)" in message
    assert "size 10x10 (WxH), expected 40x30" in message
    assert "goat: unknown folder" in message


def test_dataset_problems_and_data_root_forms(bear, tmp_path):
    assert load_benchmark("davis17", bear).davis_dir == bear  # --data = the DAVIS folder
    assert load_benchmark("davis17", bear.parent.parent).davis_dir == bear
    short = make_davis(tmp_path / "short", {"tiny": [box_labels(0), box_labels(1)]})
    problems = load_benchmark("davis17", short).validate()
    assert any("needs at least 3" in p.what for p in problems)


def test_cli_eval_and_benchmarks_listing(bear, tmp_path):
    preds = tmp_path / "preds"
    write_preds(preds, "bear", [np.where(box_labels(t) == 255, 0, box_labels(t))
                                for t in range(6)])
    run = CliRunner().invoke(main, ["eval", "-b", "davis17", "--data", str(bear), "--preds",
                                    str(preds), "--json", "--no-progress", "--no-record"])
    assert run.exit_code == 0, run.output
    assert json.loads(run.output)["metrics"]["J&F"] == 1.0
    listing = CliRunner().invoke(main, ["benchmarks", "--data", str(bear.parent.parent),
                                        "--json"])
    record = next(r for r in json.loads(listing.output) if r["benchmark"] == "davis17")
    assert record["splits"][0] == {"split": "val", "default": True, "scoring": "local",
                                   "videos": 1, "queries": 2, "status": "ok"}


def test_published_rows_as_printed_in_uniref_pp(tmp_path):
    from refvps.leaderboard.table import build_leaderboard

    table, _ = build_leaderboard("davis17", results=tmp_path, percent=True)
    rows = table.set_index("printed_as")
    assert (rows.loc["UniRef++-L", "J&F"], rows.loc["UniRef++-L", "J"],
            rows.loc["UniRef++-L", "F"]) == (83.9, 80.8, 89.8)  # UniRef++ Table 5
    assert rows.loc["XMem", "J&F"] == 86.2 and rows.loc["XMem", "rank"] == 1
    assert rows.loc["SAM [44] + UniRef", "J&F"] == 78.4  # Table 8 prints J&F only
    assert "(J+F)/2" in rows.loc["UniRef++-R50", "notes"]
