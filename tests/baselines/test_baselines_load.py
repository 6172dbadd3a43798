"""A model that cannot load stops `refvps predict` once, in every mode; run.json describes the
model as it was really loaded (real processes: the CLI, model workers, Ray actors)."""
from __future__ import annotations

import hashlib
import json
import subprocess
import sys

import pytest

from refvps.baselines.protocol import ModelLoadError
from refvps.baselines.runner import predict
from refvps.loaders import load_benchmark


def _loads(log):
    if not log.exists():
        return []
    return [json.loads(line) for line in log.read_text().splitlines()
            if json.loads(line).get("event") == "load"]


def _predict_cli(small_root, out, *model_args):
    command = [sys.executable, "-m", "refvps", "predict", "--model", "refvps_standins:Loads",
               "--data", str(small_root), "--out", str(out), "--no-progress"]
    for arg in model_args:
        command += ["--model-arg", arg]
    return subprocess.run(command, capture_output=True, text=True, timeout=300)


@pytest.mark.parametrize("mode", ["in-process", "worker"])
def test_a_load_error_stops_the_run_with_one_message(small_root, tmp_path, standins, mode):
    log, out = tmp_path / "log.jsonl", tmp_path / "p"
    extra = [f"python={sys.executable}"] if mode == "worker" else []
    done = _predict_cli(small_root, out, f"log={log}", "fail=true", *extra)
    assert done.returncode == 2, done.stdout + done.stderr
    assert done.stderr.count("could not load") + done.stderr.count("could not be loaded") == 1
    assert "stand-in checkpoint /nowhere/ckpt.pth not found" in done.stderr
    assert "FAILED" not in done.stdout and "Traceback" not in done.stderr
    assert len(_loads(log)) == 1  # 12 queries, one load attempt
    assert not (out / "run.json").exists() and not (out / "failures.json").exists()
    assert not list(out.glob("*/*/*.png"))


def test_a_load_error_on_ray_stops_the_run(small_root, tmp_path, ray_instance):
    bench = load_benchmark("ref-vps", small_root)
    args = {"repo": str(tmp_path / "no-checkout"), "checkpoint": str(tmp_path / "none.pth")}
    with pytest.raises(ModelLoadError, match="could not be loaded.*no-checkout") as caught:
        predict("rem-ms", bench, tmp_path / "p", executor="ray", workers=2, model_args=args,
                progress=False)
    assert str(caught.value).count("could not be loaded") == 1
    assert not (tmp_path / "p" / "run.json").exists() and not list((tmp_path / "p").glob("*/*"))


def _git_checkout(folder):
    folder.mkdir()
    (folder / "model.py").write_text("x = 1\n")
    for command in (["init", "-q"], ["add", "model.py"],
                    ["-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "upstream"]):
        subprocess.run(["git", "-C", str(folder), *command], check=True)
    return subprocess.run(["git", "-C", str(folder), "rev-parse", "HEAD"], check=True,
                          capture_output=True, text=True).stdout.strip()


@pytest.mark.parametrize("mode", ["in-process", "worker"])
def test_run_json_describes_the_loaded_model(small_root, tmp_path, standins, mode):
    head = _git_checkout(tmp_path / "upstream")
    checkpoint = tmp_path / "ckpt.pth"
    checkpoint.write_bytes(b"weights" * 1000)
    log, out = tmp_path / "log.jsonl", tmp_path / "p"
    extra = [f"python={sys.executable}"] if mode == "worker" else []
    done = _predict_cli(small_root, out, f"log={log}", f"repo={tmp_path / 'upstream'}",
                        f"checkpoint={checkpoint}", *extra)
    assert done.returncode == 0, done.stderr
    info = json.loads((out / "run.json").read_text())["info"]
    assert info["version"] == "7" and info["upstream"] == "acme/model@0123abc"
    assert info["upstream_commit"] == head
    assert info["checkpoint_sha256"] == hashlib.sha256(b"weights" * 1000).hexdigest()
    assert info["params"]["checkpoint"] == str(checkpoint)
    assert len(_loads(log)) == 1


def test_runner_and_ray_runner_do_not_import_each_other():
    code = ("import sys, importlib; importlib.import_module(sys.argv[1]); "
            "print(sys.argv[2] in sys.modules)")
    for module, other in (("refvps.baselines.runner", "refvps.baselines.ray_runner"),
                          ("refvps.baselines.ray_runner", "refvps.baselines.runner")):
        done = subprocess.run([sys.executable, "-c", code, module, other], capture_output=True,
                              text=True, check=True)
        assert done.stdout.strip() == "False", (module, other)
