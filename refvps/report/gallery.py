"""A gallery of a run's worst units: for each, its worst frame as GT / Ignore / prediction thumbnails.

Reads the dataset (frame images, GT) and the run's predictions, so it is skipped with a warning
when either is gone. Colours are those of ``refvps viz``.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image

from refvps.report.run import Run
from refvps.report.viz import bench_task, find_query, overlay

THUMB_WIDTH = 200
GALLERY_SIZE = 8
PANELS = ("GT + Ignore", "prediction", "both")


def worst_units(run: Run, count: int = GALLERY_SIZE) -> pd.DataFrame:
    """The ``count`` units with the lowest J (ties by unit id), each with its lowest-J frame."""
    units = run.units[run.units["J"].notna()].sort_values(["J", "unit"], kind="stable")
    frames = run.frames[run.frames["J"].notna()].sort_values(["J", "t"], kind="stable")
    worst_frame = frames.drop_duplicates("unit").set_index("unit")
    rows = []
    for unit in units.head(count).itertuples():
        if unit.unit not in worst_frame.index:
            continue
        frame = worst_frame.loc[unit.unit]
        rows.append({"unit": unit.unit, "video": frame["video"], "query_id": str(frame["query_id"]),
                     "text": getattr(unit, "text", ""), "J": float(unit.J),
                     "t": int(frame["t"]), "frame": str(frame["frame"]),
                     "frame_J": float(frame["J"])})
    return pd.DataFrame(rows, columns=["unit", "video", "query_id", "text", "J", "t", "frame",
                                       "frame_J"])


def _thumb(image: np.ndarray) -> np.ndarray:
    height, width = image.shape[:2]
    size = (THUMB_WIDTH, max(1, round(height * THUMB_WIDTH / width)))
    return np.asarray(Image.fromarray(image).resize(size, Image.Resampling.BILINEAR))


def thumbnails(image: np.ndarray, fg: np.ndarray, void: np.ndarray | None,
               pred: np.ndarray) -> np.ndarray:
    """One strip of three thumbnails: GT (pink) with Ignore (yellow), the prediction (cyan),
    and both, separated by white gaps."""
    empty = np.zeros_like(fg)
    panels = [overlay(image, fg, void, None), overlay(image, empty, None, pred),
              overlay(image, fg, void, pred)]
    thumbs = [_thumb(p) for p in panels]
    gap = np.full((thumbs[0].shape[0], 4, 3), 255, np.uint8)
    return np.hstack([thumbs[0], gap, thumbs[1], gap, thumbs[2]])


def render_gallery(run: Run, out: Path, data: str | Path | None = None,
                   count: int = GALLERY_SIZE) -> pd.DataFrame:
    """Write ``out/gallery/<k>.png`` for the worst units; the table gains an ``image`` column."""
    from refvps.loaders import load_benchmark
    from refvps.predictions import PredictionStore

    summary = run.summary
    bench = load_benchmark(summary["benchmark"], data or summary.get("data_root"),
                           summary.get("split"))
    store = PredictionStore(summary["predictions"],
                            reader=getattr(bench, "prediction_reader", "pil"))
    table = worst_units(run, count)
    folder = Path(out) / "gallery"
    folder.mkdir(parents=True, exist_ok=True)
    images = []
    for k, row in enumerate(table.itertuples()):
        query = find_query(bench, row.video, row.query_id)
        frame = query.frames[row.t]
        store.adapt_prefix([bench.prediction_relpath(query, f) for f in query.frames])
        fg, void = bench.load_gt(bench_task(bench, query)).target(query, frame)
        image = np.asarray(Image.open(bench.frame_path(query.video, frame)).convert("RGB"))
        pred = store.read_binary(bench.prediction_relpath(query, frame))
        pred = np.zeros_like(fg) if pred is None else pred
        path = folder / f"{k + 1}.png"
        Image.fromarray(thumbnails(image, fg, void, pred)).save(path)
        images.append(path)
    return table.assign(image=images)
