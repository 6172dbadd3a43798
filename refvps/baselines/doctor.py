"""``refvps models doctor``: check a model's installation inside its own environment.

The host (:func:`run_doctor`) starts ``python -c BOOT`` under the model's interpreter (the
``python=`` model argument, else this one) with refvps's folder on its path; there
:func:`main` runs the generic checks (torch, CUDA, GPU memory, paths), then the model's own
``doctor_checks()`` (upstream import, checkpoint keys, versions, base models), and with
``--smoke`` one query on five small synthetic frames. Each check is one JSON line on stdout.
Python 3.8 compatible: it runs inside upstream environments.
"""
from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import time
import traceback
from dataclasses import asdict, dataclass
from typing import Any, Dict, Iterator, List, Optional

BOOT = ("import sys; sys.path.insert(0, sys.argv[1]); "
        "from refvps.baselines.doctor import main; main(sys.argv[2:])")

OK, FAIL, WARN, INFO = "ok", "FAIL", "warn", "info"


@dataclass(frozen=True)
class Check:
    """One finding; ``fix`` says what to do when ``status`` is FAIL or warn."""

    what: str
    status: str
    detail: str = ""
    fix: str = ""


def package_version(name: str) -> Optional[str]:
    try:
        from importlib.metadata import version

        return version(name)
    except Exception:
        return None


def try_import(module: str, fix: str, what: str = "") -> Check:
    """Import ``module``; OK with its version and location, or FAIL with the error."""
    import importlib

    label = what or f"python package {module}"
    try:
        mod = importlib.import_module(module)
    except Exception as exc:  # an ImportError, or a broken binary raising anything
        return Check(label, FAIL, f"import failed: {type(exc).__name__}: {exc}", fix)
    where = os.path.dirname(getattr(mod, "__file__", "") or "") or "?"
    version = getattr(mod, "__version__", None) or package_version(module.split(".")[0]) or "?"
    return Check(label, OK, f"{version} at {where}")


def torch_checks(device: str, need_gib: Optional[float]) -> List[Check]:
    """torch and CUDA versions; the GPU and its memory when ``device`` is a CUDA device."""
    found = try_import("torch", "install torch in this environment (see the model's docs page)")
    if found.status != OK:
        return [found]
    import torch

    out = [Check("torch", OK, f"{torch.__version__} (CUDA build {torch.version.cuda or 'none'})")]
    if not str(device).startswith("cuda"):
        return out + [Check("device", INFO, f"{device} (no GPU check)")]
    if not torch.cuda.is_available():
        return out + [Check("CUDA GPU", FAIL, "torch.cuda.is_available() is False",
                            "run on a machine with an NVIDIA GPU and a CUDA build of torch, or "
                            "pass --model-arg device=cpu where the model supports it")]
    index = torch.device(device).index
    index = torch.cuda.current_device() if index is None else index
    free, total = torch.cuda.mem_get_info(index)
    detail = (f"{torch.cuda.get_device_name(index)}: {total / 2**30:.1f} GiB, "
              f"{free / 2**30:.1f} GiB free")
    if need_gib is None:
        return out + [Check("CUDA GPU", OK, detail + "; this model's need is not measured")]
    if free / 2**30 < need_gib:
        return out + [Check("CUDA GPU", WARN, detail + f"; the model needs about {need_gib:g} GiB",
                            "free the GPU, pick another one (device=cuda:N), or use a shorter "
                            "clip_len where the model has one")]
    return out + [Check("CUDA GPU", OK, detail + f"; the model needs about {need_gib:g} GiB")]


def hub_model_check(what: str, name: str, offline: bool, files=("config.json",)) -> Check:
    """A Hugging Face model given as a folder, or as a hub id that must be cached when offline."""
    if os.path.isdir(name):
        missing = [f for f in files if not os.path.exists(os.path.join(name, f))]
        if missing:
            return Check(what, FAIL, f"folder {name} lacks {', '.join(missing)}",
                         "point it at a folder written by save_pretrained / huggingface-cli download")
        return Check(what, OK, f"folder {name}")
    if name.startswith((os.path.sep, ".", "~")):
        return Check(what, FAIL, f"no folder {name}", "pass an existing folder or a hub id")
    try:
        from huggingface_hub import try_to_load_from_cache
    except ImportError:
        return Check(what, WARN, f"{name}: huggingface_hub missing, cache not checked")
    cached = try_to_load_from_cache(name, files[0])
    if isinstance(cached, str):
        return Check(what, OK, f"{name} in the Hugging Face cache")
    fix = f"huggingface-cli download {name} (or pass a local folder)"
    if offline:
        return Check(what, FAIL, f"{name} is not in the Hugging Face cache and offline=true", fix)
    return Check(what, WARN, f"{name} is not cached; it will be downloaded on load", fix)


def smoke_frames(n: int = 5, height: int = 96, width: int = 128):
    """``n`` RGB frames of a red square moving right on grey, and an expression for it."""
    import numpy as np

    frames = []
    for t in range(n):
        frame = np.full((height, width, 3), 110, np.uint8)
        x = 10 + 8 * t
        frame[30:70, x:x + 40] = (210, 40, 40)
        frames.append(frame)
    return frames, "the red square moving right"


def smoke(segmenter) -> Check:
    """One query on five frames: seconds and peak memory."""
    frames, expression = smoke_frames()
    torch = sys.modules.get("torch")
    cuda = torch is not None and torch.cuda.is_available()
    if cuda:
        torch.cuda.reset_peak_memory_stats()
    start = time.time()
    masks = segmenter.predict(frames, expression)
    seconds = time.time() - start
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    memory = f"peak RSS {rss:.0f} MB"
    if cuda:
        memory += f", peak CUDA {torch.cuda.max_memory_allocated() / 2**20:.0f} MB"
    return Check("smoke run", OK, f"{len(frames)} frames {frames[0].shape[1]}x{frames[0].shape[0]}"
                 f" -> masks {tuple(masks.shape)}, {int(masks.sum())} foreground pixels, "
                 f"{seconds:.1f} s, {memory}")


def checks_for(target: str, args: Dict[str, Any], run_smoke: bool) -> Iterator[Check]:
    """All checks of one model, in the current environment."""
    import platform

    from refvps.baselines.registry import segmenter_class

    yield Check("python", INFO, f"{platform.python_version()} at {sys.executable}")
    try:
        segmenter = segmenter_class(target)(**args)
    except Exception as exc:
        yield Check("model arguments", FAIL, str(exc), "see `refvps models` and the model's docs page")
        return
    cfg = getattr(segmenter, "config", None)
    found = torch_checks(str(getattr(cfg, "device", "cpu")), getattr(segmenter, "gpu_memory_gib", None))
    for req in segmenter.requirements() if hasattr(segmenter, "requirements") else []:
        if req.what.startswith("CUDA GPU") or (req.what.startswith("python package")
                                               and hasattr(segmenter, "doctor_checks")):
            continue  # the torch check and the model's own checks cover them, with a fix each
        found.append(Check(req.what, OK if req.ok else FAIL, req.detail,
                           "" if req.ok else "pass the right --model-arg (see the model's docs page)"))
    yield from found
    if hasattr(segmenter, "doctor_checks"):
        for check in segmenter.doctor_checks():
            found.append(check)
            yield check
    if not run_smoke:
        return
    if any(c.status == FAIL for c in found):
        yield Check("smoke run", FAIL, "not run: fix the failures above first")
        return
    try:
        yield smoke(segmenter)
    except Exception as exc:
        yield Check("smoke run", FAIL, f"{type(exc).__name__}: {exc}",
                    "see the traceback above; run `refvps models doctor` without --smoke")
        traceback.print_exc()


def main(argv: Optional[List[str]] = None) -> None:
    import argparse

    parser = argparse.ArgumentParser(description="refvps models doctor (model side)")
    parser.add_argument("--target", required=True)
    parser.add_argument("--args", default="{}")
    parser.add_argument("--smoke", action="store_true")
    options = parser.parse_args(argv)
    out = sys.stdout
    sys.stdout = sys.stderr  # upstream prints go to stderr; stdout carries the checks
    for check in checks_for(options.target, json.loads(options.args), options.smoke):
        out.write(json.dumps(asdict(check)) + "\n")
        out.flush()


def run_doctor(name: str, model_args: Dict[str, Any], smoke_run: bool = False,
               timeout_s: float = 3600.0) -> List[Check]:
    """Run the checks of ``name`` in its worker environment (``python=`` in ``model_args``)."""
    from pathlib import Path

    import refvps
    from refvps.baselines.registry import registered

    args = dict(model_args)
    python = args.pop("python", None) or sys.executable
    known = registered()
    target = known[name].target if name in known else name
    parent = str(Path(refvps.__file__).resolve().parent.parent)
    command = [python, "-c", BOOT, parent, "--target", target, "--args", json.dumps(args)]
    if smoke_run:
        command.append("--smoke")
    try:
        proc = subprocess.run(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              timeout=timeout_s, env=dict(os.environ, PYTHONUNBUFFERED="1"))
    except FileNotFoundError:
        return [Check(f"python {python}", FAIL, "no such interpreter",
                      "pass --model-arg python=/path/to/env/bin/python")]
    except subprocess.TimeoutExpired:
        return [Check("doctor", FAIL, f"no answer within {timeout_s:.0f} s")]
    checks = []
    for line in proc.stdout.decode(errors="replace").splitlines():
        try:
            checks.append(Check(**json.loads(line)))
        except (ValueError, TypeError):
            continue
    if proc.returncode != 0:
        tail = proc.stderr.decode(errors="replace").strip().splitlines()[-5:]
        checks.append(Check(f"python {python}", FAIL, f"exited with {proc.returncode}: "
                            + " | ".join(tail), "is it a Python >= 3.8 with numpy and Pillow?"))
    return checks
