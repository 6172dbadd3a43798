"""Interactive latency of `refvps annotate` at 720p, against baselines run in this process.

1. OpenCV backend, one click (and a box) on a 1280x720 frame: refvps's region-around-the-prompts
   GrabCut vs GrabCut on the whole frame with the same seeds (what a click cost before).
   Budget: click-to-mask < 300 ms.
2. The page in headless Chromium (system chromium, OpenCV backend, served by this process):
   pointer event -> click marker painted (budget < 50 ms), -> the server's answer, -> the new
   mask painted (the answer carries the mask, so no other request: counted per click); and two
   clicks in quick succession, both applied in order.
3. SAM2 (random weights, hiera-tiny, CPU) at 512 and 1024 px: model load, first click on a frame
   (image encoder + decoder), a further click on it, a click on a frame encoded in the
   background (``prepare``), and coming back to a frame after visiting others, with the feature
   cache vs sam2's own one-frame cache (``feature_cache_bytes = 0``). ``encoded`` counts the
   image-encoder runs: one per frame means the features are reused.

Times are medians in ms, wall clock and CPU (this process, all threads); the machine may be
shared, so CPU time is the steadier figure. Run from the repository root:

    python benchmarks/annotate_latency.py [--threads 2] [--skip-browser] [--skip-sam2]
"""
from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TQDM_DISABLE", "1")  # sam2's frame-loading bars would garble the table

import cv2  # noqa: E402
import numpy as np  # noqa: E402

from refvps.annotate.backends.opencv import OpenCVBackend  # noqa: E402
from refvps.annotate.ingest import ingest  # noqa: E402

H, W = 720, 1280
CENTRE = (400, 360)


def render(i: int) -> np.ndarray:
    """A textured background with a red ellipse drifting right (fixed seed)."""
    rng = np.random.default_rng(7)
    noise = cv2.GaussianBlur(rng.normal(0, 1, (H // 4, W // 4, 3)), (0, 0), 2.0)
    image = np.clip(np.array([60, 110, 70]) + 40 * cv2.resize(noise, (W, H)) / noise.std(), 0, 255)
    image = image.astype(np.uint8)
    cv2.ellipse(image, (CENTRE[0] + 12 * i, CENTRE[1] + 2 * i), (150, 100), 10, 0, 360,
                (40, 60, 220), -1)
    return image


def truth(i: int) -> np.ndarray:
    mask = np.zeros((H, W), np.uint8)
    cv2.ellipse(mask, (CENTRE[0] + 12 * i, CENTRE[1] + 2 * i), (150, 100), 10, 0, 360, 1, -1)
    return mask.astype(bool)


def make_workspace(root: Path) -> tuple[Path, dict]:
    writer = cv2.VideoWriter(str(root / "clip.mp4"), cv2.VideoWriter_fourcc(*"mp4v"), 24, (W, H))
    for i in range(48):
        writer.write(render(i))
    writer.release()
    info = ingest(root / "clip.mp4", root / "ws", clip_id="bench")
    return root / "ws", info


def timed(fn):
    wall, cpu = time.perf_counter(), time.process_time()
    out = fn()
    return out, 1000 * (time.perf_counter() - wall), 1000 * (time.process_time() - cpu)


def row(label: str, walls: list[float], cpus: list[float] | None = None, extra: str = "") -> None:
    cpu = f"{statistics.median(cpus):8.0f}" if cpus else " " * 8
    print(f"  {label:<52} {statistics.median(walls):8.0f} {cpu}  {extra}")


def verdict(walls: list[float], cpus: list[float] | None, budget: float) -> str:
    """Met on the wall clock, or on CPU time only (the machine busy with other work)."""
    if statistics.median(walls) < budget:
        return "met"
    if cpus and statistics.median(cpus) < budget:
        return (f"met in CPU time; wall clock over it with load average "
                f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    return "MISSED"


def iou(a: np.ndarray, b: np.ndarray) -> float:
    return float((a & b).sum() / max(1, (a | b).sum()))


def full_frame_grabcut(image: np.ndarray, x: float, y: float) -> np.ndarray:
    """The baseline: the same seeds as a one-click prompt, GrabCut over the whole frame."""
    h, w = image.shape[:2]
    seeds = np.full((h, w), cv2.GC_PR_BGD, np.uint8)
    cv2.circle(seeds, (int(x), int(y)), max(4, min(h, w) // 8), cv2.GC_PR_FGD, -1)
    cv2.circle(seeds, (int(x), int(y)), max(2, min(h, w) // 60), cv2.GC_FGD, -1)
    bgd, fgd = np.zeros((1, 65)), np.zeros((1, 65))
    cv2.grabCut(image, seeds, None, bgd, fgd, OpenCVBackend.grabcut_iterations,
                cv2.GC_INIT_WITH_MASK)
    return (seeds == cv2.GC_FGD) | (seeds == cv2.GC_PR_FGD)


def bench_opencv(ws: Path, info: dict, reps: int) -> None:
    print("\n1. OpenCV backend, 1280x720                                   wall ms   CPU ms")
    frames = [ws / "frames" / f"{f}.jpg" for f in info["anno_frames"]]
    backend = OpenCVBackend()
    backend.open(frames)
    cold, warm, cold_cpu, warm_cpu, base, base_cpu, box, ious, base_ious = ([] for _ in range(9))
    for k in range(min(reps, len(frames))):
        x, y = CENTRE[0] + 48 * k, CENTRE[1] + 8 * k  # the ellipse's centre on annotation frame k
        mask, wall, cpu = timed(lambda: backend.click(k, np.array([[x, y]]), np.array([1])))
        cold.append(wall), cold_cpu.append(cpu), ious.append(iou(mask, truth(4 * k)))
        _, wall, cpu = timed(lambda: backend.click(k, np.array([[x, y], [60, 60]]), np.array([1, 0])))
        warm.append(wall), warm_cpu.append(cpu)
        _, wall, _ = timed(lambda: backend.click(k, np.zeros((0, 2)), np.zeros(0),
                                                 box=np.array([x - 170, y - 130, x + 170, y + 130])))
        box.append(wall)
        image = cv2.imread(str(frames[k]))
        mask, wall, cpu = timed(lambda: full_frame_grabcut(image, x, y))
        base.append(wall), base_cpu.append(cpu), base_ious.append(iou(mask, truth(4 * k)))
    row("first click on a frame (reads and shrinks it)", cold, cold_cpu,
        f"IoU {statistics.mean(ious):.3f}")
    row("further click on the same frame", warm, warm_cpu)
    row("box", box)
    row("baseline: GrabCut on the whole frame", base, base_cpu,
        f"IoU {statistics.mean(base_ious):.3f}")
    print(f"  speed-up vs baseline: {statistics.median(base) / statistics.median(cold):.1f}x "
          f"(first click), {statistics.median(base) / statistics.median(warm):.1f}x (further); "
          f"budget 300 ms: {verdict(cold, cold_cpu, 300)}")
    steps = list(backend.propagate(0, False, 3))
    _, wall, cpu = timed(lambda: list(backend.propagate(0, False, 3)))
    print(f"  propagation: {wall / 3:.0f} ms wall, {cpu / 3:.0f} ms CPU per frame "
          f"(IoU {statistics.mean(iou(m, truth(4 * k)) for k, m in steps):.3f})")


def bench_browser(ws: Path, info: dict, reps: int) -> None:
    print("\n2. The page in headless Chromium, OpenCV backend, 1280x720     median ms")
    from playwright.sync_api import sync_playwright

    from refvps.annotate.server import AnnotateServer
    from refvps.annotate.session import Session
    from refvps.annotate.workspace import Workspace

    exe = shutil.which("chromium") or shutil.which("chromium-browser")
    if exe is None:
        print("  skipped: no system chromium")
        return
    session = Session(Workspace(ws), OpenCVBackend())
    server = AnnotateServer(session, port=0).start()
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=exe, headless=True,
                                        args=["--headless=new", "--no-sandbox", "--disable-gpu"])
            page = browser.new_page(viewport={"width": 1400, "height": 900})
            page.goto(server.url)
            page.wait_for_selector("body[data-ready='1']", timeout=30000)
            box = page.get_by_test_id("canvas").bounding_box()
            requests: list[str] = []
            page.on("request", lambda r: requests.append(r.url))

            def at(x, y):
                return box["x"] + x * box["width"] / W, box["y"] + y * box["height"] / H

            n = min(reps, len(info["anno_frames"]) - 1)
            cpu = 0.0
            per_click: list[int] = []
            for k in range(n):
                if k:
                    page.keyboard.press("ArrowRight")
                page.wait_for_function(f"document.querySelector('[data-testid=frame-label]')"
                                       f".textContent.startsWith('{info['anno_frames'][k]}')")
                page.wait_for_timeout(400)  # the frame is on screen and warmed up
                started = time.process_time()
                first = len(requests)
                page.mouse.click(*at(CENTRE[0] + 48 * k, CENTRE[1] + 8 * k))
                page.wait_for_function(f"window.refvpsMetrics.maskMs.length === {k + 1}",
                                       timeout=30000)
                cpu += time.process_time() - started
                per_click.append(sum("/prepare" not in u for u in requests[first:]))
            metrics = page.evaluate("window.refvpsMetrics")
            print(f"  server CPU per click (mask, save, answer): {1000 * cpu / n:.0f} ms; "
                  f"requests per click: {max(per_click)}")
            for label, key in (("pointer -> click marker painted", "markerMs"),
                               ("pointer -> server answer (mask computed and saved)", "answerMs"),
                               ("pointer -> new mask painted", "maskMs")):
                row(label, metrics[key])
            row("server answer -> new mask painted",
                [m - a for m, a in zip(metrics["maskMs"], metrics["answerMs"])])
            print(f"  marker budget 50 ms: {verdict(metrics['markerMs'], None, 50)}; "
                  f"click-to-mask budget 300 ms: "
                  f"{verdict(metrics['maskMs'], [1000 * cpu / n], 300)}")
            # two clicks 30 ms apart on the last frame: both applied, in order
            page.keyboard.press("ArrowRight")
            last = info["anno_frames"][n]
            page.wait_for_function(f"document.querySelector('[data-testid=frame-label]')"
                                   f".textContent.startsWith('{last}')")
            page.mouse.click(*at(CENTRE[0] + 48 * n, CENTRE[1] + 8 * n))
            page.wait_for_timeout(30)
            page.mouse.click(*at(60, 60), button="right")
            page.wait_for_function(f"window.refvpsMetrics.maskMs.length === {n + 2}", timeout=30000)
            points = session.ws.record(last)["points"]
            print(f"  two clicks 30 ms apart: {len(points)} applied, labels {[p[2] for p in points]}")
            browser.close()
    finally:
        server.stop()


def bench_sam2(ws: Path, info: dict, sizes: list[int]) -> None:
    try:
        import torch  # noqa: F401

        from refvps.annotate.backends.sam2_backend import Sam2Backend
    except ImportError as exc:
        print(f"\n3. SAM2: skipped ({exc})")
        return
    frames = [ws / "frames" / f"{f}.jpg" for f in info["anno_frames"]][:6]
    for size in sizes:
        print(f"\n3. SAM2 hiera-tiny, random weights, CPU, {size} px                wall ms   CPU ms")
        import torch

        torch.manual_seed(0)
        backend = Sam2Backend(random_weights=True, device="cpu", image_size=size)
        _, wall, cpu = timed(backend.load)
        row("load the model (at start-up)", [wall], [cpu])
        _, wall, cpu = timed(lambda: backend.open(frames))
        row(f"open {len(frames)} frames, encode frame 0 (at start-up)", [wall], [cpu])
        pt = np.array([CENTRE]), np.array([1])
        more = np.array([CENTRE, (60, 60)]), np.array([1, 0])
        _, wall, cpu = timed(lambda: backend.click(1, *pt))
        row("first click on a new frame (encoder + decoder)", [wall], [cpu])
        walls, cpus = [], []
        for _ in range(3):
            _, wall, cpu = timed(lambda: backend.click(1, *more))
            walls.append(wall), cpus.append(cpu)
        row("further click on it (decoder only)", walls, cpus)
        _, wall, cpu = timed(lambda: backend.prepare(2))
        row("prepare frame 2 (background, while the annotator looks)", [wall], [cpu])
        _, wall, cpu = timed(lambda: backend.click(2, *pt))
        row("first click on the prepared frame", [wall], [cpu])
        results = {}
        for key, label, budget in (("cache", "feature cache", Sam2Backend.feature_cache_bytes),
                                   ("one-frame", "sam2's one-frame cache", 0)):
            backend.feature_cache_bytes = budget
            backend.open(frames)
            for k in (3, 4):
                backend.click(k, *pt)
            before = backend.encoded
            _, wall, cpu = timed(lambda: backend.click(3, *more))
            results[key] = wall
            row(f"back to an earlier frame, {label}", [wall], [cpu],
                f"encoder runs {backend.encoded - before}")
        print(f"  coming back to a frame: {results['one-frame'] / results['cache']:.1f}x "
              f"faster with the feature cache; encoder runs in all: {backend.encoded}")
        backend.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2, help="CPU threads (OpenCV, torch)")
    parser.add_argument("--reps", type=int, default=6, help="frames clicked per measurement")
    parser.add_argument("--sizes", default="512,1024", help="SAM2 image sizes")
    parser.add_argument("--skip-browser", action="store_true")
    parser.add_argument("--skip-sam2", action="store_true")
    args = parser.parse_args()
    cv2.setNumThreads(args.threads)
    try:
        import torch

        torch.set_num_threads(args.threads)
    except ImportError:
        pass
    root = Path(tempfile.mkdtemp(prefix="refvps-latency-"))
    try:
        ws, info = make_workspace(root)
        print(f"clip: {W}x{H}, {len(info['frames'])} frames, {len(info['anno_frames'])} annotation "
              f"frames; {args.threads} threads; load average {os.getloadavg()[0]:.1f} on "
              f"{os.cpu_count()} cores")
        bench_opencv(ws, info, args.reps)
        if not args.skip_browser:
            bench_browser(ws, info, args.reps)
        if not args.skip_sam2:
            bench_sam2(ws, info, [int(s) for s in args.sizes.split(",")])
    finally:
        shutil.rmtree(root, ignore_errors=True)
    sys.stdout.flush()


if __name__ == "__main__":
    main()
