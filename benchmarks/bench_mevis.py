"""MeViS-sized workload: ``refvps eval --benchmark mevis`` end to end vs. decoding the same PNGs.

At ``--scale 1`` the synthetic split matches MeViS valid: 140 videos, 2,200 expressions (1.6
objects per expression on average, some with no target), 60 frames of 854 x 480 each, i.e.
132,000 prediction PNGs. The baseline is the time to read and decode every prediction PNG
(``cv2.imdecode`` grayscale, the official reader) in this process; the evaluation is timed on
one worker (same process) and on a process pool. Peak memory is the maximum resident set size
of a fresh process that runs the one-worker evaluation (``resource.getrusage``).

    python benchmarks/bench_mevis.py --scale 0.25       # about 33,000 frames
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np
from PIL import Image
from pycocotools import mask as mask_utils

HEIGHT, WIDTH, FRAMES = 480, 854, 60
VIDEOS, EXPRESSIONS, OBJECTS_PER_VIDEO = 140, 2200, 6


def _object_track(rng: np.random.Generator) -> list[np.ndarray | None]:
    """One moving ellipse, absent before / after a random span of frames."""
    start, stop = sorted(rng.integers(0, FRAMES + 1, size=2))
    stop = max(stop, start + 5)
    cx, cy = rng.uniform(100, WIDTH - 100), rng.uniform(80, HEIGHT - 80)
    vx, vy = rng.uniform(-3, 3, size=2)
    ax, ay = rng.integers(20, 90, size=2)
    track = []
    for t in range(FRAMES):
        if not start <= t < stop:
            track.append(None)
            continue
        mask = np.zeros((HEIGHT, WIDTH), np.uint8)
        cv2.ellipse(mask, (int(cx + vx * t), int(cy + vy * t)), (int(ax), int(ay)),
                    float(t), 0, 360, 1, -1)
        track.append(mask)
    return track


def _rle(mask: np.ndarray) -> dict:
    rle = mask_utils.encode(np.asfortranarray(mask))
    return {"size": [HEIGHT, WIDTH], "counts": rle["counts"].decode("ascii")}


def build(root: Path, scale: float, seed: int = 0, writer: str = "pil") -> tuple[Path, Path, int]:
    """Write ``root/mevis/valid_u`` and ``root/preds``; return (data root, preds, n frames).

    ``writer``: ``pil`` (``Image.fromarray(mask).save``, what most prediction writers use) or
    ``cv2`` (``cv2.imwrite``, whose PNGs decode slower)."""
    rng = np.random.default_rng(seed)
    n_videos = max(1, round(VIDEOS * scale))
    per_video = np.full(n_videos, round(EXPRESSIONS * scale) // n_videos)
    per_video[: round(EXPRESSIONS * scale) % n_videos] += 1
    split = root / "mevis" / "valid_u"
    preds = root / "preds"
    split.mkdir(parents=True)
    videos, mask_dict, anno = {}, {}, 0
    n_frames = 0
    for v in range(n_videos):
        video = f"{v:012x}"
        tracks = {}
        for _ in range(OBJECTS_PER_VIDEO):
            tracks[anno] = _object_track(rng)
            mask_dict[str(anno)] = [None if m is None else _rle(m) for m in tracks[anno]]
            anno += 1
        expressions = {}
        for e in range(per_video[v]):
            k = rng.choice([0, 1, 2, 3], p=[0.05, 0.5, 0.3, 0.15])
            annos = [int(a) for a in rng.choice(list(tracks), size=k, replace=False)]
            expressions[str(e)] = {"exp": f"expression {e}", "obj_id": annos, "anno_id": annos}
            dx, dy = rng.integers(-6, 7, size=2)
            for t in range(FRAMES):
                union = np.zeros((HEIGHT, WIDTH), np.uint8)
                for a in annos:
                    if tracks[a][t] is not None:
                        union |= tracks[a][t]
                pred = np.roll(union, (int(dy), int(dx)), axis=(0, 1))
                path = preds / video / str(e) / f"{t:05d}.png"
                path.parent.mkdir(parents=True, exist_ok=True)
                if writer == "pil":
                    Image.fromarray(pred * 255).save(path)
                else:
                    cv2.imwrite(str(path), pred * 255)
                n_frames += 1
        videos[video] = {"expressions": expressions, "frames": [f"{t:05d}" for t in range(FRAMES)]}
    (split / "meta_expressions.json").write_text(json.dumps({"videos": videos}))
    (split / "mask_dict.json").write_text(json.dumps(mask_dict))
    return root, preds, n_frames


def decode_only(preds: Path) -> tuple[float, int]:
    """Seconds to read and decode every prediction PNG (cv2 grayscale), and how many."""
    paths = sorted(preds.rglob("*.png"))
    started = time.perf_counter()
    for path in paths:
        data = np.frombuffer(path.read_bytes(), np.uint8)
        image = cv2.imdecode(data, cv2.IMREAD_GRAYSCALE)
        assert image is not None
    return time.perf_counter() - started, len(paths)


def timed_eval(root: Path, preds: Path, workers: int) -> tuple[float, dict]:
    from refvps.evaluation import evaluate

    started = time.perf_counter()
    result = evaluate(preds, "mevis", root, "valid_u", workers=workers, progress=False)
    return time.perf_counter() - started, result.metrics


def peak_rss_mib(root: Path, preds: Path) -> float:
    """Max RSS of a fresh process that runs the one-worker evaluation."""
    code = ("import resource, sys; from refvps.evaluation import evaluate; "
            f"evaluate({str(preds)!r}, 'mevis', {str(root)!r}, 'valid_u', workers=1, "
            "progress=False); print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)")
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True)
    return int(out.stdout.strip().splitlines()[-1]) / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--scale", type=float, default=1.0, help="fraction of the MeViS size")
    parser.add_argument("--workers", type=int, default=len(os.sched_getaffinity(0)))
    parser.add_argument("--dir", type=Path, default=None, help="work folder (default: a temp dir)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        started = time.perf_counter()
        root, preds, n_frames = build(Path(tmp), args.scale)
        print(f"workload: {n_frames} prediction frames ({HEIGHT}x{WIDTH}), built in "
              f"{time.perf_counter() - started:.1f} s")
        decode_s, n_png = decode_only(preds)
        print(f"decode only (1 process):   {decode_s:7.2f} s  {n_png / decode_s:8.0f} frames/s")
        one_s, metrics = timed_eval(root, preds, 1)
        print(f"refvps eval, 1 worker:     {one_s:7.2f} s  {n_frames / one_s:8.0f} frames/s  "
              f"= {one_s / decode_s:.2f} x decode-only")
        pool_s, pool_metrics = timed_eval(root, preds, args.workers)
        assert pool_metrics == metrics
        print(f"refvps eval, {args.workers} workers:    {pool_s:7.2f} s  "
              f"{n_frames / pool_s:8.0f} frames/s  = {pool_s / decode_s:.2f} x decode-only")
        print(f"peak RSS, 1-worker eval:   {peak_rss_mib(root, preds):7.0f} MiB")
        print(f"J&F {metrics['J&F']:.4f}  J {metrics['J']:.4f}  F {metrics['F']:.4f}")


if __name__ == "__main__":
    main()
