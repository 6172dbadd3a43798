"""``scripts/upstream-check``: run each model wrapper against its real upstream code.

For each model: the family's isolated environment (:mod:`.venvs`, cached), refvps installed
into it, a tiny random-weight checkpoint in the upstream's format (:mod:`.tiny`), then
``refvps predict`` from that environment on one clip of the sample benchmark, and checks of
what it wrote (:func:`output_problems`). One line per model; ``--json`` prints
``{model: {status, reason, seconds, peak_rss_mb, ...}}`` on stdout (the lines go to stderr).
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Dict, List, Optional

import numpy as np

from refvps.baselines.base import file_sha256
from refvps.baselines.contract import ContractSpec, model_specs
from refvps.baselines.contract.venvs import ensure_env, install_refvps, python_of

CONTRACT_CLIP = "vps_0004"
"""The sample clip every contract run predicts: 29 frames of 96 x 160 (not square, so the
resize back to the frame size is exercised; long enough for two clips of each model)."""


@dataclass
class Result:
    status: str  # ok | failed | skipped
    reason: str = ""
    seconds: Optional[float] = None  # the `refvps predict` run
    peak_rss_mb: Optional[float] = None  # of the `refvps predict` process
    setup_seconds: Optional[float] = None  # environment, refvps install, tiny checkpoint
    log: str = ""
    details: Dict[str, object] = field(default_factory=dict)


class CheckFailed(Exception):
    """A step of a contract run failed; the message is the reason reported."""


def gpu_available() -> bool:
    """Whether an NVIDIA GPU is visible (``nvidia-smi -L`` lists one)."""
    if shutil.which("nvidia-smi") is None:
        return False
    try:
        listed = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return listed.returncode == 0 and "GPU" in listed.stdout


def checkout_commit(checkout: Path) -> Optional[str]:
    """The checked-out commit of a git work tree, None for a plain folder."""
    if not (checkout / ".git").exists():
        return None
    done = subprocess.run(["git", "-C", str(checkout), "rev-parse", "HEAD"],
                          capture_output=True, text=True)
    return done.stdout.strip() if done.returncode == 0 else None


def source_root() -> Optional[Path]:
    """The source tree refvps runs from (holding pyproject.toml), if it is one."""
    root = Path(__file__).resolve().parents[3]
    return root if (root / "pyproject.toml").is_file() else None


def make_contract_sample(folder: Path) -> Path:
    """The sample Ref-VPS benchmark restricted (by its split file) to :data:`CONTRACT_CLIP`."""
    from refvps.formats import REFVPS_FOLDER, SPLITS_DIR
    from refvps.sample import make_sample

    if not (folder / REFVPS_FOLDER).is_dir():
        make_sample(folder, predictions=False)
        (folder / REFVPS_FOLDER / SPLITS_DIR / "test.txt").write_text(CONTRACT_CLIP + "\n")
    return folder


def _tail(path: Path, lines: int = 12) -> str:
    try:
        text = path.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        return ""
    return "\n".join(text[-lines:])


def run_measured(command: List[str], log: Path, timeout_s: float,
                 env: Optional[dict] = None, cwd: Optional[Path] = None) -> tuple:
    """(exit code, seconds, peak RSS MB of the process) of ``command``, output to ``log``;
    killed after ``timeout_s`` (exit code None)."""
    started = time.perf_counter()
    with open(log, "a") as out:
        out.write(f"$ {' '.join(command)}\n")
        out.flush()
        proc = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, env=env, cwd=cwd,
                                start_new_session=True)
        timed_out = threading.Event()

        def kill() -> None:
            timed_out.set()
            try:
                os.killpg(proc.pid, 9)
            except ProcessLookupError:
                pass

        timer = threading.Timer(timeout_s, kill)
        timer.start()
        try:
            _, status, usage = os.wait4(proc.pid, 0)
        finally:
            timer.cancel()
        proc.returncode = os.waitstatus_to_exitcode(status)
    seconds = time.perf_counter() - started
    return (None if timed_out.is_set() else proc.returncode), seconds, usage.ru_maxrss / 1024


def output_problems(data: Path, out: Path, spec: ContractSpec, checkout: Path,
                    checkpoint_sha256: str) -> List[str]:
    """Everything wrong with what ``refvps predict`` wrote to ``out`` (empty: all good)."""
    from PIL import Image

    from refvps.baselines.runner import is_done
    from refvps.formats import PRED_RUN_FILE
    from refvps.loaders import load_benchmark

    bench = load_benchmark("ref-vps", data)
    problems = []
    for task in bench.tasks():
        frame_files = sorted(p for p in bench.frame_path(task.video, "x").parent.iterdir()
                             if p.suffix.lower() in {".jpg", ".jpeg", ".png"})
        for query in task.queries:
            names = bench.inference_frames(query)
            if len(names) != len(frame_files):
                problems.append(f"{query.unit}: {len(names)} frames asked, the clip has "
                                f"{len(frame_files)} (24 fps)")
            for name in names:
                path = out / bench.prediction_relpath(query, name)
                if not path.is_file():
                    problems.append(f"{path.relative_to(out)}: missing")
                    continue
                with Image.open(bench.frame_path(task.video, name)) as frame:
                    size = frame.size
                with Image.open(path) as mask:
                    values = np.unique(np.asarray(mask))
                    if mask.size != size:
                        problems.append(f"{path.relative_to(out)}: size {mask.size}, frame {size}")
                if not set(values.tolist()) <= {0, 255}:
                    problems.append(f"{path.relative_to(out)}: values {values[:5].tolist()}, "
                                    "expected 0/255")
            if not is_done(bench, out, query):
                problems.append(f"{query.unit}: no valid .done marker")
    try:
        info = json.loads((out / PRED_RUN_FILE).read_text(encoding="utf-8")).get("info") or {}
    except (OSError, ValueError) as exc:
        return problems + [f"{PRED_RUN_FILE}: {exc}"]
    if not info.get("version") or info.get("version") == "?":
        problems.append(f"{PRED_RUN_FILE}: no model version ({info.get('version')!r})")
    if spec.commit not in str(info.get("upstream", "")):
        problems.append(f"{PRED_RUN_FILE}: upstream {info.get('upstream')!r} does not name the "
                        f"pinned commit {spec.commit}")
    head = checkout_commit(checkout)
    if head and not str(info.get("upstream_commit", "")).startswith(head):
        problems.append(f"{PRED_RUN_FILE}: upstream_commit {info.get('upstream_commit')!r}, the "
                        f"checkout is at {head}")
    if info.get("checkpoint_sha256") != checkpoint_sha256:
        problems.append(f"{PRED_RUN_FILE}: checkpoint_sha256 {info.get('checkpoint_sha256')!r}, "
                        f"the file's is {checkpoint_sha256}")
    if not info.get("params"):
        problems.append(f"{PRED_RUN_FILE}: no params")
    return problems


def check_model(model: str, upstream: Path, work: Path, *, explicit: bool = True,
                gpu: Optional[bool] = None) -> Result:
    """One contract run of ``model`` against ``upstream/<repo folder>``."""
    spec = model_specs()[model]
    gpu = gpu_available() if gpu is None else gpu
    if spec.needs_cuda and not gpu:
        return Result("skipped", "needs CUDA (no GPU visible)")
    checkout = (upstream / spec.repo_folder).resolve()
    if not checkout.is_dir():
        return Result("failed" if explicit else "skipped", f"no checkout {checkout}")
    head = checkout_commit(checkout)
    if head is not None and not head.startswith(spec.commit):
        return Result("failed", f"{checkout} is at {head[:12]}; the wrapper is pinned to "
                                f"{spec.commit} (git -C {checkout} checkout {spec.commit})")
    folder = work / model
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    log = folder / "log.txt"
    started = time.perf_counter()
    try:
        env_python, env = _prepare(model, spec, checkout, folder, log)
        model_args = _tiny_checkpoint(model, checkout, folder, env_python, env, log)
    except CheckFailed as exc:
        return Result("failed", str(exc), setup_seconds=time.perf_counter() - started,
                      log=str(log))
    setup = time.perf_counter() - started
    data = make_contract_sample(work / "sample")
    out = folder / "predictions"
    command = [str(env_python), "-m", "refvps", "predict", "--model", model, "--benchmark",
               "ref-vps", "--data", str(data), "--out", str(out), "--no-progress",
               "--model-arg", f"repo={checkout}"]
    for key, value in model_args.items():
        command += ["--model-arg", f"{key}={value}"]
    code, seconds, peak = run_measured(command, log, spec.timeout_s, env=env, cwd=folder)
    result = Result("ok", seconds=round(seconds, 1), peak_rss_mb=round(peak, 1),
                    setup_seconds=round(setup, 1), log=str(log),
                    details={"model_args": model_args, "upstream_commit": head or ""})
    if code is None:
        result.status, result.reason = "failed", f"refvps predict ran over {spec.timeout_s:.0f} s"
        return result
    if code != 0:
        result.status = "failed"
        result.reason = f"refvps predict exited with {code}:\n{_tail(log)}"
        return result
    checkpoint = model_args.get("checkpoint")
    digest = file_sha256(checkpoint) if checkpoint else ""
    problems = output_problems(data, out, spec, checkout, digest)
    if problems:
        result.status = "failed"
        result.reason = "; ".join(problems[:10]) + (f" (+{len(problems) - 10} more)"
                                                    if len(problems) > 10 else "")
    return result


def _prepare(model: str, spec: ContractSpec, checkout: Path, folder: Path, log: Path):
    """(the environment's python, the environment variables for its processes)."""
    with open(log, "a") as handle:
        try:
            env_dir = ensure_env(spec.env_file(model), handle)
        except subprocess.CalledProcessError as exc:
            raise CheckFailed(f"building the environment from {spec.envs[model]} failed "
                              f"({exc.cmd[-1] if exc.cmd else ''}); see {log}:\n{_tail(log)}")
        root = source_root()
        env = {k: v for k, v in os.environ.items() if k not in {"PYTHONPATH", "PYTHONHOME"}}
        env.update(HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", PYTHONUNBUFFERED="1",
                   PYTHONDONTWRITEBYTECODE="1")
        if root is not None:
            try:
                install_refvps(env_dir, root, handle)
            except subprocess.CalledProcessError:
                raise CheckFailed(f"installing refvps into the environment failed:\n{_tail(log)}")
        else:  # an installed refvps: the environment imports it from here
            env["PYTHONPATH"] = str(Path(__file__).resolve().parents[3])
    return python_of(env_dir), env


def _tiny_checkpoint(model: str, checkout: Path, folder: Path, env_python: Path, env: dict,
                     log: Path) -> Dict[str, str]:
    stdout = folder / "tiny-args.json"
    command = [str(env_python), "-m", "refvps.baselines.contract.tiny", "--model", model,
               "--repo", str(checkout), "--out", str(folder / "checkpoint")]
    with open(log, "a") as handle, open(stdout, "w") as out:
        handle.write(f"$ {' '.join(command)}\n")
        handle.flush()
        done = subprocess.run(command, stdout=out, stderr=handle, env=env, cwd=folder)
    if done.returncode != 0:
        raise CheckFailed(f"writing the tiny checkpoint failed:\n{_tail(log)}")
    lines = stdout.read_text().strip().splitlines()
    model_args = json.loads(lines[-1])
    model_args.setdefault("device", "cpu")
    return model_args


def check(upstream: Path, models: Optional[List[str]] = None, work: Optional[Path] = None,
          echo=print) -> Dict[str, Result]:
    """Contract runs of ``models`` (default: every model with a contract), one after another."""
    known = model_specs()
    unknown = sorted(set(models or ()) - set(known))
    if unknown:
        raise SystemExit(f"no upstream contract for {', '.join(unknown)}; known: "
                         f"{', '.join(sorted(known))}")
    work = Path(work) if work else Path(tempfile.mkdtemp(prefix="refvps-upstream-check-"))
    work.mkdir(parents=True, exist_ok=True)
    gpu = gpu_available()
    results = {}
    for model in models or sorted(known):
        result = check_model(model, upstream, work, explicit=models is not None, gpu=gpu)
        results[model] = result
        echo(format_line(model, result))
    return results


def format_line(model: str, result: Result) -> str:
    figures = ""
    if result.seconds is not None:
        figures = f"  {result.seconds:.1f} s, peak RSS {result.peak_rss_mb:.0f} MB"
    reason = f"  {result.reason}" if result.reason else ""
    log = f"  (log {result.log})" if result.status == "failed" and result.log else ""
    return f"{model:14s} {result.status:8s}{figures}{reason}{log}"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        prog="upstream-check", description=__doc__.splitlines()[0],
        epilog="example: scripts/upstream-check --upstream ~/upstream --models rem-ms,rem-wan "
               "--json   (DIR holds ReferEverything/, VD-IT/, UniRef/, SOLA/)")
    parser.add_argument("--upstream", required=True, type=Path,
                        help="folder holding the upstream checkouts, named as the repositories")
    parser.add_argument("--models", default="",
                        help="comma-separated registry names (default: every model with a contract)")
    parser.add_argument("--work", type=Path, default=None,
                        help="where checkpoints, predictions and logs go (default: a new temp dir)")
    parser.add_argument("--json", action="store_true", help="print a JSON summary on stdout")
    args = parser.parse_args(argv)
    if not args.upstream.is_dir():
        parser.error(f"--upstream {args.upstream}: not a folder")
    models = [m.strip() for m in args.models.split(",") if m.strip()] or None
    echo = (lambda line: print(line, file=sys.stderr, flush=True)) if args.json else \
        (lambda line: print(line, flush=True))
    results = check(args.upstream, models, args.work, echo=echo)
    if args.json:
        print(json.dumps({m: {k: v for k, v in asdict(r).items() if k != "details"}
                          for m, r in results.items()}, indent=1))
    return 1 if any(r.status == "failed" for r in results.values()) else 0


if __name__ == "__main__":
    sys.exit(main())
