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
