"""`refvps models doctor sola` against the real SOLA checkout in the contract environment.

Opt-in: REFVPS_UPSTREAM names a folder holding the checkouts (SOLA/, and ReferEverything/ or
VD-IT/ for the wrong-repository case). The environment is the one `scripts/upstream-check`
builds from refvps/baselines/envs/sola.txt (cached in REFVPS_ENV_CACHE), and the checkpoints
are its tiny random-weight ones (refvps/baselines/contract/sola.py).
"""
from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from click.testing import CliRunner

from refvps.cli import main

pytestmark = pytest.mark.upstream


@pytest.fixture(scope="module")
def sola(tmp_path_factory):
    from refvps.baselines.contract import spec_for
    from refvps.baselines.contract.check import _prepare, _tiny_checkpoint

    upstream = Path(os.environ.get("REFVPS_UPSTREAM", ""))
    checkout = upstream / "SOLA"
    if not checkout.is_dir():
        pytest.skip(f"no SOLA checkout in {upstream}")
    folder = tmp_path_factory.mktemp("sola-doctor")
    log = folder / "log.txt"
    python, env = _prepare("sola", spec_for("sola"), checkout, folder, log)
    args = _tiny_checkpoint("sola", checkout, folder, python, env, log)
    args.update(repo=str(checkout), python=str(python))
    return upstream, args, folder


def _doctor(args: dict, *extra: str):
    command = ["models", "doctor", "sola", "--json", *extra]
    for key, value in args.items():
        command += ["--model-arg", f"{key}={value}"]
    result = CliRunner().invoke(main, command, env={"HF_HUB_OFFLINE": "1",
                                                    "TRANSFORMERS_OFFLINE": "1"})
    return result.exit_code, json.loads(result.output[:result.output.rindex("]") + 1])


def test_doctor_smoke_passes_with_a_working_install(sola):
    _, args, _ = sola
    code, checks = _doctor(args, "--smoke")
    failed = [c for c in checks if c["status"] == "FAIL"]
    assert code == 0 and not failed, failed
    smoke = next(c for c in checks if c["what"] == "smoke run")
    assert "5 frames 128x96 -> masks (5, 96, 128)" in smoke["detail"]
    sam2 = next(c for c in checks if c["what"].startswith("sam2 1.1.0"))
    assert sam2["status"] == "ok"
    assert next(c for c in checks if c["what"] == "torchvision")["status"] == "ok"


def test_doctor_rejects_bad_checkpoints(sola, tmp_path):
    import torch

    _, args, _ = sola
    state = torch.load(args["checkpoint"], map_location="cpu", weights_only=True)
    first = sorted(state)[0]
    del state[first]
    torch.save(state, tmp_path / "missing.pth")
    (tmp_path / "text.pth").write_text("not a checkpoint")
    for path, expected in ((tmp_path / "missing.pth", f"1 missing keys (e.g. {first})"),
                           (tmp_path / "text.pth", "torch.load failed")):
        code, checks = _doctor(dict(args, checkpoint=str(path)))
        found = next(c for c in checks if c["what"].startswith("selector checkpoint"))
        assert code == 1 and found["status"] == "FAIL" and expected in found["detail"]
        assert "train.py" in found["fix"]
    code, checks = _doctor(dict(args, sam2_checkpoint=args["checkpoint"]))
    found = next(c for c in checks if c["what"].startswith("SAM2 checkpoint"))
    assert code == 1 and found["status"] == "FAIL" and "sam2_config" in found["fix"]


@pytest.mark.parametrize("other", ["ReferEverything", "VD-IT"])
def test_doctor_rejects_another_upstream_as_the_sola_repo(sola, other):
    upstream, args, _ = sola
    if not (upstream / other).is_dir():
        pytest.skip(f"no {other} checkout in {upstream}")
    code, checks = _doctor(dict(args, repo=str(upstream / other)))
    repo = next(c for c in checks if c["what"].startswith("repo "))
    assert code == 1 and repo["status"] == "FAIL"
    assert f"looks like the {other} repository" in repo["detail"]
