"""BURST (REM referring protocol): a TAO/BURST tree built in code after dataset-formats §9.5.

Hand-computed expected scores are derived in the docstrings; a slow literal transcription of
REM's ``burst/eval_burst.py`` logic (below, ``literal_rem_burst``) checks random predictions.
"""
from __future__ import annotations

import json
import shutil
from collections import defaultdict
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image
from pycocotools import mask as mask_utils

from literal_davis import literal_j_stack
from problem_checks import evaluation_problems
from refvps.cli import main
from refvps.evaluation import evaluate
from refvps.formats import voc_palette
from refvps.loaders import load_benchmark
from refvps.loaders.burst import Burst, frame_stem

MONITOR = "monitor_(computer_equipment) computer_monitor"
CATEGORIES = [(34, "backpack"), (95, "bicycle"), (136, "bow_(weapon)"), (708, MONITOR),
              (805, "baby")]
A_FRAMES = [f"frame{i:04d}.jpg" for i in range(1, 7)]
B_FRAMES = [f"ring_front_center_3159660704442975{i:02d}.jpg" for i in range(6)]

# (split, dataset, seq_name, (H, W), annotated paths, {track: category},
#  per annotated frame {track: (y0, y1, x0, x1)})
SEQUENCES = [
    ("val", "YFCC100M", "v_0123456789abcdef", (31, 45), [A_FRAMES[0], A_FRAMES[3]],
     {"1": 805, "2": 805, "3": 708},
     [{"1": (2, 10, 3, 13), "2": (20, 25, 30, 40)},
      {"1": (5, 15, 5, 15), "3": (0, 4, 40, 45)}]),
    ("test", "ArgoVerse", "6f153f9c-edc5-389f-ac6f-40705c30d97e", (29, 17),
     [B_FRAMES[0], B_FRAMES[1]], {"1": 136},
     [{"1": (10, 20, 4, 12)}, {}]),
    ("test", "HACS", "Kayaking_v__A-EdoCW8dA_scene_0_967-2279", (20, 30),
     ["frame0001.jpg", "frame0031.jpg"], {"7": 805, "8": 136},
     [{"7": (0, 10, 0, 10)}, {"8": (10, 15, 20, 30)}]),
]


def box_mask(shape, box) -> np.ndarray:
    mask = np.zeros(shape, np.uint8)
    y0, y1, x0, x1 = box
    mask[y0:y1, x0:x1] = 1
    return mask


def rle_string(mask: np.ndarray) -> str:
    return mask_utils.encode(np.asfortranarray(mask))["counts"].decode("ascii")


def sequence_record(index, dataset, seq_name, shape, paths, tracks, boxes) -> dict:
    """A BURST sequence record in the official key order (values as in ANNOTATION_FORMAT)."""
    all_paths = A_FRAMES if dataset == "YFCC100M" else B_FRAMES if dataset == "ArgoVerse" \
        else [f"frame{i:04d}.jpg" for i in range(1, 32)]
    return {"id": index, "width": shape[1], "height": shape[0], "neg_category_ids": [95],
            "not_exhaustive_category_ids": [34], "dataset": dataset, "seq_name": seq_name,
            "fps": 30, "all_image_paths": all_paths, "annotated_image_paths": paths,
            "track_category_ids": tracks,
            "segmentations": [{track: {"rle": rle_string(box_mask(shape, box)), "is_gt": True,
                                       "score": 1.0} for track, box in frame.items()}
                              for frame in boxes]}


def build_burst(root: Path) -> Path:
    """Write ``root/TAO`` (annotations_burst + a few frames) and return it."""
    tao = root / "TAO"
    categories = [{"id": cid, "name": name, "synset": f"{name}.n.01", "def": "",
                   "synonyms": [name]} for cid, name in CATEGORIES]
    for split in ("val", "test"):
        records = [sequence_record(i, *s[1:]) for i, s in enumerate(SEQUENCES) if s[0] == split]
        # the test file names 805 "person": REM takes every name from the val file
        cats = categories if split == "val" else [
            dict(c, name="person") if c["id"] == 805 else c for c in categories]
        folder = tao / "annotations_burst" / split
        folder.mkdir(parents=True)
        with open(folder / "all_classes.json", "w") as handle:
            json.dump({"split": split, "categories": cats, "sequences": records}, handle)
    first = tao / "annotations_burst" / "val" / "first_frame_annotations.json"
    first.write_text(json.dumps({"sequences": [{"segmentations": [
        {"1": {"rle": "", "bbox": [3, 2, 10, 8], "point": [5, 4]},
         "2": {"rle": "", "bbox": [30, 20, 10, 5], "point": {"x": 33, "y": 22}}}]}]}))
    frames = tao / "frames" / "val" / "YFCC100M" / "v_0123456789abcdef"
    frames.mkdir(parents=True)
    for t, name in enumerate(A_FRAMES):
        Image.new("RGB", (45, 31), (20 * t, 0, 128)).save(frames / name, quality=95)
    (frames / "info.json").write_text("{}")
    return tao


def write_pred(path: Path, mask: np.ndarray, palette: bool = True) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    image = Image.fromarray(mask.astype(np.uint8))
    if palette:
        image.putpalette(voc_palette().ravel().tolist())
    image.save(path)


def gt_union(shape, boxes: dict, tracks: dict, category: int) -> np.ndarray:
    mask = np.zeros(shape, np.uint8)
    for track, box in boxes.items():
        if tracks[track] == category:
            mask |= box_mask(shape, box)
    return mask


def shifted(mask: np.ndarray) -> np.ndarray:
    """The mask moved one column to the right (the last column falls off)."""
    out = np.zeros_like(mask)
    out[:, 1:] = mask[:, :-1]
    return out


def write_predictions(out: Path, make, layout: str = "rem") -> Path:
    """One PNG per (sequence, category, annotated frame); ``make(gt, rng) -> pred``."""
    rng = np.random.default_rng(7)
    names = dict(CATEGORIES)
    for _split, dataset, seq, shape, paths, tracks, boxes in SEQUENCES:
        for category in dict.fromkeys(tracks.values()):
            for path, frame_boxes in zip(paths, boxes):
                pred = make(gt_union(shape, frame_boxes, tracks, category), rng)
                stem = path.split(".")[0]
                if layout == "rem":
                    rel = f"burst_valtest/{dataset}/{seq}/pred/{category}_{names[category]}/{stem}.png"
                else:
                    rel = f"{dataset}_{seq}/{category}/{stem}.png"
                write_pred(out / rel, pred)
    return out


# --- literal transcription of REM burst/eval_burst.py (slow, for checking only) ------------
def literal_rem_burst(tao: Path, result_dir: Path) -> float:
    val_dict = json.loads((tao / "annotations_burst/val/all_classes.json").read_text())
    test_dict = json.loads((tao / "annotations_burst/test/all_classes.json").read_text())
    seqs = test_dict["sequences"] + val_dict["sequences"]
    id2cls = {c["id"]: c["name"] for c in val_dict["categories"]}
    vid2cat = defaultdict(dict)
    for seq in seqs:
        local = defaultdict(list)
        for t, c in seq["track_category_ids"].items():
            local[c].append(t)
        vid2cat[seq["seq_name"]] = local
    vid2cagg = defaultdict(dict)
    for seq in seqs:
        segs = seq["segmentations"]
        cid2agg = defaultdict(list)
        for c_id, tlist in vid2cat[seq["seq_name"]].items():
            c_agg = [[] for _ in range(len(segs))]
            for t in tlist:
                for f in range(len(segs)):
                    if str(t) in segs[f]:
                        c_agg[f].append(segs[f][str(t)]["rle"])
            cid2agg[c_id] = c_agg
        vid2cagg[seq["seq_name"]] = cid2agg
    cls2iou = defaultdict(list)
    for seq in seqs:
        frames = seq["annotated_image_paths"]
        img_size = seq["height"], seq["width"]
        for c, cl in vid2cagg[seq["seq_name"]].items():
            cls_name = id2cls[c]
            c_preds, c_gts = [], []
            for i in range(len(frames)):
                f_gt = np.zeros(img_size)
                mask_path = result_dir / seq["dataset"] / seq["seq_name"] / "pred" / \
                    f"{c}_{cls_name}" / (frames[i].split(".")[0] + ".png")
                c_preds.append(np.array(Image.open(mask_path)))
                for seg in cl[i]:
                    gt_mask = mask_utils.decode({"size": img_size, "counts": seg.encode("utf-8")})
                    f_gt[gt_mask == 1] = 1
                c_gts.append(f_gt)
            iou = literal_j_stack(np.stack(c_gts, axis=0), np.stack(c_preds, axis=0))
            cls2iou[cls_name].append(np.mean(iou))
    return np.mean(np.array([np.mean(np.array(v)) for v in cls2iou.values()]))


# --- tests ---------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def tao(tmp_path_factory) -> Path:
    return build_burst(tmp_path_factory.mktemp("burst"))


@pytest.fixture(scope="module")
def shifted_preds(tao) -> Path:
    return write_predictions(tao.parent / "shifted", lambda gt, rng: shifted(gt))


def test_queries_follow_rem(tao):
    """One "the <class>" query per (sequence, category); names from val; test sequences first."""
    bench = load_benchmark("burst", tao)
    assert bench.validate() == []
    units = [(q.video, q.query_id, q.text, q.meta["class"], q.frames) for q in bench.queries()]
    assert units == [
        ("ArgoVerse_6f153f9c-edc5-389f-ac6f-40705c30d97e", "136", "the bow (weapon)",
         "bow_(weapon)", ("ring_front_center_315966070444297500",
                          "ring_front_center_315966070444297501")),
        ("HACS_Kayaking_v__A-EdoCW8dA_scene_0_967-2279", "805", "the baby", "baby",
         ("frame0001", "frame0031")),
        ("HACS_Kayaking_v__A-EdoCW8dA_scene_0_967-2279", "136", "the bow (weapon)",
         "bow_(weapon)", ("frame0001", "frame0031")),
        ("YFCC100M_v_0123456789abcdef", "805", "the baby", "baby", ("frame0001", "frame0004")),
        ("YFCC100M_v_0123456789abcdef", "708",
         "the monitor (computer equipment) computer monitor", MONITOR,
         ("frame0001", "frame0004")),
    ]
    rem = [q.meta["rem_prompt"] for q in bench.queries()]
    assert rem[-1] == f"the {MONITOR}" and rem[0] == "the bow_(weapon)"
    assert [len(t.queries) for t in load_benchmark("burst", tao, split="val").tasks()] == [2]
    assert frame_stem("ring_front_center_315966070444297500.jpg") == \
        "ring_front_center_315966070444297500"


def test_union_of_tracks_and_absent_tracks(tao):
    """Tracks 1 and 2 (both baby) are unioned; track 3 only exists on the 2nd frame."""
    bench = load_benchmark("burst", tao, split="val")
    task = bench.tasks()[0]
    gt = bench.load_gt(task)
    baby, monitor = task.queries
    fg, void = gt.target(baby, "frame0001")
    assert void is None and fg.shape == (31, 45) and fg.sum() == 80 + 50
    assert fg[2:10, 3:13].all() and fg[20:25, 30:40].all()
    assert gt.target(monitor, "frame0001")[0].sum() == 0
    assert gt.target(monitor, "frame0004")[0].sum() == 20


# Hand values for the shifted predictions (each GT moved one column right; J = (c-1)/(c+1) for an
# r x c rectangle; the 4x5 monitor box touches the right border: I = 16, U = 20 -> 0.8):
#   val  A/baby    f1: tracks 8x10 + 5x10 -> 117/143 = 9/11; f2: 10x10 -> 9/11   -> 9/11
#   val  A/monitor f1: both empty -> 1; f2: 0.8                                  -> 0.9
#   test B/bow     f1: 10x8 -> 7/9; f2: {} so both empty -> 1                    -> 8/9
#   test C/baby    f1: 10x10 -> 9/11; f2: track absent, both empty -> 1          -> 10/11
#   test C/bow     f1: both empty -> 1; f2: 5x10 at the right border, I 45 U 50 -> 0.9 -> 0.95
BABY_VALTEST = (9 / 11 + 10 / 11) / 2
BOW = (8 / 9 + 0.95) / 2
EXPECTED = {"valtest": (BABY_VALTEST + 0.9 + BOW) / 3,
            "val": (9 / 11 + 0.9) / 2,
            "test": (BOW + 10 / 11) / 2}


@pytest.mark.parametrize("split", ["valtest", "val", "test"])
def test_shifted_hand_values(tao, shifted_preds, split):
    result = evaluate(shifted_preds, "burst", tao, split, workers=1, progress=False)
    assert result.metrics["J"] == pytest.approx(EXPECTED[split], abs=1e-12)
    assert result.metrics["prediction_layout"] == "rem"
    assert result.summary["headline"] == ["J"] and "F" not in result.metrics


def test_class_average_is_not_the_query_mean(tao, shifted_preds):
    result = evaluate(shifted_preds, "burst", tao, workers=1, progress=False)
    units = result.units.set_index("unit")["J"]
    assert units["HACS_Kayaking_v__A-EdoCW8dA_scene_0_967-2279/805"] == pytest.approx(10 / 11)
    assert result.metrics["n_classes"] == 3
    classes = result.tables["classes"].set_index("class")
    assert classes.loc["bow_(weapon)", "n_units"] == 2
    assert classes.loc["baby", "J"] == pytest.approx(BABY_VALTEST)
    assert result.metrics["J"] != pytest.approx(float(np.mean(result.units["J"])), abs=1e-6)


def test_matches_literal_rem_on_random_predictions(pooled, tao, tmp_path):
    """Random noise plus partly correct masks: refvps equals the literal REM script exactly."""
    def noisy(gt, rng):
        pred = (rng.random(gt.shape) < 0.3).astype(np.uint8)
        return np.where(rng.random(gt.shape) < 0.6, gt, pred)

    preds = write_predictions(tmp_path / "random", noisy)
    expected = literal_rem_burst(tao, preds / "burst_valtest")
    assert evaluate(preds, "burst", tao, workers=2, progress=False).metrics["J"] == expected
    unwrapped = preds / "burst_valtest"
    assert evaluate(unwrapped, "burst", tao, workers=1, progress=False).metrics["J"] == expected


def test_standard_layout_and_perfect(tao, tmp_path):
    preds = write_predictions(tmp_path / "perfect", lambda gt, rng: gt * 255, layout="standard")
    result = evaluate(preds, "burst", tao, workers=1, progress=False)
    assert result.metrics["prediction_layout"] == "standard"
    assert result.metrics["J"] == 1.0 and len(result.frames) == 10


def test_cli_json(tao, shifted_preds):
    run = CliRunner().invoke(main, ["eval", "--benchmark", "burst", "--data", str(tao),
                                    "--preds", str(shifted_preds), "--split", "val", "--json",
                                    "--workers", "1", "--no-progress"])
    assert run.exit_code == 0, run.output
    summary = json.loads(run.output)
    assert summary["benchmark"] == "burst" and summary["split"] == "val"
    assert summary["metrics"]["J"] == pytest.approx(EXPECTED["val"], abs=1e-12)


# --- validation error paths ----------------------------------------------------------------
def _problems(preds, tao, **kw) -> str:
    return evaluation_problems(preds, "burst", tao, **kw)


@pytest.fixture
def broken(tmp_path, shifted_preds) -> Path:
    copy = tmp_path / "preds"
    shutil.copytree(shifted_preds, copy)
    return copy


def test_missing_frame_is_an_error_or_scored_empty(tao, broken):
    path = broken / "burst_valtest/YFCC100M/v_0123456789abcdef/pred/805_baby/frame0004.png"
    path.unlink()
    message = _problems(broken, tao)
    assert "805_baby" in message and "frame0004" in message and "--allow-missing" in message
    result = evaluate(broken, "burst", tao, workers=1, progress=False, allow_missing=True)
    assert result.summary["counts"]["missing_frames_scored_empty"] == 1
    # A/baby becomes (9/11 + 0) / 2
    baby = (9 / 22 + 10 / 11) / 2
    assert result.metrics["J"] == pytest.approx((baby + 0.9 + BOW) / 3, abs=1e-12)


def test_wrong_size_and_corrupt_png(tao, broken):
    seq = broken / "burst_valtest/ArgoVerse/6f153f9c-edc5-389f-ac6f-40705c30d97e/pred"
    write_pred(seq / "136_bow_(weapon)/ring_front_center_315966070444297500.png",
               np.zeros((17, 29), np.uint8))  # H and W swapped
    corrupt = broken / f"burst_valtest/YFCC100M/v_0123456789abcdef/pred/708_{MONITOR}/frame0001.png"
    corrupt.write_bytes(b"\x89PNG\r\n\x1a\nnot really")
    message = _problems(broken, tao)
    assert "size 29x17 (WxH), expected 17x29" in message
    assert "frame0001.png" in message and "unreadable image" in message


def test_unknown_video_folder(tao, broken):
    write_pred(broken / "burst_valtest/YFCC100M/v_ffffffffffffffff/pred/805_baby/frame0001.png",
               np.zeros((31, 45), np.uint8))
    message = _problems(broken, tao)
    assert "v_ffffffffffffffff" in message and "unknown folder" in message


def _rewrite(tao: Path, split: str, edit) -> None:
    path = tao / "annotations_burst" / split / "all_classes.json"
    data = json.loads(path.read_text())
    edit(data)
    path.write_text(json.dumps(data))


def test_dataset_problems_listed_at_once(tmp_path, shifted_preds):
    tao = build_burst(tmp_path)

    def edit_val(data):
        seq = data["sequences"][0]
        seq["track_category_ids"]["3"] = 999          # a category with no name
        seq["segmentations"][0]["9"] = {"rle": "x"}   # a track not in track_category_ids
        data["sequences"].append(dict(seq, annotated_image_paths=seq["annotated_image_paths"][:1]))

    _rewrite(tao, "val", edit_val)
    problems = [str(p) for p in load_benchmark("burst", tao).validate()]
    text = "\n".join(problems)
    assert "category 999 has no name" in text
    assert "track 9 is not in track_category_ids" in text
    assert "duplicate sequence" in text
    assert "1 annotated_image_paths but 2 segmentations" in text
    assert all("all_classes.json" in p for p in problems)


def test_missing_annotation_file_and_corrupt_rle(tmp_path, shifted_preds):
    tao = build_burst(tmp_path)
    (tao / "annotations_burst/test/all_classes.json").unlink()
    assert any("test/all_classes.json: file not found" in str(p)
               for p in load_benchmark("burst", tao).validate())
    assert load_benchmark("burst", tao, split="val").validate() == []

    too_long = rle_string(np.ones((40, 50), np.uint8))  # runs cover 2000 px, the frame 1395
    _rewrite(tao, "val", lambda d: d["sequences"][0]["segmentations"][1]["3"].update(rle=too_long))
    message = _problems(shifted_preds, tao, split="val")
    assert "track 3" in message and "undecodable RLE" in message


def test_unknown_split_and_layout(tao):
    with pytest.raises(ValueError, match="unknown split"):
        load_benchmark("burst", tao, split="train")
    with pytest.raises(ValueError, match="unknown prediction layout"):
        Burst(tao, layout="flat")


def test_frame_path_points_at_tao_frames(tao):
    bench = load_benchmark("burst", tao)
    path = bench.frame_path("YFCC100M_v_0123456789abcdef", "frame0004")
    assert path == tao / "frames" / "val" / "YFCC100M" / "v_0123456789abcdef" / "frame0004.jpg"
    assert path.is_file()
