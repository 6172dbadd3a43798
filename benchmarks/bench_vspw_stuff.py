"""Time ``refvps eval --benchmark vspw`` against REM's eval_stuff.py loop on a synthetic workload.

The REM loop is transcribed (sorted listings, otherwise the same work: every video's masks decoded
once per class, one process). Run: ``python benchmarks/bench_vspw_stuff.py [--videos N]``.
"""
from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

from refvps.evaluation import evaluate
from refvps.formats import VSPW_STUFF_CLASSES

RAWS = [stuff_id + 1 for stuff_id, _ in VSPW_STUFF_CLASSES[:8]]
NAMES = {stuff_id + 1: name for stuff_id, name in VSPW_STUFF_CLASSES}


def build(root: Path, videos: int, frames: int, shape=(480, 854)) -> tuple[Path, Path]:
    rng = np.random.default_rng(0)
    data, preds = root / "vspw", root / "preds" / "vspw_val"
    names = [f"{i}_video{i:06d}" for i in range(videos)]
    (root / "vspw").mkdir(parents=True)
    (data / "val.txt").write_text("".join(f"{n}\n" for n in names))
    for name in names:
        classes = rng.choice(RAWS, size=4, replace=False)
        for t in range(frames):
            labels = np.zeros(shape, np.uint8)
            for k, raw in enumerate(classes):
                y = int(40 + 100 * k + 10 * np.sin(t / 5))
                labels[y:y + 90, 50 + 30 * k:500 + 30 * k] = raw
            stem = f"{1000 + t:08d}"
            path = data / "data" / name / "mask" / f"{stem}.png"
            path.parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray(labels).save(path)
            for raw in classes:
                pred = np.roll(labels == raw, 3, axis=1).astype(np.uint8)
                out = preds / name / NAMES[raw] / "pred" / f"{stem}.png"
                out.parent.mkdir(parents=True, exist_ok=True)
                Image.fromarray(pred).save(out)
    return data, preds


def rem_loop(data: Path, result_dir: Path) -> float:
    ids = {name: stuff_id for stuff_id, name in VSPW_STUFF_CLASSES}
    per_class: dict[str, list[float]] = {}
    for video in sorted(os.listdir(result_dir)):
        for stuff in sorted(os.listdir(result_dir / video)):
            mask_dir = data / "data" / video / "mask"
            gts = []
            for name in sorted(os.listdir(mask_dir)):
                msk = np.array(Image.open(mask_dir / name))
                msk[msk == 0] = 255
                msk = msk - 1
                msk[msk == 254] = 124
                gts.append((msk == ids[stuff]).astype(np.float64))
            pred_dir = result_dir / video / stuff / "pred"
            preds = np.stack([np.array(Image.open(pred_dir / n)) for n in sorted(os.listdir(pred_dir))])
            gt = np.stack(gts).astype(bool)
            inter = np.sum(gt & preds.astype(bool), axis=(-2, -1))
            union = np.sum(gt | preds.astype(bool), axis=(-2, -1))
            j = inter / union
            j[np.isclose(union, 0)] = 1
            per_class.setdefault(stuff, []).append(np.mean(j))
    return float(np.mean([np.mean(v) for v in per_class.values()]))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--videos", type=int, default=12)
    parser.add_argument("--frames", type=int, default=40)
    parser.add_argument("--workers", type=int, default=None)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        data, preds = build(Path(tmp), args.videos, args.frames)
        start = time.perf_counter()
        reference = rem_loop(data, preds)
        rem_s = time.perf_counter() - start
        start = time.perf_counter()
        one = evaluate(preds, "vspw", data, workers=1, progress=False).metrics["J"]
        one_s = time.perf_counter() - start
        start = time.perf_counter()
        many = evaluate(preds, "vspw", data, workers=args.workers, progress=False).metrics["J"]
        many_s = time.perf_counter() - start
    frames = args.videos * args.frames * 4
    print(f"{args.videos} videos x {args.frames} frames x 4 classes = {frames} scored frames")
    print(f"REM loop          {rem_s:7.2f} s  J={reference!r}")
    print(f"refvps 1 worker   {one_s:7.2f} s  J={one!r}  ({rem_s / one_s:.1f}x)")
    print(f"refvps all cores  {many_s:7.2f} s  J={many!r}  ({rem_s / many_s:.1f}x)")


if __name__ == "__main__":
    main()
