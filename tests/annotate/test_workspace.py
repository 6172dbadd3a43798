"""Workspace: layer composition, undo/redo, persistence, propagation rules, export, agreement."""
from __future__ import annotations

import json

import numpy as np
import pytest

from refvps.annotate.backends.scripted import ScriptedBackend
from refvps.annotate.export import export_workspace
from refvps.annotate.session import Session, stroke_mask
from refvps.annotate.workspace import Workspace
from refvps.errors import ValidationError
from refvps.loaders.refvps import RefVPS
from refvps.masks import read_mask, write_label_mask
from tests.annotate.conftest import truth_for

EXPRESSIONS = ["the red square", "the square moving right", "the red block", "the moving tile"]


def _session(ws_dir, info, **kw) -> Session:
    return Session(Workspace(ws_dir), ScriptedBackend(truth=truth_for(info), **kw))


def _fill_meta(ws: Workspace) -> None:
    ws.set_meta(EXPRESSIONS, "square sliding", ["motion_patterns"])


def test_layers_compose_and_survive_new_model_output(workspace):
    ws_dir, info = workspace
    s = _session(ws_dir, info)
    f = "00008"
    x, y = 40, 50
    s.click(f, x, y, True)  # inside the square at frame 8 -> the true mask
    truth = truth_for(info)(2)
    assert np.array_equal(s.ws.layers(f).model, truth)
    s.stroke(f, "add", [[100, 10], [110, 10]], 1)  # a 3-px line far from the square
    s.stroke(f, "erase", [[x, y]], 2)
    s.stroke(f, "ignore", [[5, 90]], 3)
    labels = s.ws.layers(f).labels()
    line = np.zeros(labels.shape, bool)
    line[9:12, 99:112] = True  # by hand: x 100..110 widened by radius 1, round caps
    assert labels[10, 100:111].tolist() == [1] * 11 and labels[8, 105] == 0
    assert labels[y, x] == 0 and labels[90, 5] == 255 and set(np.unique(labels)) == {0, 1, 255}
    # a new model output (another click) replaces model only: the strokes stay exact
    s.click(f, x + 5, y, True)
    after = s.ws.layers(f)
    assert after.add[10, 100:111].all() and after.erase[y, x] and after.ignore[90, 5]
    assert s.ws.status(f) == "edited"


def test_stroke_mask_by_hand():
    mask = stroke_mask((10, 10), [[2, 2]], 1)
    expected = np.zeros((10, 10), bool)
    expected[1:4, 2] = expected[2, 1:4] = True  # a radius-1 disk is a plus sign
    assert np.array_equal(mask, expected)


def test_undo_redo_and_reopen_restore_everything(workspace):
    ws_dir, info = workspace
    s = _session(ws_dir, info)
    s.click("00000", 20, 40, True)
    s.stroke("00000", "ignore", [[60, 20], [70, 20]], 2)
    s.set_reviewed("00000", True)
    _fill_meta(s.ws)
    before = s.ws.layers("00000").labels()
    assert s.ws.undo() == ["00000"]  # un-review
    assert s.ws.undo() == ["00000"]  # un-ignore
    assert not s.ws.layers("00000").ignore.any() and s.ws.status("00000") == "model"
    reopened = Workspace(ws_dir)  # a restart mid-history
    assert reopened.can_redo() and not reopened.layers("00000").ignore.any()
    assert reopened.redo() == ["00000"] and reopened.redo() == ["00000"]
    assert np.array_equal(reopened.layers("00000").labels(), before)
    assert reopened.status("00000") == "reviewed"
    assert reopened.record("00000")["points"] == [[20.0, 40.0, 1]]
    assert reopened.meta["expressions"] == EXPRESSIONS
    reopened.undo(), reopened.undo(), reopened.undo()
    assert reopened.status("00000") == "empty" and not reopened.can_undo()


def test_propagation_stops_at_locked_frames_and_is_one_undo_step(workspace):
    ws_dir, info = workspace
    s = _session(ws_dir, info)
    truth = truth_for(info)
    s.click("00016", 50, 55, True)  # frame k=4
    s.stroke("00032", "ignore", [[5, 90]], 2)  # k=8 is edited -> locked
    job = s.propagate("00016", "both")
    s.wait()
    assert job.state == "done" and job.total == 7 and job.done == 7  # k=5,6,7 and k=3..0
    for k in (0, 1, 2, 3, 5, 6, 7):
        assert np.array_equal(s.ws.layers(info["anno_frames"][k]).model, truth(k))
    assert not s.ws.layers("00032").model.any()  # the locked frame was not overwritten
    assert ("propagate", 4, False, 3) in s.backend.calls and ("propagate", 4, True, 4) in s.backend.calls
    s.ws.undo()  # the whole propagation at once
    assert all(not s.ws.layers(info["anno_frames"][k]).model.any() for k in (0, 1, 2, 3, 5, 6, 7))


def test_cancel_stops_between_frames(workspace):
    ws_dir, info = workspace
    s = _session(ws_dir, info, delay=0.05)
    s.click("00000", 20, 40, True)
    job = s.propagate("00000", "forward")
    while job.done < 2:
        pass
    s.cancel()
    s.wait()
    assert job.state == "cancelled" and 2 <= job.done < 11
    written = [k for k in range(1, 12) if s.ws.layers(info["anno_frames"][k]).model.any()]
    assert written == list(range(1, job.done + 1))


def test_export_merges_into_dataset_and_validates(workspace, tmp_path):
    from refvps.sample import make_sample

    ws_dir, info = workspace
    sample = make_sample(tmp_path / "data", predictions=False)
    other = sample.dataset / "Annotations" / "vps_0001" / "00004.png"
    other_bytes = other.read_bytes()
    s = _session(ws_dir, info)
    with pytest.raises(ValidationError) as err:
        export_workspace(s.ws, tmp_path / "data")
    assert len(err.value.problems) >= 5  # 4 empty expressions + concept + groups, all at once
    _fill_meta(s.ws)
    s.click("00000", 20, 40, True)
    s.propagate("00000", "forward")
    s.wait()
    s.stroke("00044", "ignore", [[64, 48]], 4)
    dataset = export_workspace(s.ws, tmp_path / "data")
    assert dataset == sample.dataset
    assert RefVPS(dataset).validate() == []
    assert other.read_bytes() == other_bytes  # other clips untouched
    meta = json.loads((dataset / "meta_expressions.json").read_text())
    assert len(meta["videos"]) == 11
    record = meta["videos"]["vps_square"]
    assert record["anno_frames"] == info["anno_frames"] and len(record["frames"]) == 48
    assert [e["exp"] for e in record["expressions"].values()] == EXPRESSIONS
    assert [(e["annotator"], e["exp_idx"]) for e in record["expressions"].values()] == \
        [(0, 0), (0, 1), (1, 0), (1, 1)]
    assert "vps_square" in (dataset / "splits" / "test.txt").read_text().split()
    concepts = json.loads((dataset / "concepts.json").read_text())
    assert {"id": "square_sliding", "name": "square sliding", "groups": ["motion_patterns"]} \
        in concepts["concepts"]
    labels = read_mask(dataset / "Annotations" / "vps_square" / "00044.png")
    truth = truth_for(info)(11)
    assert labels[48, 64] == 255 and set(np.unique(labels)) <= {0, 1, 255}
    assert np.array_equal(labels == 1, truth & (labels != 255))
    assert sorted(p.name for p in (dataset / "JPEGImages" / "vps_square").iterdir())[-1] == "00047.jpg"


def test_agreement_excludes_ignore_of_either(tmp_path):
    from refvps.agreement import agreement

    for root, labels in (("a", [[1, 1, 0, 255], [0, 0, 0, 0]]), ("b", [[1, 0, 255, 1], [0, 0, 0, 0]])):
        dataset = tmp_path / root / "ref-vps"
        write_label_mask(dataset / "Annotations" / "c1" / "00000.png", np.array(labels, np.uint8))
        write_label_mask(dataset / "Annotations" / "c1" / "00004.png", np.zeros((2, 4), np.uint8))
        (dataset / "FORMAT").write_text("refvps-format 0.1\n")
        (dataset / "concepts.json").write_text('{"groups": [], "concepts": []}')
        (dataset / "meta_expressions.json").write_text(json.dumps({"videos": {"c1": {
            "frames": [f"{i:05d}" for i in range(5)], "anno_frames": ["00000", "00004"],
            "expressions": {"0": {"exp": "x", "obj_id": [1]}}}}}))
    frames, summary = agreement(tmp_path / "a", tmp_path / "b")
    # frame 0: columns 2 and 3 are Ignore in one of them -> compare columns 0-1 only:
    # A = {(0,0), (0,1)}, B = {(0,0)} -> IoU 1/2; frame 4: both empty -> 1
    assert frames["iou"].tolist() == [0.5, 1.0]
    assert summary["miou"] == 0.75 and summary["per_clip"] == {"c1": 0.75}


def test_cli_export_and_agreement(workspace, tmp_path):
    from click.testing import CliRunner

    from refvps.cli import main

    ws_dir, info = workspace
    s = _session(ws_dir, info)
    _fill_meta(s.ws)
    s.click("00000", 20, 40, True)
    runner = CliRunner()
    result = runner.invoke(main, ["annotate", "export", str(ws_dir), "--to", str(tmp_path / "a"),
                                  "--require-reviewed"])
    assert result.exit_code == 2 and "12 annotation frame(s) not reviewed" in result.output
    for root in ("a", "b"):
        result = runner.invoke(main, ["annotate", "export", str(ws_dir), "--to", str(tmp_path / root)])
        assert result.exit_code == 0, result.output
    s.stroke("00000", "erase", [[x, y] for x in range(0, 128, 4) for y in (36, 44)], 4)
    result = runner.invoke(main, ["annotate", "export", str(ws_dir), "--to", str(tmp_path / "b")])
    assert result.exit_code == 2 and "--replace" in result.output  # never replaced silently
    result = runner.invoke(main, ["annotate", "export", str(ws_dir), "--to", str(tmp_path / "b"),
                                  "--replace"])
    assert result.exit_code == 0, result.output
    result = runner.invoke(main, ["agreement", str(tmp_path / "a"), str(tmp_path / "b"), "--json"])
    summary = json.loads(result.output)
    a = read_mask(tmp_path / "a" / "ref-vps" / "Annotations" / "vps_square" / "00000.png")
    b = read_mask(tmp_path / "b" / "ref-vps" / "Annotations" / "vps_square" / "00000.png")
    first = ((a == 1) & (b == 1)).sum() / ((a == 1) | (b == 1)).sum()  # no Ignore in either
    assert summary["per_clip"]["vps_square"] == pytest.approx((first + 11) / 12)
    assert 0 < first < 1
