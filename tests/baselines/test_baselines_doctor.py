"""`refvps models doctor` and `refvps models --check`: the failures a user meets, each with a fix.

The checkout-shaped folders below mirror the real repositories' layouts at the pinned commits
(ReferEverything@6dcc5a9: models/mst2v_wrapper.py, models/want2v_wrapper.py; SOLA@4b0adf8:
module/module.py, track_generation/generate_tokens_grid.py, configs/mevis/). The wrong-sam2
case runs a copy of the installed sam2 package itself with one change. Runs against the real
SOLA checkout and environment are in test_baselines_upstream_sola.py.
"""
from __future__ import annotations

import importlib.util
import json
import shutil
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from refvps.cli import main


def _touch(root: Path, *paths: str) -> Path:
    for rel in paths:
        path = root / rel
        if rel.endswith("/"):
            path.mkdir(parents=True, exist_ok=True)
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text("# layout only\n")
    return root


def _rem_checkout(tmp_path: Path) -> Path:
    return _touch(tmp_path / "ReferEverything", "models/mst2v_wrapper.py",
                  "models/want2v_wrapper.py", "opts.py", "infer_sample_MS.py")


def _doctor(*args: str):
    result = CliRunner().invoke(main, ["models", "doctor", *args, "--json"])
    return result, json.loads(result.output[:result.output.rindex("]") + 1])


def _find(checks, prefix):
    found = [c for c in checks if c["what"].startswith(prefix)]
    assert found, f"no check {prefix!r} in {[c['what'] for c in checks]}"
    return found[0]


@pytest.mark.parametrize("model", ["sola", "vd-it", "uniref-r50"])
def test_check_refuses_the_rem_repository(tmp_path, model):
    rem = _rem_checkout(tmp_path)
    result = CliRunner().invoke(main, ["models", "--check", model, "--model-arg", f"repo={rem}"])
    assert result.exit_code == 1
    line = next(l for l in result.output.splitlines() if l.startswith("[MISSING] repo"))
    assert "looks like the ReferEverything repository" in line


def test_doctor_names_the_wrong_repository_and_what_to_do(tmp_path):
    rem = _rem_checkout(tmp_path)
    result, checks = _doctor("sola", "--model-arg", f"repo={rem}", "--model-arg", "device=cpu")
    assert result.exit_code == 1
    repo = _find(checks, "repo ")
    assert repo["status"] == "FAIL" and "not a SOLA checkout" in repo["detail"]
    entry = _find(checks, "SOLA entry point")
    assert entry["status"] == "FAIL" and "github.com/cvlab-kaist/SOLA" in entry["fix"]
    assert "problem(s)" in result.output


def test_doctor_reports_every_missing_path_at_once(tmp_path):
    sola = _touch(tmp_path / "SOLA", "module/module.py", "track_generation/generate_tokens_grid.py",
                  "configs/mevis/")
    result, checks = _doctor("sola", "--model-arg", f"repo={sola}", "--model-arg", "device=cpu",
                             "--model-arg", f"checkpoint={tmp_path}/none.pth")
    assert result.exit_code == 1
    assert _find(checks, "repo ")["status"] == "ok"
    assert _find(checks, "checkpoint ")["status"] == "FAIL"
    assert _find(checks, "sam2_checkpoint")["status"] == "FAIL"


@pytest.mark.skipif(importlib.util.find_spec("torchvision") is not None,
                    reason="torchvision is installed here; the missing-torchvision case needs an "
                           "environment without it")
@pytest.mark.skipif(importlib.util.find_spec("torch") is None, reason="needs torch")
def test_doctor_says_torchvision_is_missing_and_which_release_to_install(tmp_path):
    result, checks = _doctor("sola", "--model-arg", "device=cpu")
    found = _find(checks, "torchvision")
    assert found["status"] == "FAIL" and "No module named 'torchvision'" in found["detail"]
    import torch

    minor = int(torch.__version__.split(".")[1])
    assert f"torchvision==0.{minor + 15}.*" in found["fix"]


@pytest.mark.skipif(importlib.util.find_spec("sam2") is None, reason="needs sam2")
def test_doctor_rejects_a_sam2_without_per_object_outputs(tmp_path, monkeypatch):
    """A copy of the installed sam2 whose video predictor keeps no ``output_dict_per_obj`` (the
    key SOLA's tracks are read from since sam2 1.1.0 dropped ``output_dict``)."""
    import sam2

    copy = tmp_path / "site" / "sam2"
    shutil.copytree(Path(sam2.__file__).parent, copy,
                    ignore=shutil.ignore_patterns("__pycache__", "*.so"))
    source = copy / "sam2_video_predictor.py"
    source.write_text(source.read_text().replace("output_dict_per_obj", "outputs_by_object"))
    monkeypatch.setenv("PYTHONPATH", str(tmp_path / "site"))
    result, checks = _doctor("sola", "--model-arg", "device=cpu")
    found = _find(checks, "sam2 ")
    assert found["status"] == "FAIL" and str(copy) in found["what"]
    assert "keeps no 'output_dict_per_obj'" in found["detail"]
    assert "sam2==1.1.0" in found["fix"]
    monkeypatch.delenv("PYTHONPATH")
    result, checks = _doctor("sola", "--model-arg", "device=cpu")
    assert "output_dict_per_obj" not in _find(checks, "sam2 ")["detail"]  # the real one passes


def test_doctor_without_the_interpreter(tmp_path):
    result, checks = _doctor("sola", "--model-arg", f"python={tmp_path}/nope/bin/python")
    assert result.exit_code == 1
    assert checks[0]["status"] == "FAIL" and "no such interpreter" in checks[0]["detail"]


def test_doctor_smoke_runs_a_cpu_model_in_a_worker_environment():
    result = CliRunner().invoke(main, ["models", "doctor", "center-box", "--smoke", "--model-arg",
                                       f"python={sys.executable}"])
    assert result.exit_code == 0, result.output
    smoke = next(l for l in result.output.splitlines() if l.startswith("[ok] smoke run"))
    assert "5 frames 128x96 -> masks (5, 96, 128)" in smoke and "peak RSS" in smoke
