"""Ref-DAVIS17: layouts, expression quirks, the unsupervised protocol and its error paths."""
from __future__ import annotations

import json
import shutil
import zipfile

import numpy as np
import pytest
from click.testing import CliRunner

import literal_davis_unsupervised as literal
import refdavis_fixture as fx
from refvps.cli import main
from refvps.errors import RefvpsError, ValidationError
from refvps.evaluation import evaluate
from refvps.loaders import load_benchmark
from refvps.loaders.refdavis_text import (convert_expressions, read_expression_file,
                                          read_text_annotations, run_expressions)
from refvps.masks import write_label_mask

# Hand-computed per-run (J, F) of fx.make_hand_predictions: objects blackswan/1, dogs/1, dogs/2.
HAND_J = [1.0, 1.0, (13 / 15 + 1 + 1) / 3, (0 + 0 + 0.25) / 3]
HAND_F = [1.0, 1.0, 1.0, (0 + 0 + 0.25) / 3]


@pytest.fixture
def raw(tmp_path):
    fx.make_raw(tmp_path)
    return tmp_path, fx.make_hand_predictions(tmp_path)


def score(preds, data, **kwargs):
    return evaluate(preds, "ref-davis", data, workers=1, progress=False, **kwargs)


# --- expressions ------------------------------------------------------------------------------
def test_text_files_encodings_quotes_and_typos(tmp_path):
    base = fx.make_raw(tmp_path)
    runs, problems = read_text_annotations(base / "davis_text_annotations")
    assert problems == []
    assert "dog-scale" not in runs[2] and "clasic-car" not in runs[0]
    assert runs[2]["dogs-scale"][0] == {"exp": "the dog near the café", "obj_id": "1"}
    assert runs[1]["dogs-scale"][1]["exp"] == "a dog sitting"  # double space collapsed
    assert runs[0]["classic-car"] == [{"exp": "an old car", "obj_id": "1"}]
    # annot1 lists dogs-scale object 2 first: entries are sorted by obj_id
    assert [e["obj_id"] for e in runs[0]["dogs-scale"]] == ["1", "2"]


def test_obj_ids_sort_as_strings_and_bad_lines(tmp_path):
    path = tmp_path / "t.txt"
    path.write_text('v 2 "two"\n\nv 10 "ten"\nbroken\nv 1 "one"', encoding="utf-8")
    videos, problems = read_expression_file(path, "utf-8")
    assert [e["obj_id"] for e in videos["v"]] == ["1", "10", "2"]
    assert [p.where for p in problems] == [f"{path}:4"]


def test_utf8_file_that_is_not_utf8_is_reported(tmp_path):
    path = tmp_path / "t.txt"
    path.write_bytes('v 1 "café"\n'.encode("latin-1"))
    assert read_expression_file(path, "utf-8")[1][0].what.startswith("not valid utf-8")
    assert read_expression_file(path, "latin-1")[0]["v"][0]["exp"] == "café"


def test_converted_ids_and_runs(tmp_path):
    base = fx.make_raw(tmp_path)
    runs, _ = read_text_annotations(base / "davis_text_annotations")
    frames = {"blackswan": fx.FRAMES, "dogs-scale": fx.FRAMES}
    videos = convert_expressions(runs, ["blackswan", "dogs-scale"], frames)["videos"]
    assert list(videos["blackswan"]["expressions"]) == ["0", "1", "2", "3"]
    dogs = videos["dogs-scale"]["expressions"]
    assert list(dogs) == [str(i) for i in range(8)]
    assert [dogs[str(i)]["obj_id"] for i in range(8)] == ["1"] * 4 + ["2"] * 4
    assert dogs["2"]["exp"] == "the dog near the café"  # annotator 2, first frame, object 1
    assert videos["dogs-scale"]["frames"] == fx.FRAMES
    table = run_expressions(videos)
    for run in range(4):  # anno_<run> uses expressions {run, 4 + run}
        assert table[("dogs-scale", run, 1)].text == dogs[str(run)]["exp"]
        assert table[("dogs-scale", run, 2)].text == dogs[str(4 + run)]["exp"]
        assert table[("dogs-scale", run, 2)].expected_proposal == 2


def test_converter_zip_truncates_to_shortest_file(tmp_path):
    base = fx.make_raw(tmp_path)
    runs, _ = read_text_annotations(base / "davis_text_annotations")
    runs[3]["dogs-scale"] = runs[3]["dogs-scale"][:1]
    dogs = convert_expressions(runs, ["dogs-scale"])["videos"]["dogs-scale"]["expressions"]
    assert len(dogs) == 4 and {e["obj_id"] for e in dogs.values()} == {"1"}


# --- protocol: hand-computed values -----------------------------------------------------------
def test_hand_scores_every_run(raw):
    data, preds = raw
    result = score(preds, data)
    runs = result.tables["runs"].set_index("run")
    for k in range(4):
        assert runs.loc[f"anno_{k}", "J"] == pytest.approx(HAND_J[k], rel=1e-12)
        assert runs.loc[f"anno_{k}", "F"] == pytest.approx(HAND_F[k], rel=1e-12)
        assert result.metrics[f"J&F/anno_{k}"] == pytest.approx((HAND_J[k] + HAND_F[k]) / 2)
    assert result.metrics["J"] == pytest.approx(sum(HAND_J) / 4, rel=1e-12)
    assert result.metrics["F"] == pytest.approx(sum(HAND_F) / 4, rel=1e-12)
    jf = [(j + f) / 2 for j, f in zip(HAND_J, HAND_F)]
    assert result.metrics["J&F"] == pytest.approx(sum(jf) / 4, rel=1e-12)
    assert result.metrics["objects_per_run"] == 3
    assert result.summary["counts"]["queries"] == 8  # 4 runs x 2 sequences


def test_void_column_is_ignored_and_shift_is_exact(raw):
    data, preds = raw
    frames = score(preds, data).frames
    swan = frames[frames["video"] == "blackswan"].set_index("query_id")
    # anno_0 spills onto the void column: without void J would be 140/150
    assert (swan.loc["anno_0", "J"] == 1.0).all() and (swan.loc["anno_0", "F"] == 1.0).all()
    assert (swan.loc["anno_0", "void_area"] == 31).all()
    assert (swan.loc["anno_2", "J"] == 130 / 150).all() and (swan.loc["anno_2", "F"] == 1.0).all()


def test_hungarian_undoes_swapped_ids_and_rows_name_true_objects(raw):
    data, preds = raw
    result = score(preds, data)
    objects = result.tables["objects"]
    dogs = objects[(objects["run"] == "anno_1") & (objects["video"] == "dogs-scale")]
    assert dogs[["object", "proposal", "official_label"]].values.tolist() == [
        [2, 1, "dogs-scale_1"], [1, 2, "dogs-scale_2"]]  # official CSV would swap the names
    assert dogs["swapped"].all() and (dogs["J"] == 1.0).all()
    assert dogs.set_index("object").loc[1, "expression"] == "a dog walking"
    assert result.tables["runs"].set_index("run").loc["anno_1", "swapped"] == 2
    assert any("official_label" in note for note in result.summary["notes"])


def test_more_proposals_than_objects_and_zero_padding(raw):
    data, preds = raw
    result = score(preds, data)
    objects = result.tables["objects"].set_index(["run", "video", "object"])
    # anno_2 dogs-scale has 4 proposal folders (one empty, one far blob): unmatched ones ignored
    assert objects.loc[("anno_2", "dogs-scale", 1), "proposal"] == 1
    assert objects.loc[("anno_2", "dogs-scale", 2), "proposal"] == 2
    # anno_3 is empty: every object gets a zero-padding proposal; object 2 scores its absent frame
    assert (objects.xs("anno_3")["proposal"] == 0).all()
    assert objects.loc[("anno_3", "dogs-scale", 2), "J"] == 0.25
    assert objects.loc[("anno_3", "dogs-scale", 2), "J_decay"] == -0.5


def test_converted_tree_scores_like_raw(raw, tmp_path):
    data, preds = raw
    expected = score(preds, data).metrics
    converted = tmp_path / "conv"
    base = fx.make_converted(converted)
    result = score(preds, base)  # --data pointing at the ref-davis folder itself
    for key in ("J&F", "J", "F", "J_recall", "F_decay"):
        assert result.metrics[key] == expected[key]
    objects = result.tables["objects"]
    row = objects[(objects["run"] == "anno_2") & (objects["video"] == "dogs-scale")
                  & (objects["object"] == 2)]
    assert row["expression"].item() == "dogs-scale object 2 run 2"
    assert "converted" in result.summary["notes"][1]


def test_data_root_may_be_the_davis_folder(raw):
    data, preds = raw
    davis = data / "ref-davis" / "DAVIS"
    bench = load_benchmark("ref-davis", davis)
    assert bench.root == davis and bench.sequences() == ["blackswan", "dogs-scale"]
    assert bench.text_dir == data / "ref-davis" / "davis_text_annotations"
    assert score(preds, davis).metrics["J"] == pytest.approx(sum(HAND_J) / 4)


def test_train_split_and_run_subset(raw):
    data, _ = raw
    preds = data / "train-preds"
    fx.write_indexed(preds / "anno_0", "classic-car", fx.perfect("classic-car"))
    bench = load_benchmark("ref-davis", data, "train", runs=(0,))
    result = evaluate(preds, bench, workers=1, progress=False)
    assert result.metrics["J&F"] == 1.0 and list(result.tables["runs"]["run"]) == ["anno_0"]
    assert result.tables["objects"]["expression"].item() == "an old car"


def test_zip_with_wrapper_folder_and_process_pool(pooled, raw, tmp_path):
    data, preds = raw
    archive = tmp_path / "preds.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for path in sorted(preds.rglob("*.png")):
            zf.write(path, "valid/" + path.relative_to(preds).as_posix())
    result = evaluate(archive, "ref-davis", data, workers=2, progress=False)
    assert result.metrics["J"] == pytest.approx(sum(HAND_J) / 4, rel=1e-12)


# --- protocol: exact equality with the literal official evaluation ------------------------------
def test_matches_literal_official_evaluation(tmp_path):
    rng = np.random.default_rng(20261121)
    base, names = fx.random_dataset(tmp_path, rng, n_seqs=4)
    gt_root = base / "DAVIS/Annotations_unsupervised/480p"
    preds = fx.random_predictions(tmp_path, gt_root, names, rng)
    result = score(preds, tmp_path)
    runs = result.tables["runs"].set_index("run")
    official = [literal.evaluate_run(gt_root, preds / f"anno_{k}", names) for k in range(4)]
    for k, ref in enumerate(official):
        row = runs.loc[f"anno_{k}"]
        assert row["J&F"] == ref["J&F"]
        for metric in ("J", "F"):
            for stat, column in (("M", metric), ("R", f"{metric}_recall"),
                                 ("D", f"{metric}_decay")):
                assert row[column] == np.mean(ref[metric][stat]), (k, column)
        objects = result.tables["objects"]
        ours = objects[objects["run"] == f"anno_{k}"].to_dict("records")
        assert len(ours) == len(ref["objects"])
        for mine, theirs in zip(ours, ref["objects"]):
            for key in ("official_label", "object", "J", "F", "J_recall", "J_decay",
                        "F_recall", "F_decay"):
                assert mine[key] == theirs[key], (k, key, mine["official_label"])
    assert result.metrics["J&F"] == literal.four_run_mean([ref["J&F"] for ref in official])


# --- sequences without objects and error paths --------------------------------------------------
def test_empty_first_frame_contributes_no_objects(tmp_path):
    data_base = fx.make_raw(tmp_path, val=("blackswan", "late-start"))
    preds = tmp_path / "p"
    for run in range(4):
        for seq in ("blackswan", "late-start"):
            fx.write_indexed(preds / f"anno_{run}", seq, fx.perfect(seq))
    result = score(preds, tmp_path)
    assert set(result.frames["video"]) == {"blackswan"}
    assert result.metrics["objects_per_run"] == 1 and result.metrics["J&F"] == 1.0
    assert any("late-start" in note for note in result.summary["notes"])
    # its predictions are still required, as in the official evaluator
    shutil.rmtree(preds / "anno_1" / "late-start")
    with pytest.raises(ValidationError, match="anno_1/late-start"):
        score(preds, tmp_path)
    assert data_base.is_dir()


def test_more_than_20_proposals_is_an_error_naming_the_sequence(raw):
    data, preds = raw
    labels = fx.perfect("dogs-scale")
    labels[3][0, 0] = 21
    fx.write_indexed(preds / "anno_1", "dogs-scale", labels)
    for k in range(1, 22):
        write_label_mask(preds / "anno_2" / "blackswan" / str(k) / "00000.png",
                         np.zeros(fx.BLACKSWAN, np.uint8))
    with pytest.raises(ValidationError) as info:
        score(preds, data)
    text = str(info.value)
    assert "sequence dogs-scale: proposal id 21" in text and "anno_1/dogs-scale/00003.png" in text
    assert "sequence blackswan: 21 per-object folders" in text


def test_missing_and_mis_sized_frames_are_all_listed(raw):
    data, preds = raw
    (preds / "anno_0" / "blackswan" / "00002.png").unlink()
    (preds / "anno_2" / "dogs-scale" / "3" / "00001.png").unlink()
    write_label_mask(preds / "anno_1" / "blackswan" / "00003.png", np.zeros((31, 44), np.uint8))
    (preds / "anno_9").mkdir()
    (preds / "anno_9" / "x.png").write_bytes(b"")
    with pytest.raises(ValidationError) as info:
        score(preds, data)
    problems = [str(p) for p in info.value.problems]
    assert len(problems) == 4, problems
    assert any("anno_0/blackswan" in p and "00002" in p for p in problems)
    assert any("anno_2/dogs-scale/3" in p and "00001" in p for p in problems)
    assert any("anno_1/blackswan/00003.png" in p and "44x31" in p for p in problems)
    assert any("anno_9" in p and "unknown folder" in p for p in problems)


def test_allow_missing_scores_absent_frames_as_empty(raw):
    data, preds = raw
    (preds / "anno_0" / "blackswan" / "00002.png").unlink()
    result = score(preds, data, allow_missing=True)
    swan = result.frames[(result.frames["video"] == "blackswan")
                         & (result.frames["query_id"] == "anno_0")]
    assert swan["J"].tolist() == [1.0, 1.0, 0.0, 1.0]
    assert swan["pred_missing"].tolist() == [False, False, True, False]
    assert result.summary["counts"]["missing_frames_scored_empty"] == 1


def test_bad_per_object_layouts(raw):
    data, preds = raw
    (preds / "anno_2" / "dogs-scale" / "4").rename(preds / "anno_2" / "dogs-scale" / "obj4")
    write_label_mask(preds / "anno_1" / "blackswan" / "1" / "00000.png",
                     np.zeros(fx.BLACKSWAN, np.uint8))
    with pytest.raises(ValidationError) as info:
        score(preds, data)
    text = str(info.value)
    assert "must be named 1..4, found 1, 2, 3, obj4" in text
    assert "anno_1/blackswan: mixes the two layouts" in text


def test_dataset_validation_lists_every_problem(raw):
    data, preds = raw
    davis = data / "ref-davis" / "DAVIS"
    write_label_mask(davis / "Annotations_unsupervised/480p/dogs-scale/00001.png",
                     np.zeros((29, 18), np.uint8))
    (davis / "Annotations_unsupervised/480p/blackswan/00003.png").unlink()
    (data / "ref-davis/davis_text_annotations/Davis17_annot1.txt").write_bytes(b'v 1 "\xe9"\n')
    problems = [str(p) for p in load_benchmark("ref-davis", data).validate()]
    assert len(problems) == 3, problems
    assert any("dogs-scale/00001.png" in p and "18x29" in p for p in problems)
    assert any("blackswan" in p and "00003" in p and "no annotation" in p for p in problems)
    assert any("Davis17_annot1.txt" in p and "utf-8" in p for p in problems)


def test_missing_dataset_is_reported(tmp_path):
    (tmp_path / "ref-davis").mkdir()
    problems = load_benchmark("ref-davis", tmp_path).validate()
    assert len(problems) == 1 and "Annotations_unsupervised" in problems[0].what


# --- command line -------------------------------------------------------------------------------
def test_cli_eval_writes_tables(raw, tmp_path):
    data, preds = raw
    out = tmp_path / "out"
    runner = CliRunner()
    result = runner.invoke(main, ["eval", "--benchmark", "ref-davis", "--data", str(data),
                                  "--preds", str(preds), "--out", str(out), "-j", "1",
                                  "--no-progress"])
    assert result.exit_code == 0, result.output
    assert "per run:" in result.output and "anno_3" in result.output
    summary = json.loads((out / "summary.json").read_text())
    assert summary["metrics"]["J"] == pytest.approx(sum(HAND_J) / 4, rel=1e-12)
    for name in ("frames.csv", "run-sequences.csv", "objects.csv", "runs.csv", "videos.csv"):
        assert (out / name).is_file(), name
    frames_header = (out / "frames.csv").read_text().splitlines()[0].split(",")
    assert {"query_id", "object", "proposal", "rank", "J", "F"} <= set(frames_header)


def test_ties_break_like_the_official_call(raw):
    """anno_3 (all proposals empty, equal costs) and duplicated proposals tie in the cost matrix."""
    data, preds = raw
    labels = fx.perfect("dogs-scale")
    fx.write_per_object(preds / "anno_1", "dogs-scale",
                        [[lab == 1 for lab in labels]] * 2 + [[lab == 2 for lab in labels]] * 2)
    for frame in fx.FRAMES:
        (preds / "anno_1" / "dogs-scale" / f"{frame}.png").unlink()
    result = score(preds, data)
    gt_root = data / "ref-davis/DAVIS/Annotations_unsupervised/480p"
    objects = result.tables["objects"]
    for k in (1, 3):
        ref = literal.evaluate_run(gt_root, preds / f"anno_{k}", ["blackswan", "dogs-scale"])
        ours = objects[objects["run"] == f"anno_{k}"]
        assert ours[["official_label", "object", "J", "F"]].values.tolist() == [
            [o["official_label"], o["object"], o["J"], o["F"]] for o in ref["objects"]]


def test_report_intervals_are_centred_on_the_summary(raw, tmp_path):
    from refvps.report.run import load_run
    from refvps.report.stats import run_ci

    data, preds = raw
    result = evaluate(preds, "ref-davis", data, workers=1, progress=False, out=tmp_path / "out")
    ci = run_ci(load_run(tmp_path / "out"), n_boot=200).set_index("metric")["estimate"]
    for metric in ("J", "F", "J&F"):
        assert ci[metric] == pytest.approx(result.metrics[metric], rel=1e-12), metric


def test_single_run_folder_as_the_official_evaluator_reads_it(raw, tmp_path):
    """--preds .../anno_2 scores that run alone (run from the folder name or from --runs)."""
    data, preds = raw
    result = score(preds / "anno_2", data)
    assert list(result.tables["runs"]["run"]) == ["anno_2"]  # per-object folders, from the name
    assert result.metrics["J"] == pytest.approx(HAND_J[2], rel=1e-12)
    assert result.metrics["F"] == pytest.approx(HAND_F[2], rel=1e-12)
    renamed = tmp_path / "my_run"
    shutil.copytree(preds / "anno_1", renamed)
    with pytest.raises(RefvpsError, match="--runs K"):
        score(renamed, data)
    with pytest.raises(RefvpsError, match="must name that one run"):
        score(preds / "anno_1", data, runs=(0, 1))
    cli = CliRunner().invoke(main, ["eval", "-b", "ref-davis", "--data", str(data), "--preds",
                                    str(renamed), "--runs", "1", "--json", "--no-progress",
                                    "--no-record", "-j", "1"])
    assert cli.exit_code == 0, cli.output
    summary = json.loads(cli.output)
    assert summary["metrics"]["J"] == pytest.approx(HAND_J[1]) and "J/anno_1" in summary["metrics"]
    both = score(preds, data, runs=(0, 3))  # the run subset on the usual layout
    assert both.metrics["J"] == pytest.approx((HAND_J[0] + HAND_J[3]) / 2, rel=1e-12)
    with pytest.raises(RefvpsError, match="annotator runs"):
        evaluate(preds, "mevis", data, runs=(0,), progress=False)
