"""Glue shared by the model wrappers: upstream import paths, offline mode, seeds, resizing.

Pure numpy/PIL functions reproduce the upstream preprocessing exactly (torchvision's
``Resize`` on PIL images is PIL's bilinear resize; ``ToTensor`` + ``Normalize`` are float32
arithmetic). Python 3.8 compatible: wrappers run inside upstream environments.
"""
from __future__ import annotations

import hashlib
import os
import sys
from typing import Sequence, Tuple

import numpy as np

CLASHING_MODULES = ("models", "datasets", "opts", "util", "utils", "module", "tools")
"""Top-level names several upstream repos use for different code."""

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def enter_upstream(repo: str, chdir: bool = True) -> None:
    """Make ``repo`` importable first (its ``models``, ``opts``, ... win) and, as its code uses
    paths relative to the repo root, make it the working directory."""
    if not repo or not os.path.isdir(repo):
        raise FileNotFoundError(f"upstream repository not found: {repo!r} (pass --model-arg repo=DIR)")
    repo = os.path.abspath(repo)
    for name in list(sys.modules):
        top = name.split(".")[0]
        module = sys.modules[name]
        origin = getattr(module, "__file__", None) or ""
        if top in CLASHING_MODULES and not origin.startswith(repo):
            del sys.modules[name]
    if repo in sys.path:
        sys.path.remove(repo)
    sys.path.insert(0, repo)
    if chdir:
        os.chdir(repo)


def set_offline(offline: bool) -> None:
    """No hidden downloads: Hugging Face hub and transformers read only local caches."""
    if offline:
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


def derive_seed(seed: int, expression: str, n_frames: int) -> int:
    """A seed per (seed, expression, video length), independent of processing order."""
    key = f"{seed}\0{expression}\0{n_frames}".encode()
    return int.from_bytes(hashlib.sha256(key).digest()[:4], "little")


def seed_everything(seed: int) -> None:
    import random

    import torch

    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def short_side_size(height: int, width: int, short: int) -> Tuple[int, int]:
    """(h, w) after torchvision ``Resize(short)``: the short side becomes ``short``, the long
    side ``int(short * long / short_side)`` (truncated)."""
    if width <= height:
        return int(short * height / width), short
    return short, int(short * width / height)


def shortest_edge_size(height: int, width: int, short: int, max_size: int) -> Tuple[int, int]:
    """(h, w) after detectron2 ``ResizeShortestEdge(short, max_size)`` (rounded half up)."""
    scale = short / min(height, width)
    new_h, new_w = height * scale, width * scale
    if max(new_h, new_w) > max_size:
        factor = max_size / max(new_h, new_w)
        new_h, new_w = new_h * factor, new_w * factor
    return int(new_h + 0.5), int(new_w + 0.5)


def pil_resize(frame: np.ndarray, height: int, width: int) -> np.ndarray:
    """PIL bilinear resize of an RGB uint8 frame (what torchvision and detectron2 do on PIL)."""
    from PIL import Image

    return np.asarray(Image.fromarray(frame).resize((width, height), Image.BILINEAR))


def to_normalised_chw(frame: np.ndarray, mean: Sequence[float], std: Sequence[float]) -> np.ndarray:
    """``ToTensor`` then ``Normalize(mean, std)`` as float32 C x H x W."""
    chw = frame.transpose(2, 0, 1).astype(np.float32) / np.float32(255)
    mean_arr = np.asarray(mean, np.float32)[:, None, None]
    std_arr = np.asarray(std, np.float32)[:, None, None]
    return (chw - mean_arr) / std_arr


def resize_scores(scores, height: int, width: int):
    """Bilinear (align_corners=False) resize of N x C x h x w torch scores to the input size."""
    import torch.nn.functional as F

    return F.interpolate(scores, size=(height, width), mode="bilinear", align_corners=False)


UPSTREAM_MARKERS = {
    "ReferEverything": ("models/mst2v_wrapper.py", "models/want2v_wrapper.py"),
    "VD-IT": ("models/diffvos_cross.py", "inference_davis.py", "Text-To-Video-Finetuning"),
    "UniRef": ("projects/UniRef/uniref/uniref.py", "detectron2/projects/__init__.py"),
    "SOLA": ("module/module.py", "track_generation/generate_tokens_grid.py", "configs/mevis"),
}
"""Files or folders that only each upstream repository has (at the pinned commits)."""


def identify_repo(path: str) -> str:
    """Which upstream ``path`` is a checkout of (a key of :data:`UPSTREAM_MARKERS`), or ''."""
    for name, markers in UPSTREAM_MARKERS.items():
        if all(os.path.exists(os.path.join(path, marker)) for marker in markers):
            return name
    return ""


def repo_problem(path: str, expected: str) -> str:
    """Why ``path`` is not a checkout of ``expected`` ('' when it is)."""
    if not path:
        return "not given (pass --model-arg repo=DIR)"
    if not os.path.isdir(path):
        return f"{path} is not a folder"
    found = identify_repo(path)
    if found == expected:
        return ""
    missing = [m for m in UPSTREAM_MARKERS[expected] if not os.path.exists(os.path.join(path, m))]
    what = f"it looks like the {found} repository" if found else "it is no known upstream checkout"
    return f"{path} is not a {expected} checkout: {what} (missing {', '.join(missing)})"


def with_repo_check(requirements: list, repo: str, expected: str) -> list:
    """``requirements`` with the ``repo`` path check replaced by a check of what it holds."""
    from refvps.baselines.base import Requirement

    problem = repo_problem(repo, expected)
    check = Requirement(f"repo {repo} ({expected} checkout)" if repo else "repo (model argument)",
                        not problem, problem)
    return [check if r.what.startswith("repo") else r for r in requirements]


def checkpoint_keys_check(what: str, path: str, key: str, fix: str):
    """A doctor check that ``path`` loads with torch and holds a dict with ``key``."""
    from refvps.baselines.base import file_sha256
    from refvps.baselines.doctor import FAIL, OK, Check

    if not os.path.isfile(path):
        return None  # reported with the paths
    import torch

    try:
        state = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as exc:
        return Check(what, FAIL, f"torch.load failed: {type(exc).__name__}: {str(exc)[:300]}", fix)
    if not isinstance(state, dict) or key not in state:
        found = sorted(state)[:6] if isinstance(state, dict) else type(state).__name__
        return Check(what, FAIL, f"no {key!r} entry (found {found})", fix)
    return Check(what, OK, f"{len(state[key])} tensors under {key!r}; sha256 "
                 f"{file_sha256(path)[:16]}... (upstream publishes no checksum)")


def cuda_only_check(model: str, device: str, why: str):
    from refvps.baselines.doctor import FAIL, Check

    if str(device).startswith("cuda"):
        return None
    return Check("device", FAIL, f"{model} cannot run on {device}: {why}",
                 "run it on a machine with an NVIDIA GPU (device=cuda)")
