"""Reference segmenters for tests and calibration: known outputs, no weights, no GPU.

``oracle`` and ``noisy-oracle`` read the benchmark's ground truth (``predict_query``); on frames
without annotation they copy the nearest annotated frame (the earlier one on a tie).
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import List

import numpy as np

from refvps.baselines.base import BaseSegmenter
from refvps.baselines.protocol import VideoInput, check_masks


class EmptySegmenter(BaseSegmenter):
    """All background: the floor of every metric."""

    name = "empty"

    def segment(self, frames: List[np.ndarray], expression: str) -> np.ndarray:
        return np.zeros((len(frames), *frames[0].shape[:2]), bool)


class FullFrameSegmenter(BaseSegmenter):
    """All foreground: J equals the target's share of each frame."""

    name = "full-frame"

    def segment(self, frames: List[np.ndarray], expression: str) -> np.ndarray:
        return np.ones((len(frames), *frames[0].shape[:2]), bool)


@dataclass
class CenterBoxConfig:
    frac: float = 0.5  # box height / frame height (and width / width)


def center_box(height: int, width: int, frac: float) -> np.ndarray:
    """A centred box covering ``frac`` of the height and of the width (edges rounded half up)."""
    if not 0.0 <= frac <= 1.0:
        raise ValueError(f"frac must lie in [0, 1], got {frac}")
    mask = np.zeros((height, width), bool)

    def edge(value: float) -> int:
        return int(np.floor(value + 0.5))

    y0, y1 = edge(height * (1 - frac) / 2), edge(height * (1 + frac) / 2)
    x0, x1 = edge(width * (1 - frac) / 2), edge(width * (1 + frac) / 2)
    mask[y0:y1, x0:x1] = True
    return mask


class CenterBoxSegmenter(BaseSegmenter):
    """The central box of every frame: the photographer's-bias baseline."""

    name = "center-box"
    Config = CenterBoxConfig

    def segment(self, frames: List[np.ndarray], expression: str) -> np.ndarray:
        box = center_box(*frames[0].shape[:2], self.config.frac)
        return np.repeat(box[None], len(frames), axis=0)


class OracleSegmenter(BaseSegmenter):
    """The ground truth itself (Ignore pixels as background): must score J = 1."""

    name = "oracle"

    def segment(self, frames, expression):
        raise TypeError("the oracle needs the benchmark's ground truth; run it through "
                        "`refvps predict` (it implements predict_query)")

    def predict_query(self, video: VideoInput, query, benchmark, task) -> np.ndarray:
        gt = benchmark.load_gt(task)
        names = list(video.frame_names)
        position = {name: i for i, name in enumerate(names)}
        annotated = sorted((position[f], f) for f in query.frames if f in position)
        if not annotated:
            height, width = video.frames[0].shape[:2]
            return np.zeros((len(names), height, width), bool)
        targets = {f: gt.target(query, f)[0] for _, f in annotated}
        anchors = np.array([p for p, _ in annotated])
        out = []
        for index in range(len(names)):
            nearest = int(np.argmin(np.abs(anchors - index)))  # argmin takes the earlier on ties
            out.append(targets[annotated[nearest][1]])
        masks = self.perturb(np.stack(out), query)
        return check_masks(masks, len(names), masks.shape[1:], self.name)

    def perturb(self, masks: np.ndarray, query) -> np.ndarray:
        return masks


@dataclass
class NoisyOracleConfig:
    flip: float = 0.05  # probability that a pixel is flipped
    seed: int = 0


class NoisyOracleSegmenter(OracleSegmenter):
    """The oracle with each pixel flipped with probability ``flip`` (default 0.05).

    The noise depends only on (seed, video, query), so any executor and any order give the
    same bytes."""

    name = "noisy-oracle"
    Config = NoisyOracleConfig

    def perturb(self, masks: np.ndarray, query) -> np.ndarray:
        key = f"{self.config.seed}/{query.video}/{query.query_id}".encode()
        rng = np.random.default_rng(int.from_bytes(hashlib.sha256(key).digest()[:8], "little"))
        return masks ^ (rng.random(masks.shape) < self.config.flip)
