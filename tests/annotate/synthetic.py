"""Synthetic clips with a known target mask, written with OpenCV (fixed seed)."""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

HEIGHT, WIDTH = 96, 128
SIDE = 28  # the target square's side
CODE = 16  # frame-index code blocks: two 16x16 grey squares in the top-left corner


def square_origin(t: float) -> tuple[int, int]:
    """Top-left (x, y) of the square at time t seconds: it drifts right and slightly down."""
    return int(round(16 + 24 * t)), int(round(36 + 6 * t))


def truth_at(t: float) -> np.ndarray:
    x, y = square_origin(t)
    mask = np.zeros((HEIGHT, WIDTH), bool)
    mask[y:y + SIDE, x:x + SIDE] = True
    return mask


def _background() -> np.ndarray:
    rng = np.random.default_rng(7)
    noise = rng.normal(0, 1, (HEIGHT, WIDTH, 3))
    noise = cv2.GaussianBlur(noise, (0, 0), 2.0)
    base = np.array([60, 110, 70], float)  # BGR greenish
    return np.clip(base + 40 * noise / noise.std(), 0, 255)


def _texture() -> np.ndarray:
    rng = np.random.default_rng(11)
    noise = cv2.GaussianBlur(rng.normal(0, 1, (SIDE, SIDE, 3)), (0, 0), 1.5)
    return np.clip(np.array([40, 60, 220], float) + 30 * noise / noise.std(), 0, 255)  # red


def render(index: int, t: float) -> np.ndarray:
    image = _background().copy()
    x, y = square_origin(t)
    image[y:y + SIDE, x:x + SIDE] = _texture()
    image[:CODE, :CODE] = 16 * (index // 16) + 8
    image[:CODE, CODE:2 * CODE] = 16 * (index % 16) + 8
    return image.astype(np.uint8)


def decode_index(image: np.ndarray) -> int:
    """The source frame index drawn by :func:`render` (robust to codec noise)."""
    hi = int(round((image[4:12, 4:12].mean() - 8) / 16))
    lo = int(round((image[4:12, CODE + 4:CODE + 12].mean() - 8) / 16))
    return 16 * hi + lo


def write_video(path: Path, fps: float, seconds: float = 2.0, fourcc: str = "mp4v") -> Path:
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*fourcc), fps, (WIDTH, HEIGHT))
    if not writer.isOpened():
        raise RuntimeError(f"OpenCV cannot write {fourcc} to {path}")
    for i in range(int(round(fps * seconds))):
        writer.write(render(i, i / fps))
    writer.release()
    return path


def write_frames(folder: Path, fps: float, seconds: float = 2.0) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(int(round(fps * seconds))):
        cv2.imwrite(str(folder / f"img_{i}.png"), render(i, i / fps))
    return folder
