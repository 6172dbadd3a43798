"""Upstream contract harness (scripts/upstream-check).

The tests marked ``upstream`` run each model against its real upstream checkout; they skip
unless REFVPS_UPSTREAM names a folder of checkouts (CI has none). The resolver check of the
requirements files asks the package registry and is opt-in too (REFVPS_RESOLVE_ENVS=1). The
rest checks the harness itself on real files.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from refvps.baselines.contract import ENVS_DIR, ContractSpec, model_specs, requirements_text
from refvps.baselines.contract import check as harness
from refvps.baselines.contract.venvs import env_path, extra_installs
from refvps.baselines.registry import segmenter_class

REPO = Path(__file__).resolve().parents[2]
MODELS = sorted(model_specs())


@pytest.mark.upstream
@pytest.mark.parametrize("model", MODELS)
def test_upstream_contract(model, tmp_path):
    result = harness.check_model(model, Path(os.environ["REFVPS_UPSTREAM"]), tmp_path)
    if result.status == "skipped":
        pytest.skip(result.reason)
    assert result.status == "ok", f"{result.reason} (log {result.log})"


@pytest.mark.parametrize("model", MODELS)
def test_resolver_accepts_the_requirements_file(model, tmp_path):
    if os.environ.get("REFVPS_RESOLVE_ENVS") != "1":
        pytest.skip("asks the package registry (slow): set REFVPS_RESOLVE_ENVS=1")
    spec = model_specs()[model]
    done = subprocess.run([sys.executable, "-m", "pip", "install", "--dry-run",
                           "--ignore-installed", "--quiet", "--report", str(tmp_path / "r.json"),
                           "-r", str(spec.env_file(model))], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-3000:]
    names = {item["metadata"]["name"].lower()
             for item in json.loads((tmp_path / "r.json").read_text())["install"]}
    assert {"torch", "diffusers"} <= names or model not in {"rem-ms", "rem-wan"}


def test_every_contract_names_a_wrapper_pinned_to_its_commit_and_an_env_file():
    assert {"rem-ms", "rem-wan"} <= set(MODELS)
    for model, spec in model_specs().items():
        assert segmenter_class(model).upstream.endswith(f"@{spec.commit}"), model
        text = requirements_text(model)
        assert spec.env_file(model).parent == ENVS_DIR and "torch" in text


def test_rem_requirements_pin_the_releases_upstream_needs():
    ms, wan = requirements_text("rem-ms"), requirements_text("rem-wan")
    assert "diffusers==0.15.0" in ms and "torchvision==" in ms  # mst2v_wrapper imports both
    assert "diffusers==0.34.0\n" in wan and "dev" not in wan.split("diffusers==")[1].split()[0]
    assert "xformers" not in "".join(l for l in (ms + wan).splitlines() if not l.startswith("#"))


def test_environment_key_follows_the_requirements_text(tmp_path, monkeypatch):
    monkeypatch.setenv("REFVPS_ENV_CACHE", str(tmp_path / "cache"))
    first = tmp_path / "fam.txt"
    first.write_text("torch==2.13.0\n# refvps-install: --no-deps sam2==1.1.0\n")
    path = env_path(first)
    assert path.parent == tmp_path / "cache" and path.name.startswith("fam-")
    assert env_path(first) == path
    first.write_text("torch==2.14.1\n")
    assert env_path(first) != path
    assert extra_installs("a\n# refvps-install: --no-deps sam2==1.1.0\n") == \
        [["--no-deps", "sam2==1.1.0"]]


def _spec(**changes) -> ContractSpec:
    fields = dict(family="fam", models=("rem-ms",), repo_folder="Nowhere", commit="6dcc5a9",
                  envs={"rem-ms": "rem-ms.txt"}, needs_cuda=False,
                  write_checkpoint=lambda model, repo, folder: {})
    fields.update(changes)
    return ContractSpec(**fields)


def test_cuda_models_skip_without_a_gpu_and_missing_checkouts_are_named(tmp_path, monkeypatch):
    monkeypatch.setattr(harness, "model_specs", lambda: {"rem-ms": _spec(needs_cuda=True)})
    result = harness.check_model("rem-ms", tmp_path, tmp_path / "work", gpu=False)
    assert (result.status, result.reason) == ("skipped", "needs CUDA (no GPU visible)")
    monkeypatch.setattr(harness, "model_specs", lambda: {"rem-ms": _spec()})
    result = harness.check_model("rem-ms", tmp_path, tmp_path / "work", gpu=False)
    assert result.status == "failed" and str(tmp_path / "Nowhere") in result.reason
    quiet = harness.check_model("rem-ms", tmp_path, tmp_path / "work", explicit=False, gpu=False)
    assert quiet.status == "skipped"


def test_a_checkout_at_another_commit_fails_before_any_build(tmp_path, monkeypatch):
    checkout = tmp_path / "Nowhere"
    checkout.mkdir()
    for command in (["init", "-q"], ["-c", "user.name=t", "-c", "user.email=t@t", "commit",
                                     "-q", "--allow-empty", "-m", "x"]):
        subprocess.run(["git", "-C", str(checkout), *command], check=True)
    monkeypatch.setattr(harness, "model_specs", lambda: {"rem-ms": _spec()})
    monkeypatch.setattr(harness, "ensure_env", lambda *a: pytest.fail("built an environment"))
    result = harness.check_model("rem-ms", tmp_path, tmp_path / "work", gpu=False)
    assert result.status == "failed" and "pinned to 6dcc5a9" in result.reason


def test_output_checks_find_every_fault(tmp_path):
    from refvps.baselines.runner import predict

    data = harness.make_contract_sample(tmp_path / "sample")
    out = tmp_path / "p"
    report = predict("center-box", "ref-vps", out, data=data, progress=False)
    assert len(report.finished) == 4  # one clip of the sample, 4 expressions
    spec = _spec()
    problems = harness.output_problems(data, out, spec, tmp_path, "abc")
    assert any("does not name the pinned commit 6dcc5a9" in p for p in problems)
    assert any("checkpoint_sha256" in p for p in problems)
    assert not any(".png" in p or "marker" in p for p in problems)
    masks = sorted(out.glob(f"{harness.CONTRACT_CLIP}/0/*.png"))
    assert len(masks) == 29  # every 24 fps frame of the clip
    Image.fromarray(np.full((96, 160), 7, np.uint8)).save(masks[0])  # not binary
    Image.fromarray(np.zeros((10, 10), np.uint8)).save(masks[1])  # wrong size
    masks[2].unlink()
    (out / harness.CONTRACT_CLIP / "1" / ".done.json").unlink()
    problems = harness.output_problems(data, out, spec, tmp_path, "abc")
    assert any(masks[0].name in p and "expected 0/255" in p for p in problems)
    assert any(masks[1].name in p and "size (10, 10)" in p for p in problems)
    assert any(masks[2].name in p and "missing" in p for p in problems)
    assert any(f"{harness.CONTRACT_CLIP}/1: no valid .done marker" in p for p in problems)


def test_script_needs_an_upstream_folder_and_shows_an_example(tmp_path):
    script = REPO / "scripts" / "upstream-check"
    assert os.access(script, os.X_OK)
    done = subprocess.run([str(script), "--upstream", str(tmp_path / "none")],
                          capture_output=True, text=True, env=dict(os.environ, PYTHON=sys.executable))
    assert done.returncode == 2 and "not a folder" in done.stderr
    shown = subprocess.run([str(script), "--help"], capture_output=True, text=True,
                           env=dict(os.environ, PYTHON=sys.executable))
    assert "--upstream" in shown.stdout and "example:" in shown.stdout
