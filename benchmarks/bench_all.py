"""Every speed ratio of issue 13 in one run, against the literal official scorers in tests/.

Workloads are generated in code. Each comparison runs its contenders interleaved, round after
round, and prints the min and median ratio over the rounds. The primary figure is CPU time of
this process (``time.process_time``): the machines this runs on are shared, and CPU time is
what another process on the same cores changes least. Wall time is printed where parallelism is
the point (2 workers vs 1, each in a fresh process as ``refvps eval`` runs). The load average is
printed before every section.

1. F per frame, refvps vs the literal davis2017 ``db_eval_boundary`` (tests/literal_davis.py),
   on each scene class of tests/_scenes.py at 480x854 and 720x1280 and on the mix of 8 kinds.
2. PNG decoding: refvps' readers vs ``cv2.imdecode`` grayscale and ``np.array(PIL.Image.open)``
   on PIL-written masks.
3. MeViS end to end on PIL-written predictions: the literal ``eval_mevis.py``
   (tests/_official_mevis.py, one process) vs ``refvps.evaluate`` with 1 worker vs the decode
   floor (``cv2.imread`` grayscale of every prediction); peak memory at two sizes.
4. 2 workers vs 1 worker, each a fresh process, in interleaved pairs: on the MeViS workload and
   on a small job (the Ref-VPS sample).
5. Ref-DAVIS unsupervised: refvps vs the literal dense evaluator
   (tests/literal_davis_unsupervised.py).
6. ``refvps --help`` and an argument error, wall time of a fresh process.

    python benchmarks/bench_all.py --quick      # about two minutes on 2 idle cores
    python benchmarks/bench_all.py              # the issue's sizes (12,000 MeViS frames)
    python benchmarks/bench_all.py --only workers   # section 4 alone
"""
from __future__ import annotations

import argparse
import io
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "tests"), str(ROOT / "benchmarks")]

import _official_mevis as official_mevis  # noqa: E402  (tests/)
import literal_davis_unsupervised as davis_literal  # noqa: E402  (tests/)
from _scenes import MIX, SCENES  # noqa: E402  (tests/)
from literal_davis import literal_f  # noqa: E402  (tests/)

from refvps.allocator import keep_freed_memory  # noqa: E402
from refvps.evaluation import evaluate  # noqa: E402
from refvps.executors import SMALL_JOB_FRAMES  # noqa: E402
from refvps.loaders import load_benchmark  # noqa: E402
from refvps.masks import read_mask_bytes  # noqa: E402
from refvps.metrics import contour_accuracy  # noqa: E402
from refvps.predictions import PredictionStore  # noqa: E402
from refvps.sample import make_sample  # noqa: E402


def load() -> str:
    return "load average %.2f %.2f %.2f" % os.getloadavg()


def cpu_time(fn, reps: int = 1, warm: bool = False) -> float:
    if warm:  # one untimed call first: the frame's masks are in cache, as right after decoding
        fn()
    started = time.process_time()
    for _ in range(reps):
        fn()
    return (time.process_time() - started) / reps


def ratios(slow: list[float], fast: list[float]) -> str:
    values = [s / f for s, f in zip(slow, fast)]
    return f"min {min(values):6.1f}x  median {statistics.median(values):6.1f}x"


# --- 1. F per frame ---------------------------------------------------------------------------
def bench_f(rounds: int, instances: int, reps: int) -> None:
    print(f"\n1. F per frame vs literal davis2017 db_eval_boundary (CPU time; {load()})")
    print(f"   {instances} frames per class, {reps} reps each, {rounds} interleaved rounds")
    for shape in ((480, 854), (720, 1280)):
        rng = np.random.default_rng(shape[0])
        frames = {name: [gen(rng, shape) for _ in range(instances)] for name, gen in MIX.items()}
        for name, items in frames.items():
            for gt, pred, void in items:
                assert contour_accuracy(gt, pred, void) == literal_f(pred, gt, void), name
        literal = {name: [] for name in frames}
        ours = {name: [] for name in frames}
        for _ in range(rounds):
            for name, items in frames.items():
                literal[name].append(sum(cpu_time(lambda: literal_f(p, g, v), reps, warm=True)
                                         for g, p, v in items))
                ours[name].append(sum(cpu_time(lambda: contour_accuracy(g, p, v), reps, warm=True)
                                      for g, p, v in items))
        print(f"   {shape[0]}x{shape[1]}   {'class':<22} {'literal ms':>10} {'refvps ms':>10}")
        for name in [*SCENES, "mix"]:
            if name == "mix":
                slow = [sum(literal[n][r] for n in MIX) for r in range(rounds)]
                fast = [sum(ours[n][r] for n in MIX) for r in range(rounds)]
                count = instances * len(MIX)
            else:
                slow, fast, count = literal[name], ours[name], instances
            print(f"   {'':9} {name:<22} {min(slow) / count * 1e3:10.3f} "
                  f"{min(fast) / count * 1e3:10.3f}   {ratios(slow, fast)}")


# --- 2. PNG decoding ----------------------------------------------------------------------------
def bench_png(rounds: int, count: int) -> None:
    print(f"\n2. PNG decoding of PIL-written 480x854 masks (CPU time; {load()})")
    rng = np.random.default_rng(7)
    names = list(MIX)
    blobs = []
    for index in range(count):
        _gt, pred, _void = MIX[names[index % len(names)]](rng, (480, 854))
        buffer = io.BytesIO()
        Image.fromarray(pred.astype(np.uint8) * 255).save(buffer, format="PNG")
        blobs.append(buffer.getvalue())
    store = PredictionStore(ROOT, reader="cv2-gray")
    for data in blobs:
        reference = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_GRAYSCALE)
        assert np.array_equal(store.decode_binary(data, "x"), reference != 0)
        assert np.array_equal(read_mask_bytes(data, "x"), np.array(Image.open(io.BytesIO(data))))
    timings: dict[str, list[float]] = {k: [] for k in ("cv2", "refvps-cv2", "pil", "refvps-pil")}
    for _ in range(rounds):
        timings["cv2"].append(cpu_time(lambda: [
            cv2.imdecode(np.frombuffer(d, np.uint8), cv2.IMREAD_GRAYSCALE) != 0 for d in blobs]))
        timings["refvps-cv2"].append(cpu_time(lambda: [store.decode_binary(d, "x") for d in blobs]))
        timings["pil"].append(cpu_time(lambda: [np.array(Image.open(io.BytesIO(d)))
                                                for d in blobs]))
        timings["refvps-pil"].append(cpu_time(lambda: [read_mask_bytes(d, "x") for d in blobs]))
    for ref, ours in (("cv2", "refvps-cv2"), ("pil", "refvps-pil")):
        print(f"   {ours:<11} {min(timings[ours]) / count * 1e6:7.0f} us/frame vs {ref:<4} "
              f"{min(timings[ref]) / count * 1e6:7.0f} us/frame   "
              f"{ratios(timings[ref], timings[ours])}")


# --- 3. MeViS end to end --------------------------------------------------------------------------
def _fresh_eval(root: Path, preds: Path, workers: int, benchmark: str = "mevis",
                split: str | None = "valid_u") -> tuple[float, dict, float | None]:
    """Wall seconds of ``evaluate`` in a fresh process set up as ``refvps eval`` is (its pool
    workers do not re-import this script, which imports the literal scorers), J and F, and the
    fraction of the machine's CPU time that was busy meanwhile (Linux ``/proc/stat``; None
    elsewhere)."""
    code = (
        "import json, os, time\n"
        "from refvps.allocator import keep_freed_memory\n"
        "from refvps.evaluation import evaluate\n"
        "def ticks():\n"
        "    if not os.path.exists('/proc/stat'):\n"
        "        return None\n"
        "    with open('/proc/stat') as stat:\n"
        "        values = [int(v) for v in stat.readline().split()[1:]]\n"
        "    return sum(values), values[3] + values[4]  # all, idle + iowait\n"
        "keep_freed_memory()\n"
        "before = ticks()\n"
        "started = time.perf_counter()\n"
        f"result = evaluate({str(preds)!r}, {benchmark!r}, {str(root)!r}, {split!r}, "
        f"workers={workers}, progress=False)\n"
        "seconds = time.perf_counter() - started\n"
        "after = ticks()\n"
        "busy = None if before is None or after[0] == before[0] else "
        "1 - (after[1] - before[1]) / (after[0] - before[0])\n"
        "print(json.dumps([seconds, {'J': result.metrics['J'], 'F': result.metrics['F']}, busy]))\n")
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True,
                         text=True).stdout
    seconds, metrics, busy = json.loads(out.strip().splitlines()[-1])
    return seconds, metrics, busy


def _decode_in_processes(paths: list[str], processes: int) -> float:
    """Wall seconds for ``processes`` forked children to ``cv2.imread`` ``paths`` between them:
    what this machine's cores give for the same files right now, with no process start or
    coordination to pay (children of this process, which has run nothing that a fork could
    leave locked: OpenCV's reads use no thread pool)."""
    started = time.perf_counter()
    children = []
    for index in range(processes):
        pid = os.fork()
        if pid == 0:
            try:
                for path in paths[index::processes]:
                    cv2.imread(path, cv2.IMREAD_GRAYSCALE)
            finally:
                os._exit(0)
        children.append(pid)
    for pid in children:
        os.waitpid(pid, 0)
    return time.perf_counter() - started


def _workers_1_vs_2(root: Path, preds: Path, pairs: int, target: float | None = 1.8,
                    ceiling: bool = False, **where) -> str:
    """2 workers against 1, fresh processes run in interleaved pairs (which runs first
    alternates), as wall-time ratios: their median and quartiles, how many pairs reach
    ``target``, the ratio of the fastest runs, and how busy the machine's cores were during
    the 2-worker runs (what the pool's start and the serial parts leave idle). With
    ``ceiling``, each pair is followed by the machine's own ratio for decoding the same
    predictions in 2 forked processes against 1 (:func:`_decode_in_processes`), the most two
    cores gave at that moment."""
    times: dict[int, list[float]] = {1: [], 2: []}
    busy: list[float] = []
    machine: list[float] = []
    paths = sorted(str(path) for path in preds.rglob("*.png")) if ceiling else []
    seen = []
    for pair in range(pairs):
        for workers in (1, 2) if pair % 2 == 0 else (2, 1):
            seconds, metrics, machine_busy = _fresh_eval(root, preds, workers, **where)
            times[workers].append(seconds)
            seen.append(metrics)
            if workers == 2 and machine_busy is not None:
                busy.append(machine_busy)
        if ceiling and hasattr(os, "fork"):
            machine.append(_decode_in_processes(paths, 1) / _decode_in_processes(paths, 2))
    assert all(metrics == seen[0] for metrics in seen), seen
    per_pair = [one / two for one, two in zip(times[1], times[2])]
    low, _, high = statistics.quantiles(per_pair, n=4) if pairs > 1 else per_pair * 3
    cores = f", cores busy during 2-worker runs {statistics.median(busy):.0%}" if busy else ""
    reached = "" if target is None else \
        f", {sum(r >= target for r in per_pair)} of {pairs} pairs >= {target}x"
    most = (f"\n      the machine's own 2-vs-1-process ratio decoding these PNGs, after each "
            f"pair: median {statistics.median(machine):.2f}x (min {min(machine):.2f}x)"
            if machine else "")
    return (f"median of {pairs} pairs {statistics.median(per_pair):.2f}x (quartiles "
            f"{low:.2f}-{high:.2f}{reached})  "
            f"min/min {min(times[1]) / min(times[2]):.2f}x\n      (1 worker {min(times[1]):.3f} s, "
            f"2 workers {min(times[2]):.3f} s{cores}){most}")


def bench_mevis(frames: int, rounds: int, work: Path) -> None:
    from bench_mevis import FRAMES, build, peak_rss_mib

    print(f"\n3. MeViS end to end, {frames} expression-frames at 480x854, PNGs written by PIL "
          f"({load()})")
    scale = frames / FRAMES / 2200
    root, preds, n_frames = build(work / "mevis-a", scale, writer="pil")
    split = root / "mevis" / "valid_u"
    paths = sorted(str(p) for p in preds.rglob("*.png"))

    def floor():
        for path in paths:
            cv2.imread(path, cv2.IMREAD_GRAYSCALE)

    def official():
        return official_mevis.summary(official_mevis.eval_mevis(str(preds), str(split)))

    runs = {key: [] for key in ("floor", "official", "refvps-1")}
    result = expected = None
    for _ in range(rounds):
        runs["floor"].append(cpu_time(floor))
        started = time.process_time()
        expected = official()
        runs["official"].append(time.process_time() - started)
        started = time.process_time()
        result = evaluate(preds, "mevis", root, "valid_u", workers=1, progress=False)
        runs["refvps-1"].append(time.process_time() - started)
    j, f, _jf = expected
    print(f"   J refvps {result.metrics['J']!r} official {j!r}; F refvps {result.metrics['F']!r} "
          f"official {f!r}; identical: {result.metrics['J'] == j and result.metrics['F'] == f}")
    for key in ("floor", "official", "refvps-1"):
        print(f"   {key:<22} {min(runs[key]):8.2f} s CPU  {n_frames / min(runs[key]):7.0f} frames/s")
    print(f"   refvps 1 worker vs official (CPU):       {ratios(runs['official'], runs['refvps-1'])}")
    print(f"   refvps 1 worker / decode floor (CPU):    min "
          f"{min(r / fl for r, fl in zip(runs['refvps-1'], runs['floor'])):.2f}  median "
          f"{statistics.median(r / fl for r, fl in zip(runs['refvps-1'], runs['floor'])):.2f}")
    small_root, small_preds, small_frames = build(work / "mevis-b", scale / 2, seed=1,
                                                  writer="pil")
    print(f"   peak RSS of a fresh 1-worker eval: {peak_rss_mib(small_root, small_preds):.0f} MiB "
          f"at {small_frames} frames, {peak_rss_mib(root, preds):.0f} MiB at {n_frames} frames")


# --- 4. Workers ----------------------------------------------------------------------------------
def bench_workers(frames: int, pairs: int, work: Path) -> None:
    from bench_mevis import FRAMES, build

    print(f"\n4. 2 workers vs 1 worker, wall time of a fresh process, interleaved pairs ({load()})")
    root, preds, n_frames = build(work / "mevis-w", frames / FRAMES / 2200, writer="pil")
    print(f"   MeViS, {n_frames} expression-frames:\n      "
          f"{_workers_1_vs_2(root, preds, pairs, ceiling=True)}")
    sample = make_sample(work / "sample")
    small = _workers_1_vs_2(sample.root, sample.predictions["eroded"], 2 * pairs + 1,
                            target=None, benchmark="ref-vps", split=None)  # 0.1 s runs: more pairs
    print(f"   small job, the Ref-VPS sample (384 query-frames; under {SMALL_JOB_FRAMES} "
          f"query-frames one process scores, whatever the workers):\n      {small}")


# --- 5. Ref-DAVIS --------------------------------------------------------------------------------
def bench_refdavis(n_seqs: int, n_frames: int, rounds: int, work: Path) -> None:
    from bench_refdavis import make_data

    print(f"\n5. Ref-DAVIS unsupervised, {n_seqs} sequences x {n_frames} frames, 3 objects x 5 "
          f"proposals, 480x854 ({load()})")
    root = work / "refdavis"
    names = make_data(root, n_seqs, n_frames, 3, 5, (480, 854))
    bench = load_benchmark("ref-davis", root, runs=(0,))
    gt_root = root / "ref-davis/DAVIS/Annotations_unsupervised/480p"
    literal, ours = [], []
    for _ in range(rounds):
        started = time.process_time()
        expected = davis_literal.evaluate_run(gt_root, root / "preds/anno_0", names)
        literal.append(time.process_time() - started)
        started = time.process_time()
        result = evaluate(root / "preds", bench, workers=1, progress=False)
        ours.append(time.process_time() - started)
    print(f"   J&F refvps {result.metrics['J&F']!r} literal {expected['J&F']!r} identical: "
          f"{result.metrics['J&F'] == expected['J&F']}")
    print(f"   literal {min(literal):.2f} s CPU, refvps 1 worker {min(ours):.2f} s CPU   "
          f"{ratios(literal, ours)}")


# --- 6. Command line ------------------------------------------------------------------------------
def bench_cli(rounds: int) -> None:
    print(f"\n6. Command line start-up, wall time of a fresh process, min of {rounds} ({load()})")
    commands = {"python -c pass": [sys.executable, "-c", "pass"],
                "refvps --help": [sys.executable, "-m", "refvps", "--help"],
                "refvps eval (argument error)": [sys.executable, "-m", "refvps", "eval", "-b",
                                                 "nope", "--preds", "."]}
    for label, command in commands.items():
        times = []
        for _ in range(rounds):
            started = time.perf_counter()
            subprocess.run(command, capture_output=True, check=False)
            times.append(time.perf_counter() - started)
        print(f"   {label:<30} {min(times):6.3f} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, about two minutes")
    parser.add_argument("--only", choices=["f", "png", "mevis", "workers", "refdavis", "cli"],
                        nargs="*")
    parser.add_argument("--dir", type=Path, default=None, help="work folder (default: temp)")
    args = parser.parse_args()
    cv2.setNumThreads(1)
    keep_freed_memory()  # as `refvps eval` and its workers do
    sections = set(args.only or ["f", "png", "mevis", "workers", "refdavis", "cli"])
    quick = args.quick
    from refvps.metrics.boundary import kernel_name

    print(f"bench_all ({'quick' if quick else 'full'}), {os.cpu_count()} CPUs, {load()}, "
          f"F kernel: {kernel_name()} (REFVPS_NUMPY_KERNEL=1 for the NumPy one)")
    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        work = Path(tmp)
        if "f" in sections:
            bench_f(rounds=3 if quick else 5, instances=2 if quick else 6, reps=2 if quick else 3)
        if "png" in sections:
            bench_png(rounds=3 if quick else 5, count=40 if quick else 200)
        if "mevis" in sections:
            bench_mevis(frames=1200 if quick else 12000, rounds=2, work=work)
        if "workers" in sections:
            bench_workers(frames=3600 if quick else 12000, pairs=3 if quick else 11, work=work)
        if "refdavis" in sections:
            bench_refdavis(*((2, 8) if quick else (8, 30)), rounds=2, work=work)
        if "cli" in sections:
            bench_cli(rounds=3 if quick else 7)
    print(f"\ndone ({load()})")


if __name__ == "__main__":
    main()
