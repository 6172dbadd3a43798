"""Ref-YouTube-VOS: splits (valid = valid meta minus test meta), train scoring, validation."""
from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
from PIL import Image

import _official_mevis as official
from _mevis_data import shift_right
from _ytvos_data import TRAIN, build_ytvos, gt_mask, write_train_predictions
from refvps.errors import RefvpsError, ValidationError
from refvps.evaluation import evaluate
from refvps.loaders import load_benchmark


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    base = tmp_path_factory.mktemp("ytvos")
    build_ytvos(base)
    return base


def run(preds, root, split="train", **kwargs):
    return evaluate(preds, "ref-ytvos", root, split, workers=1, progress=False, **kwargs)


def test_splits_and_queries(root):
    valid = load_benchmark("ref-ytvos", root, "valid")
    assert [t.video for t in valid.tasks()] == ["f0e1d2c3b4"]  # 9a8b7c6d5e is in the test meta
    assert [q.query_id for q in valid.queries()] == ["0", "2"]
    assert valid.queries()[1].text == "the dog running" and valid.queries()[1].target == ()
    assert [t.video for t in load_benchmark("ref-ytvos", root, "test").tasks()] == ["9a8b7c6d5e"]
    train = load_benchmark("ref-ytvos", root, "train")
    assert train.validate() == []
    queries = {q.unit: q for q in train.queries()}
    assert list(queries) == ["0a1b2c3d4e/0", "0a1b2c3d4e/1", "0a1b2c3d4e/3", "1b2c3d4e5f/0"]
    first = queries["0a1b2c3d4e/0"]
    assert first.text == "a penguin on the left"
    assert first.target == (1,) and first.meta == {"obj_id": "1", "category": "penguin"}
    assert queries["0a1b2c3d4e/3"].frames == ("00000", "00005", "00010")


def test_gt_is_the_palette_object(root):
    bench = load_benchmark("ref-ytvos", root, "train")
    task = bench.tasks()[0]
    gt = bench.load_gt(task)
    for query in task.queries:
        for frame in query.frames:
            fg, void = gt.target(query, frame)
            assert void is None
            np.testing.assert_array_equal(fg, gt_mask(task.video, query.meta["obj_id"], frame))
    assert not gt.target(task.queries[2], "00000")[0].any()  # object 2 appears on 00010 only


def literal_scores(preds, root) -> dict[str, tuple[float, float]]:
    """MeViS-style literal scoring with GT = palette PNG == int(obj_id)."""
    out = {}
    for video, (size, frames, _objects, exps) in TRAIN.items():
        for exp_id, (_text, obj_id) in exps.items():
            gt = np.zeros((len(frames), *size), np.uint8)
            pr = np.zeros((len(frames), *size), np.uint8)
            for t, frame in enumerate(frames):
                labels = np.array(Image.open(root / "ref-youtube-vos" / "train" / "Annotations" /
                                             video / f"{frame}.png"))
                gt[t] = labels == int(obj_id)
                pr[t] = np.array(Image.open(preds / video / exp_id / f"{frame}.png"))
            out[f"{video}/{exp_id}"] = (official.db_eval_iou(gt, pr).mean(),
                                        official.db_eval_boundary(gt, pr).mean())
    return out


def test_train_scores(root):
    perfect = run(write_train_predictions(root / "preds" / "perfect"), root)
    assert perfect.metrics["J&F"] == 1.0
    empty = run(write_train_predictions(root / "preds" / "empty", np.zeros_like), root)
    assert empty.metrics["J"] == pytest.approx((0 + 0 + 2 / 3 + 0) / 4)  # by hand
    assert empty.metrics["F"] == pytest.approx((0 + 0 + 2 / 3 + 0) / 4)
    shifted_dir = write_train_predictions(root / "preds" / "shifted", shift_right)
    shifted = run(shifted_dir, root)
    units = dict(zip(shifted.units["unit"], zip(shifted.units["J"], shifted.units["F"])))
    assert units["0a1b2c3d4e/0"][0] == pytest.approx(9 / 11)  # 10 x 10 box, one column off
    expected = literal_scores(shifted_dir, root)
    for unit, (j, f) in expected.items():
        assert units[unit] == (pytest.approx(j, abs=1e-12), pytest.approx(f, abs=1e-12))
    assert shifted.metrics["J&F"] == pytest.approx(
        (np.mean([v[0] for v in expected.values()]) + np.mean([v[1] for v in expected.values()]))
        / 2, abs=1e-12)
    assert set(shifted.tables["categories"]["category"]) == {"penguin", "seal"}


def test_server_splits_point_to_submit(root, tmp_path):
    for split in ("valid", None):
        with pytest.raises(RefvpsError, match="refvps submit --benchmark ref-ytvos --split valid"):
            evaluate(tmp_path, "ref-ytvos", root, split, progress=False)
    with pytest.raises(RefvpsError, match="not supported by ref-ytvos"):
        run(tmp_path, root, missing="official")


def test_validation_problems(root, tmp_path):
    copy = tmp_path / "data"
    shutil.copytree(root / "ref-youtube-vos", copy / "ref-youtube-vos")
    base = copy / "ref-youtube-vos"
    meta_path = base / "meta_expressions" / "train" / "meta_expressions.json"
    meta = json.loads(meta_path.read_text())
    meta["videos"]["0a1b2c3d4e"]["expressions"]["1"]["obj_id"] = "one"
    meta["videos"]["1b2c3d4e5f"]["frames"] = []
    meta_path.write_text(json.dumps(meta))
    (base / "train" / "Annotations" / "0a1b2c3d4e" / "00005.png").unlink()
    problems = [p.what for p in load_benchmark("ref-ytvos", copy, "train").validate()]
    assert problems == ["must be an integer string, got \"one\"",
                        "1 listed frame(s) have no annotation PNG, e.g. 00005.png",
                        "must be a non-empty list of frame names, got []"]
    (base / "meta_expressions" / "test" / "meta_expressions.json").unlink()
    problems = load_benchmark("ref-ytvos", copy, "valid").validate()
    assert [p.what for p in problems] == ["file not found"]
    assert problems[0].where.endswith("test/meta_expressions.json")
    with pytest.raises(ValidationError, match="3 problem"):
        run(write_train_predictions(tmp_path / "p"), copy)
