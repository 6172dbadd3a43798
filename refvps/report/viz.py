"""Overlay videos of one query: GT (pink), Ignore (yellow), prediction (cyan), expression caption.

Frames are the query's scored frames. MP4 is H.264 (yuv420p, ``+faststart``) and WebM is VP9, both
encoded by PyAV, whose wheels ship FFmpeg with libx264 and libvpx (no system ffmpeg; OpenCV's
wheel can only write MPEG-4 Part 2, which browsers refuse). PyAV is the optional ``video`` extra,
imported only here; GIF needs only Pillow. Frame images come from ``Benchmark.frame_path``.
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
VIDEO_CODECS = {".mp4": ("mp4", "libx264"), ".webm": ("webm", "libvpx-vp9")}
"""Output suffix -> (container, PyAV encoder); both play in Chromium, Firefox and Safari 14+."""
VIDEO_EXTS = (*VIDEO_CODECS, ".gif")


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
    """Write RGB frames (padded to a common even size) as H.264 .mp4, VP9 .webm or .gif.

    Written atomically: a temporary file beside ``out`` renamed over it when complete.
    """
    from refvps.fileio import atomic_write

    out = Path(out)
    suffix = out.suffix.lower()
    if suffix not in VIDEO_EXTS:
        raise RefvpsError(f"{out}: unsupported output type; use one of {', '.join(VIDEO_EXTS)}")
    if not frames:
        raise RefvpsError("nothing to render: the query has no scored frames")
    if not fps > 0:
        raise RefvpsError(f"frame rate must be positive, got {fps}")
    height = max(f.shape[0] for f in frames) + max(f.shape[0] for f in frames) % 2
    width = max(f.shape[1] for f in frames) + max(f.shape[1] for f in frames) % 2
    padded = [np.pad(f, ((0, height - f.shape[0]), (0, width - f.shape[1]), (0, 0)))
              for f in frames]
    if suffix == ".gif":
        images = [Image.fromarray(f) for f in padded]
        atomic_write(out, lambda handle: images[0].save(
            handle, format="GIF", save_all=True, append_images=images[1:],
            duration=int(round(1000 / fps)), loop=0))
        return out
    av = _import_av(out)
    container_format, codec = VIDEO_CODECS[suffix]
    atomic_write(out, lambda handle: _encode(av, padded, handle, fps, container_format, codec))
    return out


def _import_av(out: Path):
    try:
        import av
    except ImportError:
        raise RefvpsError(f"{out}: writing {out.suffix} needs PyAV, which ships the H.264 and "
                          "VP9 encoders: pip install 'refvps[video]' (or write a .gif)") from None
    return av


def _encode(av, frames: list[np.ndarray], handle, fps: float, container_format: str,
            codec: str) -> None:
    import tempfile
    from fractions import Fraction

    # encoded into a scratch file, then copied into ``handle``: ``+faststart`` (index first, so
    # a browser starts playing before the download ends) reopens the output by its path
    scratch = tempfile.TemporaryDirectory(prefix="refvps-viz-")
    path = Path(scratch.name) / f"video.{container_format}"
    options = {"movflags": "+faststart"} if container_format == "mp4" else {}
    with scratch, av.open(str(path), "w", format=container_format, options=options) as container:
        stream = container.add_stream(codec, rate=Fraction(fps).limit_denominator(1001))
        stream.height, stream.width = frames[0].shape[:2]
        stream.pix_fmt = "yuv420p"            # the chroma format every browser decodes
        stream.options = {"crf": "20"} if codec == "libx264" else {"crf": "32", "b": "0"}
        for frame in frames:
            container.mux(stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")))
        container.mux(stream.encode(None))
        container.close()
        handle.write(path.read_bytes())


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
