"""The command line, the sample benchmark, the demo and data-root resolution."""
from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from refvps.cli import main
from refvps.errors import DataNotFoundError
from refvps.formats import CONCEPT_GROUPS, IGNORE_LABEL
from refvps.loaders import load_benchmark
from refvps.masks import read_mask
from refvps.sample import CLIPS, make_sample
from refvps_fixture import build_refvps, write_predictions


@pytest.fixture(scope="module")
def sample(tmp_path_factory):
    return make_sample(tmp_path_factory.mktemp("sample"))


def _tree_digest(root):
    digest = hashlib.sha256()
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        digest.update(path.relative_to(root).as_posix().encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()


def test_sample_is_a_valid_refvps_dataset_covering_every_group(sample):
    bench = load_benchmark("ref-vps", sample.root)
    assert bench.validate() == []
    assert len(bench.clip_ids()) == len(CLIPS) >= 10
    groups = {g for q in bench.queries() for g in q.meta["concept_groups"]}
    assert groups == {g[0] for g in CONCEPT_GROUPS}
    assert all(len(t.queries) == 4 for t in bench.tasks())
    labels = [read_mask(p) for p in sorted((sample.dataset / "Annotations").rglob("*.png"))]
    assert any((m == IGNORE_LABEL).any() for m in labels)  # Ignore bands exist
    assert any(not m.any() for m in labels)  # empty context frames exist
    meta = json.loads((sample.dataset / "meta_expressions.json").read_text())
    for record in meta["videos"].values():
        assert record["anno_frames"] == record["frames"][::4]


def test_sample_is_deterministic(sample, tmp_path):
    again = make_sample(tmp_path / "again")
    assert _tree_digest(again.dataset) == _tree_digest(sample.dataset)
    assert _tree_digest(again.predictions["flicker"]) == _tree_digest(sample.predictions["flicker"])


def test_eval_cli_text_json_and_out(pooled, sample, tmp_path):
    runner = CliRunner()
    result = runner.invoke(main, ["eval", "--data", str(sample.root), "--preds",
                                  str(sample.predictions["perfect"]), "--no-progress"])
    assert result.exit_code == 0, result.output
    assert "J      1.0000" in result.output
    assert "per concept group" in result.output
    result = runner.invoke(main, ["eval", "--data", str(sample.root), "--preds",
                                  str(sample.predictions["shifted"]), "--json", "--out",
                                  str(tmp_path / "out"), "-j", "2", "--no-progress"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.output)
    assert 0.5 < summary["metrics"]["J"] < 0.9
    assert json.loads((tmp_path / "out" / "summary.json").read_text())["metrics"] == \
        summary["metrics"]


def test_eval_cli_lists_all_problems_and_exits_nonzero(tmp_path):
    build_refvps(tmp_path / "data")
    preds = write_predictions(tmp_path / "p")
    (preds / "vps_0001" / "0" / "00004.png").unlink()
    (preds / "vps_0002" / "1" / "00004.png").unlink()
    Image.new("L", (3, 3)).save(preds / "vps_0001" / "1" / "00008.png")
    args = ["eval", "--data", str(tmp_path / "data"), "--preds", str(preds), "--no-progress"]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 2
    assert "3 problem(s)" in result.output
    assert "vps_0001/0: missing 1 required frame(s): 00004" in result.output
    assert "vps_0002/1: missing 1 required frame(s): 00004" in result.output
    assert "size 3x3" in result.output
    (preds / "vps_0001" / "1" / "00008.png").unlink()
    result = CliRunner().invoke(main, args + ["--allow-missing"])
    assert result.exit_code == 0, result.output
    assert "3 missing prediction frame(s) scored as empty" in result.output


def test_demo_prints_every_predictor_with_perfect_at_one(tmp_path):
    env = dict(os.environ, XDG_DATA_HOME=str(tmp_path / "xdg"))
    out = subprocess.run([sys.executable, "-m", "refvps", "demo", "--json"], env=env,
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    rows = {row["predictor"]: row for row in json.loads(out.stdout)}
    assert set(rows) == {"perfect", "eroded", "shifted", "flicker", "empty"}
    assert rows["perfect"]["J"] == 1.0 and rows["perfect"]["J&F"] == 1.0
    assert rows["perfect"]["TC"] == 0.0
    assert rows["perfect"]["J"] > rows["eroded"]["J"] > rows["shifted"]["J"] > rows["empty"]["J"]
    assert rows["flicker"]["TC"] > rows["eroded"]["TC"]  # flicker is temporally unstable
    assert (tmp_path / "xdg" / "refvps" / "demo" / "results" / "perfect" / "frames.csv").is_file()


def test_data_root_resolution(tmp_path, monkeypatch):
    build_refvps(tmp_path / "root")
    monkeypatch.delenv("REFVPS_DATA", raising=False)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    with pytest.raises(DataNotFoundError) as info:
        load_benchmark("ref-vps")
    message = str(info.value)
    assert str(tmp_path / "xdg" / "refvps" / "data" / "ref-vps") in message
    assert "REFVPS_DATA" in message and "--data" in message
    monkeypatch.setenv("REFVPS_DATA", str(tmp_path / "root"))
    assert load_benchmark("ref-vps").root == tmp_path / "root" / "ref-vps"
    (tmp_path / "xdg" / "refvps" / "data").mkdir(parents=True)
    (tmp_path / "root" / "ref-vps").rename(tmp_path / "xdg" / "refvps" / "data" / "ref-vps")
    monkeypatch.delenv("REFVPS_DATA")
    assert load_benchmark("ref-vps").root == tmp_path / "xdg" / "refvps" / "data" / "ref-vps"


def test_eval_without_data_says_where_it_looked(tmp_path, monkeypatch):
    monkeypatch.setenv("REFVPS_DATA", str(tmp_path / "nowhere"))
    preds = tmp_path / "p"
    preds.mkdir()
    result = CliRunner().invoke(main, ["eval", "--preds", str(preds)])
    assert result.exit_code == 2
    assert "data root from REFVPS_DATA" in result.output
    assert str(tmp_path / "nowhere" / "ref-vps") in result.output


def test_import_is_light():
    code = ("import sys, refvps, refvps.evaluation, refvps.cli; "
            "print(sorted(m for m in ('torch', 'sam2', 'ray', 'playwright') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_sample_perfect_prediction_equals_gt_outside_ignore(sample):
    clip = CLIPS[1]
    labels = read_mask(sample.dataset / "Annotations" / clip.clip_id / "00008.png")
    pred = np.array(Image.open(sample.predictions["perfect"] / clip.clip_id / "0" / "00008.png"))
    keep = labels != IGNORE_LABEL
    assert np.array_equal((labels == 1)[keep], (pred > 0)[keep])


@pytest.mark.parametrize("guarded", [True, False])
def test_pool_from_a_script_needs_the_main_guard(tmp_path, guarded):
    build_refvps(tmp_path / "data")
    preds = write_predictions(tmp_path / "p")
    call = (f"r = refvps.evaluate({str(preds)!r}, data={str(tmp_path / 'data')!r}, workers=2, "
            "progress=False)\n    print('J', r.metrics['J'])")
    body = f"if __name__ == '__main__':\n    {call}\n" if guarded else \
        f"if True:\n    {call}\n"
    script = tmp_path / "score.py"
    # A pool starts only for jobs of SMALL_JOB_FRAMES query-frames or more: this small one too.
    script.write_text("import refvps, refvps.executors\nrefvps.executors.SMALL_JOB_FRAMES = 0\n"
                      + body)
    out = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                         timeout=120)
    if guarded:
        assert out.returncode == 0, out.stderr
        assert out.stdout.strip() == "J 1.0"
    else:  # workers re-import the script: a clear error, never a hang
        assert out.returncode != 0
        assert "if __name__ == \"__main__\":" in out.stderr
