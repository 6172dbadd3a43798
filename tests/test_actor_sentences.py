"""A2D-Sentences and JHMDB-Sentences: COCO-format ground truth written as MTTR's conversion
scripts write it, predictions as ReferFormer / VD-IT hand them to pycocotools, and exact equality
with a literal transcription of the MTTR evaluation (real torch and pycocotools)."""
from __future__ import annotations

import json
import zipfile

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image
from pycocotools.mask import area, encode

from problem_checks import evaluation_problems
from refvps.cli import main
from refvps.evaluation import evaluate
from refvps.loaders import load_benchmark

literal = pytest.importorskip("literal_mttr_eval", exc_type=ImportError)  # needs torch

A2D_GT = "a2d_sentences_test_annotations_in_coco_format.json"
JHMDB_GT = "jhmdb_sentences_gt_annotations_in_coco_format.json"


def rle_of(mask: np.ndarray) -> dict:
    rle = encode(np.asfortranarray(mask.astype(np.uint8)))
    rle["counts"] = rle["counts"].decode("ascii")
    return rle


def blob(rng, shape) -> np.ndarray:
    mask = np.zeros(shape, np.uint8)
    h, w = shape
    y0, x0 = rng.integers(0, h // 2), rng.integers(0, w // 2)
    mask[y0:y0 + rng.integers(2, h // 2 + 2), x0:x0 + rng.integers(2, w // 2 + 2)] = 1
    return mask


def perturb(rng, mask: np.ndarray, amount: float) -> np.ndarray:
    flip = rng.random(mask.shape) < amount
    return np.where(flip, 1 - mask, mask).astype(np.uint8)


def write_gt(folder, samples, with_bbox: bool) -> dict:
    """Samples = [(image_id, mask)], written like create_gt_in_coco_format.py."""
    images, annotations = [], []
    for n, (image_id, mask) in enumerate(samples, 1):
        images.append({"id": image_id, "height": mask.shape[0], "width": mask.shape[1]})
        rle = rle_of(mask)
        ann = {"id": n, "image_id": image_id, "category_id": 1, "segmentation": rle,
               "area": float(area(rle)), "iscrowd": 0}
        if with_bbox:
            ys, xs = np.nonzero(mask)
            ann["bbox"] = [int(xs.min()), int(ys.min()), int(xs.max() - xs.min()),
                           int(ys.max() - ys.min())] if len(xs) else [0, 0, 0, 0]
        annotations.append(ann)
    folder.mkdir(parents=True, exist_ok=True)
    return {"categories": [{"id": 1, "name": "dummy_class"}], "images": images,
          "annotations": annotations}


A2D_IDS = [("-4AzYKUjgiY", 12, 1), ("-4AzYKUjgiY", 12, 3), ("-4AzYKUjgiY", 40, 1),
           ("_a_f_b_", 7, 2), ("zzz9AAbb_-c", 3, 0), ("-4AzYKUjgiY", 26, 3)]
JHMDB_IDS = [("Aerial_Cartwheel_Tutorial_-_By_Jujimufu_cartwheel_f_nm_np1_ri_med_0", 16),
             ("brush_hair_f_nm_np1_ba_goo_2", 20), ("clap_u_cm_np1_fr_med_1", 9)]


def a2d_dataset(root, rng):
    samples = []
    for video, frame, instance in A2D_IDS:
        shape = (60, 80) if video != "zzz9AAbb_-c" else (24, 30)
        mask = blob(rng, shape) if frame != 3 else np.zeros(shape, np.uint8)  # one empty GT
        samples.append((f"v_{video}_f_{frame}_i_{instance}", mask))
    folder = root / "a2d-sentences"
    gt = write_gt(folder, samples, with_bbox=True)
    (folder / A2D_GT).write_text(json.dumps(gt))
    texts = [[f"the actor {i} on frame {f}", v, f, i] for v, f, i in A2D_IDS]
    (folder / "a2d_sentences_single_frame_test_annotations.json").write_text(json.dumps(texts))
    return folder, samples


def random_results(rng, samples, many: int = 0) -> list[dict]:
    """Several scored predictions per image, ties included, one non-dummy category."""
    results = []
    for n, (image_id, mask) in enumerate(samples):
        count = many if n == 0 and many else int(rng.integers(1, 5))
        for k in range(count):
            pred = perturb(rng, mask if k % 2 == 0 else blob(rng, mask.shape), rng.random() * 0.3)
            score = float(np.float32(rng.choice([0.25, 0.5, rng.random()])))
            results.append({"image_id": image_id, "category_id": 1 if k != 2 else 2,
                            "segmentation": rle_of(pred), "score": score})
    rng.shuffle(results)
    return results


def assert_same(metrics: dict, expected: dict) -> None:
    names = {"mAP": "mAP 0.5:0.95", "AP50": "AP 0.5", "AP75": "AP 0.75",
             "AP_S": "AP 0.5:0.95 S", "AP_M": "AP 0.5:0.95 M", "AP_L": "AP 0.5:0.95 L",
             "oIoU": "overall_iou", "mIoU": "mean_iou",
             **{f"P@{k}": f"P@{k}" for k in (0.5, 0.6, 0.7, 0.8, 0.9)}}
    assert {ours: metrics[ours] for ours in names} == \
        {ours: float(expected[theirs]) for ours, theirs in names.items()}


def score(preds, name, data, **kwargs):
    return evaluate(preds, name, data, workers=1, progress=False, **kwargs)


@pytest.mark.parametrize("seed", [3, 14])
def test_a2d_json_results_match_literal_mttr_evaluation(tmp_path, seed):
    rng = np.random.default_rng(seed)
    folder, samples = a2d_dataset(tmp_path, rng)
    results = random_results(rng, samples, many=104)  # over COCOeval's 100 per image
    preds = tmp_path / "preds"
    preds.mkdir()
    (preds / "coco_results.json").write_text(json.dumps(results))
    result = score(preds, "a2d-sentences", tmp_path)
    assert_same(result.metrics, literal.evaluate_a2d(folder / A2D_GT, results))
    assert result.metrics["prediction_form"] == "coco-json"
    assert result.metrics["n_samples"] == len(samples)
    units = result.units.set_index("unit")
    assert units.loc["-4AzYKUjgiY/3", "text"] == "the actor 3 on frame 12"
    assert list(result.frames.query("unit == '-4AzYKUjgiY/3'")["frame"]) == ["00012", "00026"]


def test_a2d_png_predictions_score_like_one_result_per_image(tmp_path):
    rng = np.random.default_rng(5)
    folder, samples = a2d_dataset(tmp_path, rng)
    preds, results = tmp_path / "pngs", []
    for (video, frame, instance), (image_id, mask) in zip(A2D_IDS, samples):
        pred = perturb(rng, mask, 0.2) * 255
        path = preds / video / str(instance) / f"{frame:05d}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(pred.astype(np.uint8)).save(path)
        results.append({"image_id": image_id, "category_id": 1, "score": 1.0,
                        "segmentation": rle_of(pred > 0)})
    result = score(preds, "a2d-sentences", folder)  # --data = the a2d_sentences folder itself
    assert result.metrics["prediction_form"] == "png"
    assert_same(result.metrics, literal.evaluate_a2d(folder / A2D_GT, results))


def test_jhmdb_hand_values_and_literal(tmp_path):
    """Perfect on two samples, empty on one: IoU 1, 1 and 1e-6 / (U + 1e-6) in float32."""
    rng = np.random.default_rng(9)
    samples = [(f"v_{video}_f_{frame}", blob(rng, (48, 64))) for video, frame in JHMDB_IDS]
    folder = tmp_path / "jhmdb-sentences"
    (folder / JHMDB_GT).write_text(json.dumps(write_gt(folder, samples, with_bbox=False)))
    meta = [[v, f"/x/Rename_Images/{v}/{f:05d}.png", "/x/puppet_mask.mat", [0], f"text {v}"]
            for v, f in JHMDB_IDS]
    (folder / "jhmdb_sentences_samples_metadata.json").write_text(json.dumps(meta))
    bench = load_benchmark("jhmdb-sentences", tmp_path)
    assert [(q.video, q.query_id, q.frames) for q in bench.queries()][0] == \
        (JHMDB_IDS[0][0], "0", ("00016",))  # "_f_" inside the video name
    assert bench.queries()[1].text == f"text {JHMDB_IDS[1][0]}"
    results = [{"image_id": i, "category_id": 1, "score": 0.9,
                "segmentation": rle_of(m if n < 2 else np.zeros_like(m))}
               for n, (i, m) in enumerate(samples)]
    preds = tmp_path / "preds.zip"
    with zipfile.ZipFile(preds, "w") as zf:
        zf.writestr("results.json", json.dumps(results))
    result = score(preds, "jhmdb-sentences", tmp_path)
    union = int(samples[2][1].sum())
    empty = float((np.float32(0) + np.float32(1e-6)) / (np.float32(union) + np.float32(1e-6)))
    assert result.metrics["mIoU"] == np.mean([1.0, 1.0, empty])
    assert result.metrics["oIoU"] == (samples[0][1].sum() + samples[1][1].sum()) / \
        (samples[0][1].sum() + samples[1][1].sum() + union)
    assert result.metrics["P@0.9"] == 2 / 3
    assert_same(result.metrics, literal.evaluate_a2d(folder / JHMDB_GT, results))


def test_problems_are_listed_at_once(tmp_path):
    rng = np.random.default_rng(1)
    folder, samples = a2d_dataset(tmp_path, rng)
    results = random_results(rng, samples)
    results = [r for r in results if r["image_id"] != samples[1][0]]
    results.append({"image_id": "v_nope_f_1_i_1", "category_id": 1, "score": 1.0,
                    "segmentation": rle_of(samples[0][1])})
    results.append({"image_id": samples[0][0], "category_id": 1, "score": 1.0,
                    "segmentation": rle_of(np.zeros((5, 5)))})
    results.append({"image_id": samples[0][0], "segmentation": rle_of(samples[0][1]),
                    "score": 0.1})
    preds = tmp_path / "preds"
    preds.mkdir()
    (preds / "r.json").write_text(json.dumps(results))
    message = evaluation_problems(preds, "a2d-sentences", tmp_path)
    assert f"no prediction for image {samples[1][0]}" in message
    assert "image_id 'v_nope_f_1_i_1' is not in the ground truth" in message
    assert "segmentation must be a compressed RLE of size [60, 80]" in message
    assert "category_id missing" in message
    pngs = tmp_path / "pngs"
    (pngs / "-4AzYKUjgiY" / "1").mkdir(parents=True)
    Image.fromarray(np.zeros((5, 5), np.uint8)).save(pngs / "-4AzYKUjgiY" / "1" / "00012.png")
    message = evaluation_problems(pngs, "a2d-sentences", tmp_path)
    assert "size 5x5 (WxH), expected 80x60" in message and "folder missing" in message


def test_cli_and_listing(tmp_path):
    rng = np.random.default_rng(2)
    folder, samples = a2d_dataset(tmp_path, rng)
    preds = tmp_path / "preds"
    preds.mkdir()
    (preds / "r.json").write_text(json.dumps(random_results(rng, samples)))
    run = CliRunner().invoke(main, ["eval", "-b", "a2d-sentences", "--data", str(tmp_path),
                                    "--preds", str(preds), "--no-progress", "--no-record"])
    assert run.exit_code == 0, run.output
    assert "mAP" in run.output and "oIoU" in run.output
    listing = CliRunner().invoke(main, ["benchmarks", "--data", str(tmp_path), "--json"])
    record = next(r for r in json.loads(listing.output) if r["benchmark"] == "a2d-sentences")
    assert record["splits"][0]["queries"] == 4 and record["splits"][0]["videos"] == 3


def test_published_rows_as_printed_in_vd_it(tmp_path):
    from refvps.leaderboard.table import build_leaderboard

    a2d, _ = build_leaderboard("a2d-sentences", results=tmp_path, percent=True)
    assert list(a2d.columns[a2d.columns.isin(["mAP", "oIoU", "mIoU"])]) == ["mAP", "oIoU", "mIoU"]
    top = a2d.iloc[0]
    assert (top["model"], top["mAP"], top["oIoU"], top["mIoU"]) == ("VD-IT", 61.4, 81.5, 73.2)
    jhmdb, _ = build_leaderboard("jhmdb-sentences", results=tmp_path, percent=True)
    claw = jhmdb[jhmdb["model"] == "ClawCraneNet"].iloc[0]  # VD-IT Table 2 prints no mAP for it
    assert np.isnan(claw["mAP"]) and (claw["oIoU"], claw["mIoU"]) == (64.4, 65.6)
    assert len(jhmdb) == 11 and jhmdb["reference"].eq("VD-IT Table 2").all()
