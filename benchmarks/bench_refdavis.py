"""Time the Ref-DAVIS (davis2017 unsupervised) protocol: refvps vs a literal dense implementation.

Writes a synthetic DAVIS-style root (default 30 sequences x 3 objects x 50 frames at 480x854,
one annotator run with 5 proposals per sequence: 3 noisy copies of the objects with permuted
ids plus 2 spurious blobs), then times in this process:

* decode only: reading every annotation and prediction PNG once (a floor for any evaluator);
* refvps: ``evaluate(..., runs=(0,))`` with one worker, and with all cores;
* literal: the dense float64 transcription of the official evaluator
  (tests/literal_davis_unsupervised.py).

Both evaluators must agree exactly on J&F; the script checks it and prints the speed ratio.

    python benchmarks/bench_refdavis.py                 # full size (the literal run takes minutes)
    python benchmarks/bench_refdavis.py --scale 0.2     # 6 sequences x 10 frames
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

import literal_davis_unsupervised as davis_literal  # noqa: E402  (tests/)

from refvps.evaluation import evaluate  # noqa: E402
from refvps.executors import default_workers  # noqa: E402
from refvps.loaders import load_benchmark  # noqa: E402
from refvps.masks import write_label_mask  # noqa: E402


def _blob(rng, shape, cy, cx, ry, rx) -> np.ndarray:
    """A wobbly ellipse, computed only inside its bounding box."""
    mask = np.zeros(shape, bool)
    y0, y1 = int(max(cy - 1.2 * ry, 0)), int(min(cy + 1.2 * ry + 1, shape[0]))
    x0, x1 = int(max(cx - 1.2 * rx, 0)), int(min(cx + 1.2 * rx + 1, shape[1]))
    if y0 >= y1 or x0 >= x1:
        return mask
    yy, xx = np.mgrid[y0:y1, x0:x1]
    wobble = 1 + 0.15 * np.sin(3 * np.arctan2(yy - cy, xx - cx) + rng.uniform(0, 6.28))
    mask[y0:y1, x0:x1] = ((yy - cy) / ry) ** 2 + ((xx - cx) / rx) ** 2 <= wobble ** 2
    return mask


def make_data(root: Path, n_seqs: int, n_frames: int, n_objects: int, n_proposals: int,
              shape: tuple[int, int], seed: int = 0) -> list[str]:
    rng = np.random.default_rng(seed)
    height, width = shape
    gt_root = root / "ref-davis/DAVIS/Annotations_unsupervised/480p"
    names = [f"seq{i:02d}" for i in range(n_seqs)]
    for seq in names:
        start = rng.uniform([0.2 * height, 0.1 * width], [0.8 * height, 0.9 * width], (n_objects, 2))
        speed = rng.uniform(-2, 2, (n_objects, 2))
        radii = rng.uniform([0.05 * height, 0.04 * width], [0.2 * height, 0.15 * width],
                            (n_objects, 2))
        perm = rng.permutation(n_objects) + 1
        for t in range(n_frames):
            gt = np.zeros(shape, np.uint8)
            pred = np.zeros(shape, np.uint8)
            for k in range(n_objects):
                cy, cx = start[k] + t * speed[k]
                gt[_blob(rng, shape, cy, cx, *radii[k])] = k + 1
                dy, dx = rng.integers(-4, 5, 2)
                pred[_blob(rng, shape, cy + dy, cx + dx, *(radii[k] * 0.95))] = perm[k]
            for extra in range(n_objects, n_proposals):
                cy, cx = rng.uniform(0, height), rng.uniform(0, width)
                pred[_blob(rng, shape, cy, cx, 0.05 * height, 0.05 * width)] = extra + 1
            gt[:, -3:] = 255  # a void band
            write_label_mask(gt_root / seq / f"{t:05d}.png", gt)
            write_label_mask(root / "preds/anno_0" / seq / f"{t:05d}.png", pred)
    sets = root / "ref-davis/DAVIS/ImageSets/2017"
    sets.mkdir(parents=True)
    (sets / "val.txt").write_text("\n".join(names) + "\n")
    return names


def decode_only(root: Path) -> float:
    started = time.perf_counter()
    for path in sorted(root.rglob("*.png")):
        with Image.open(path) as image:
            np.array(image)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=float, default=1.0,
                        help="fraction of the 30 sequences and of the 50 frames (default 1)")
    parser.add_argument("--objects", type=int, default=3)
    parser.add_argument("--proposals", type=int, default=5)
    parser.add_argument("--skip-literal", action="store_true", help="time refvps only")
    args = parser.parse_args()
    n_seqs, n_frames = max(1, round(30 * args.scale)), max(2, round(50 * args.scale))
    shape = (480, 854)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        started = time.perf_counter()
        names = make_data(root, n_seqs, n_frames, args.objects, args.proposals, shape)
        pairs = n_seqs * n_frames * args.objects * max(args.objects, args.proposals)
        print(f"workload: {n_seqs} sequences x {n_frames} frames at {shape[1]}x{shape[0]}, "
              f"{args.objects} objects x {args.proposals} proposals = {pairs} pair-frames "
              f"(written in {time.perf_counter() - started:.1f} s)")
        floor = decode_only(root)
        print(f"decode only (all PNGs once):      {floor:8.2f} s")
        bench = load_benchmark("ref-davis", root, runs=(0,))
        timings = {}
        for workers in sorted({1, default_workers()}):
            started = time.perf_counter()
            result = evaluate(root / "preds", bench, workers=workers, progress=False)
            timings[workers] = time.perf_counter() - started
            print(f"refvps, {workers:2d} worker(s):             {timings[workers]:8.2f} s   "
                  f"J&F {result.metrics['J&F']:.6f}")
        if args.skip_literal:
            return
        started = time.perf_counter()
        gt_root = root / "ref-davis/DAVIS/Annotations_unsupervised/480p"
        official = davis_literal.evaluate_run(gt_root, root / "preds/anno_0", names)
        literal_time = time.perf_counter() - started
        print(f"literal dense davis2017 (1 core): {literal_time:8.2f} s   J&F {official['J&F']:.6f}")
        same = official["J&F"] == result.metrics["J&F"]
        print(f"identical J&F: {same}")
        print(f"speed-up, 1 worker: {literal_time / timings[1]:.1f}x; "
              f"{max(timings)} workers: {literal_time / timings[max(timings)]:.1f}x; "
              f"refvps 1 worker / decode-only: {timings[1] / floor:.2f}")
        if not same:
            sys.exit("refvps and the literal evaluator disagree")


if __name__ == "__main__":
    main()
