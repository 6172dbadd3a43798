"""A classical referring baseline with no weights and no GPU: colour saliency + optical flow.

It ignores the expression. Per frame it combines

* frequency-tuned colour saliency (Achanta et al., CVPR 2009): the distance of each pixel's
  blurred Lab colour from the frame's mean Lab colour; and
* motion: the magnitude of Farneback optical flow to the neighbouring frame, minus its median
  (a crude camera-motion compensation);

each scaled to [0, 1] per frame, mixed with weight ``motion_weight``, thresholded with Otsu,
cleaned with a morphological opening, and reduced to its largest connected component. It shows
how much of a benchmark salient, moving stuff explains without reading the text.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import List

import numpy as np

from refvps.baselines.base import BaseSegmenter


@dataclass
class SaliencyFlowConfig:
    motion_weight: float = 0.5
    blur: int = 5  # Gaussian kernel size for the saliency colours (odd)
    open_radius: int = 2


def _unit(values: np.ndarray) -> np.ndarray:
    low, high = float(values.min()), float(values.max())
    return np.zeros_like(values, np.float32) if high <= low else (values - low) / (high - low)


def colour_saliency(frame: np.ndarray, blur: int) -> np.ndarray:
    import cv2

    lab = cv2.cvtColor(cv2.GaussianBlur(frame, (blur, blur), 0), cv2.COLOR_RGB2LAB).astype(np.float32)
    return np.linalg.norm(lab - lab.reshape(-1, 3).mean(0), axis=2)


def motion_energy(grey: np.ndarray, other: np.ndarray) -> np.ndarray:
    import cv2

    flow = cv2.calcOpticalFlowFarneback(grey, other, None, 0.5, 3, 15, 3, 5, 1.2, 0)
    magnitude = np.linalg.norm(flow, axis=2)
    return np.abs(magnitude - np.median(magnitude))


def largest_component(mask: np.ndarray) -> np.ndarray:
    import cv2

    count, labels, stats, _ = cv2.connectedComponentsWithStats(mask.astype(np.uint8), connectivity=8)
    if count <= 1:
        return np.zeros_like(mask, bool)
    return labels == 1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA]))


class SaliencyFlowSegmenter(BaseSegmenter):
    """Colour saliency + optical flow, expression ignored: what salient motion alone explains."""

    name = "saliency-flow"
    Config = SaliencyFlowConfig

    def segment(self, frames: List[np.ndarray], expression: str) -> np.ndarray:
        import cv2

        cfg = self.config
        greys = [cv2.cvtColor(f, cv2.COLOR_RGB2GRAY) for f in frames]
        kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * cfg.open_radius + 1,) * 2)
        out = np.zeros((len(frames), *frames[0].shape[:2]), bool)
        for t, frame in enumerate(frames):
            score = (1 - cfg.motion_weight) * _unit(colour_saliency(frame, cfg.blur))
            if len(frames) > 1 and cfg.motion_weight > 0:
                other = greys[t + 1] if t + 1 < len(frames) else greys[t - 1]
                score = score + cfg.motion_weight * _unit(motion_energy(greys[t], other))
            score8 = np.round(_unit(score) * 255).astype(np.uint8)
            _, binary = cv2.threshold(score8, 0, 1, cv2.THRESH_BINARY + cv2.THRESH_OTSU)
            binary = cv2.morphologyEx(binary, cv2.MORPH_OPEN, kernel)
            out[t] = largest_component(binary > 0)
        return out
