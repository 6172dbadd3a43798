"""Overlay videos of one query: GT (pink), Ignore (yellow), prediction (cyan), expression caption.

Frames are the query's scored frames; the MP4 is written with ``cv2.VideoWriter`` (mp4v), the GIF
with Pillow. Frame images come from ``Benchmark.frame_path``.
"""
from __future__ import annotations

import textwrap
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from refvps.errors import RefvpsError
from refvps.loaders.base import Benchmark, Query
from refvps.metrics import region_similarity

GT_COLOUR = (255, 105, 180)        # pink (RGB)
IGNORE_COLOUR = (255, 215, 0)      # yellow
PRED_COLOUR = (0, 200, 255)        # cyan
FILL_ALPHA = 0.45
CAPTION_PX = 14
VIDEO_EXTS = (".mp4", ".gif")


def find_query(bench: Benchmark, video: str, query_id: str) -> Query:
    for query in bench.queries():
        if query.video == video and str(query.query_id) == str(query_id):
            return query
    known = sorted({q.query_id for q in bench.queries() if q.video == video})
    where = f"queries of {video}: {', '.join(known)}" if known else f"no video {video!r}"
    raise RefvpsError(f"no query {video}/{query_id} in {bench.title} ({where})")


def _edge(mask: np.ndarray) -> np.ndarray:
    padded = np.pad(mask, 1)
    core = (padded[:-2, 1:-1] & padded[2:, 1:-1] & padded[1:-1, :-2] & padded[1:-1, 2:])
    return mask & ~core


def overlay(image: np.ndarray, fg: np.ndarray, void: np.ndarray | None,
            pred: np.ndarray | None) -> np.ndarray:
    """RGB uint8 frame with GT and Ignore filled and the prediction filled and outlined."""
    out = image.astype(np.float32)
    layers = [(fg, GT_COLOUR)] + ([(void, IGNORE_COLOUR)] if void is not None else [])
    if pred is not None:
        layers.append((pred, PRED_COLOUR))
    for mask, colour in layers:
        out[mask] = (1 - FILL_ALPHA) * out[mask] + FILL_ALPHA * np.asarray(colour, np.float32)
    if pred is not None:
        out[_edge(pred)] = PRED_COLOUR
    return out.round().astype(np.uint8)


def caption(frame: np.ndarray, lines: list[str]) -> np.ndarray:
    """The frame with a black caption band below it."""
    font = ImageFont.load_default(size=CAPTION_PX)
    width = frame.shape[1]
    chars = max(12, int(width / (CAPTION_PX * 0.55)))
    wrapped = [w for line in lines for w in (textwrap.wrap(line, chars) or [""])]
    band = Image.new("RGB", (width, (CAPTION_PX + 4) * len(wrapped) + 6), (0, 0, 0))
    draw = ImageDraw.Draw(band)
    for row, text in enumerate(wrapped):
        draw.text((4, 3 + row * (CAPTION_PX + 4)), text, fill=(255, 255, 255), font=font)
    return np.vstack([frame, np.asarray(band)])


def render_query(bench: Benchmark, query: Query, preds=None) -> list[np.ndarray]:
    """One captioned RGB frame per scored frame of ``query``."""
    gt = bench.load_gt(bench_task(bench, query))
    frames = []
    for frame in query.frames:
        fg, void = gt.target(query, frame)
        path = bench.frame_path(query.video, frame)
        try:
            image = np.asarray(Image.open(path).convert("RGB"))
        except FileNotFoundError:
            raise RefvpsError(f"{path}: frame image not found") from None
        pred = None if preds is None else preds.read_binary(bench.prediction_relpath(query, frame))
        line = f"{query.video} / {query.query_id}  frame {frame}"
        if pred is not None:
            line += f"  J={region_similarity(fg, pred, void):.3f}"
        elif preds is not None:
            line += "  (no prediction)"
        legend = "pink: GT   yellow: Ignore" + ("   cyan: prediction" if preds is not None else "")
        frames.append(caption(overlay(image, fg, void, pred), [f'"{query.text}"', line, legend]))
    return frames


def bench_task(bench: Benchmark, query: Query):
    for task in bench.tasks():
        if task.video == query.video:
            return task
    raise RefvpsError(f"no video {query.video!r} in {bench.title}")


def write_video(frames: list[np.ndarray], out: str | Path, fps: float) -> Path:
    """Write RGB frames (padded to a common even size) as .mp4 (OpenCV) or .gif (Pillow)."""
    import cv2

    out = Path(out)
    if out.suffix.lower() not in VIDEO_EXTS:
        raise RefvpsError(f"{out}: unsupported output type; use one of {', '.join(VIDEO_EXTS)}")
    if not frames:
        raise RefvpsError("nothing to render: the query has no scored frames")
    height = max(f.shape[0] for f in frames) + max(f.shape[0] for f in frames) % 2
    width = max(f.shape[1] for f in frames) + max(f.shape[1] for f in frames) % 2
    padded = [np.pad(f, ((0, height - f.shape[0]), (0, width - f.shape[1]), (0, 0)))
              for f in frames]
    out.parent.mkdir(parents=True, exist_ok=True)
    if out.suffix.lower() == ".gif":
        images = [Image.fromarray(f) for f in padded]
        images[0].save(out, save_all=True, append_images=images[1:],
                       duration=int(round(1000 / fps)), loop=0)
        return out
    writer = cv2.VideoWriter(str(out), cv2.VideoWriter_fourcc(*"mp4v"), fps, (width, height))
    if not writer.isOpened():
        raise RefvpsError(f"{out}: OpenCV could not open an mp4 writer")
    try:
        for frame in padded:
            writer.write(cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
    finally:
        writer.release()
    return out


def render_video(bench: Benchmark, video: str, query_id: str, out: str | Path,
                 preds: str | Path | None = None, fps: float = 6.0) -> Path:
    """Render query ``video/query_id`` of ``bench`` (with predictions ``preds``) to ``out``."""
    from refvps.predictions import PredictionStore

    query = find_query(bench, video, query_id)
    store = None
    if preds is not None:
        store = PredictionStore(preds, reader=getattr(bench, "prediction_reader", "pil"))
        store.adapt_prefix([bench.prediction_relpath(query, f) for f in query.frames])
    return write_video(render_query(bench, query, store), out, fps)
