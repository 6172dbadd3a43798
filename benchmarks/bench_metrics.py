"""Speed of the metric kernels and of end-to-end evaluation, as ratios against baselines run here.

1. Per frame at 480x854: refvps J, F and J&F vs the literal davis2017 transcription
   (tests/literal_davis.py) on several kinds of frames. Target: F at least 5x faster.
2. End to end: ``refvps.evaluate`` (one worker) on a synthetic Ref-VPS-format dataset at 480x854
   vs only decoding the same PNGs (ground truth and predictions) in this process.
   Target: within 2x of decode-only time.

    python benchmarks/bench_metrics.py [--reps 50] [--clips 8]
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from literal_davis import literal_f, literal_j  # noqa: E402

from refvps.metrics import contour_accuracy, region_similarity  # noqa: E402

H, W = 480, 854


def _blob(rng, cy, cx, ry, rx):
    yy, xx = np.mgrid[:H, :W]
    angle = np.arctan2(yy - cy, xx - cx)
    wobble = 1 + 0.15 * np.sin(3 * angle + rng.uniform(0, 6))
    return ((yy - cy) / ry) ** 2 + ((xx - cx) / rx) ** 2 < wobble ** 2


def scenarios(rng):
    large = _blob(rng, 240, 400, 120, 180)
    small = _blob(rng, 100, 600, 12, 18)
    void = np.zeros((H, W), bool)
    void[200:260, 500:600] = True
    return {
        "large object (~17% of frame), close prediction": (large, _blob(rng, 245, 410, 118, 175), None),
        "large object with an Ignore region": (large, _blob(rng, 245, 410, 118, 175), void),
        "small object (~0.5%), close prediction": (small, _blob(rng, 103, 604, 11, 17), None),
        "prediction far from the object": (small, _blob(rng, 380, 150, 30, 40), None),
        "empty ground truth and prediction": (np.zeros((H, W), bool), np.zeros((H, W), bool), None),
    }


def _time(fn, reps):
    fn()
    start = time.perf_counter()
    for _ in range(reps):
        fn()
    return (time.perf_counter() - start) / reps * 1e3


def bench_kernels(reps: int) -> None:
    rng = np.random.default_rng(0)
    print(f"Per-frame kernels at {H}x{W} (ms per frame, mean of {reps} reps; "
          "OpenCV threads: 1)")
    print(f"{'frame kind':<50} {'J lit':>7} {'J ours':>7} {'F lit':>7} {'F ours':>7} "
          f"{'F x':>6} {'J&F x':>6}")
    totals = np.zeros(4)
    for label, (gt, pred, void) in scenarios(rng).items():
        assert contour_accuracy(gt, pred, void) == literal_f(pred, gt, void)
        t = [_time(lambda: literal_j(gt, pred, void), reps),
             _time(lambda: region_similarity(gt, pred, void), reps),
             _time(lambda: literal_f(pred, gt, void), reps),
             _time(lambda: contour_accuracy(gt, pred, void), reps)]
        totals += t
        print(f"{label:<50} {t[0]:7.3f} {t[1]:7.3f} {t[2]:7.3f} {t[3]:7.3f} "
              f"{t[2] / t[3]:6.1f} {(t[0] + t[2]) / (t[1] + t[3]):6.1f}")
    t = totals / len(scenarios(rng))
    print(f"{'mean over the kinds above':<50} {t[0]:7.3f} {t[1]:7.3f} {t[2]:7.3f} {t[3]:7.3f} "
          f"{t[2] / t[3]:6.1f} {(t[0] + t[2]) / (t[1] + t[3]):6.1f}")


def _synthetic_dataset(root: Path, clips: int, anno_frames: int):
    """A Ref-VPS-format dataset at 480x854 with predictions on the annotated frames."""
    import json

    from refvps.masks import write_binary_mask, write_label_mask

    data = root / "ref-vps"
    videos = {}
    rng = np.random.default_rng(1)
    for c in range(clips):
        clip = f"clip_{c:03d}"
        frames = [f"{i:05d}" for i in range(anno_frames * 4)]
        for k in range(anno_frames):
            t = k / anno_frames
            gt = _blob(rng, 240 + 40 * t, 300 + 200 * t, 60 + 60 * t, 90 + 60 * t)
            labels = gt.astype(np.uint8)
            labels[:20, :] = 255
            write_label_mask(data / "Annotations" / clip / f"{frames[4 * k]}.png", labels)
            for e in range(4):
                shift = np.roll(gt, 3 * e, axis=1)
                write_binary_mask(root / "preds" / clip / str(e) / f"{frames[4 * k]}.png", shift)
        videos[clip] = {"height": H, "width": W, "frames": frames, "anno_frames": frames[::4],
                        "concept": None, "concept_groups": [],
                        "expressions": {str(e): {"exp": "the thing", "obj_id": [1],
                                                 "annotator": e // 2, "exp_idx": e % 2}
                                        for e in range(4)}}
    (data / "FORMAT").write_text("refvps-format 0.1 (proposal)\n")
    (data / "meta_expressions.json").write_text(json.dumps({"videos": videos}))
    (data / "concepts.json").write_text(json.dumps({"groups": [], "concepts": []}))
    return data, root / "preds"


def bench_end_to_end(clips: int, anno_frames: int) -> None:
    from refvps.evaluation import evaluate
    from refvps.masks import read_mask

    with tempfile.TemporaryDirectory() as tmp:
        data, preds = _synthetic_dataset(Path(tmp), clips, anno_frames)
        pngs = sorted(data.rglob("*.png")) + sorted(preds.rglob("*.png"))
        cv2.setNumThreads(1)

        def decode_only():
            for path in pngs:
                read_mask(path)

        decode_only()  # warm the page cache
        start = time.perf_counter()
        decode_only()
        decode = time.perf_counter() - start
        runs = {}
        for workers in (1, 2):
            start = time.perf_counter()
            result = evaluate(preds, "ref-vps", Path(tmp), workers=workers, progress=False)
            runs[workers] = time.perf_counter() - start
        frames = result.summary["counts"]["frames_scored"]
        print(f"\nEnd to end at {H}x{W}: {clips} clips x 4 expressions x {anno_frames} annotated "
              f"frames = {frames} scored frames, {len(pngs)} PNGs")
        print(f"  decode-only (PIL, 1 process)   {decode:7.2f} s")
        print(f"  refvps eval, 1 worker (J+F)    {runs[1]:7.2f} s   ratio to decode-only "
              f"{runs[1] / decode:.2f}x   {frames / runs[1]:.0f} frames/s")
        print(f"  refvps eval, 2 workers (J+F)   {runs[2]:7.2f} s   ratio to decode-only "
              f"{runs[2] / decode:.2f}x   {frames / runs[2]:.0f} frames/s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=50)
    parser.add_argument("--clips", type=int, default=8)
    parser.add_argument("--anno-frames", type=int, default=20)
    args = parser.parse_args()
    cv2.setNumThreads(1)
    bench_kernels(args.reps)
    bench_end_to_end(args.clips, args.anno_frames)


if __name__ == "__main__":
    main()
