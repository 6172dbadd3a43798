"""A model worker: serves one segmenter inside the model's own Python environment.

Started by :class:`refvps.baselines.subprocess_mode.SubprocessSegmenter` with the model
environment's interpreter (:data:`BOOT`). It needs only numpy and Pillow there: the folder holding
refvps is put on ``sys.path`` (nothing is installed in that environment), and this module and the
wrapper modules stay Python 3.8 compatible.

Protocol: one JSON object per line on stdin; one JSON reply per line on the original stdout
(the worker's own ``print`` output, and the model's, goes to stderr). Operations:

* ``{"op": "hello"}`` -> python, numpy, torch and CUDA versions, pid;
* ``{"op": "check", "args": {...}}`` -> the model's requirements (nothing is loaded);
* ``{"op": "load", "args": {...}}`` -> builds and loads the model; replies its info and clip length;
* ``{"op": "predict", "frames": [paths], "frame_names": [...], "video_id": ..., "expression": ...,
  "out": "x.npz", "clip_len": n | null}`` -> writes ``np.packbits`` of the T x H x W masks to
  ``out`` (atomically) and replies ``seconds``, ``peak_mem_mb``, ``mem_kind``;
* ``{"op": "shutdown"}``.

Failures reply ``{"status": "error", "kind": "oom" | "load" | "runtime", "message",
"traceback"}`` (``load``: the model cannot load; the message says why).
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import sys
import time
import traceback

PROTOCOL = 1

BOOT = ("import sys; sys.path.insert(0, sys.argv[1]); "
        "from refvps.baselines.worker import main; main(sys.argv[2:])")
"""``python -c BOOT REFVPS_PARENT --target NAME`` starts a worker."""


def _versions() -> dict:
    import numpy

    info = {"protocol": PROTOCOL, "python": platform.python_version(), "numpy": numpy.__version__,
            "pid": os.getpid(), "executable": sys.executable}
    try:
        from importlib.metadata import version

        info["torch"] = version("torch")  # without importing it (seconds)
    except Exception:
        pass
    torch = sys.modules.get("torch")
    if torch is not None:
        info["cuda"] = torch.cuda.is_available()
        if info["cuda"]:
            info["gpu"] = torch.cuda.get_device_name(0)
    return info


def _memory_start() -> None:
    torch = sys.modules.get("torch")
    if torch is not None and torch.cuda.is_available():
        torch.cuda.reset_peak_memory_stats()


def _memory_peak() -> tuple:
    torch = sys.modules.get("torch")
    if torch is not None and torch.cuda.is_available():
        return torch.cuda.max_memory_allocated() / 2 ** 20, "cuda"
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, "rss_process_peak"


def write_masks(path: str, masks) -> None:
    """``masks`` (T x H x W bool) as npz of packbits + shape, written atomically."""
    import numpy as np

    tmp = path + ".tmp.npz"
    np.savez(tmp, packed=np.packbits(masks.astype(bool), axis=-1), shape=np.array(masks.shape))
    os.replace(tmp, path)


def read_masks(path: str):
    import numpy as np

    with np.load(path) as data:
        shape = tuple(int(v) for v in data["shape"])
        return np.unpackbits(data["packed"], axis=-1, count=shape[-1]).astype(bool).reshape(shape)


class Worker:
    def __init__(self, target: str):
        self.target = target
        self.segmenter = None

    def build(self, args: dict):
        from refvps.baselines.registry import segmenter_class

        return segmenter_class(self.target)(**args)

    def handle(self, request: dict) -> dict:
        op = request.get("op")
        if op == "hello":
            return dict(_versions(), status="ok")
        if op == "check":
            segmenter = self.build(request.get("args", {}))
            reqs = segmenter.requirements() if hasattr(segmenter, "requirements") else []
            return {"status": "ok", "requirements": [
                {"what": r.what, "ok": r.ok, "detail": r.detail} for r in reqs]}
        if op == "load":
            import dataclasses

            self.segmenter = self.build(request.get("args", {}))
            if hasattr(self.segmenter, "ensure_loaded"):
                self.segmenter.ensure_loaded()
            info = self.segmenter.info() if hasattr(self.segmenter, "info") else None
            return {"status": "ok", "info": dataclasses.asdict(info) if info else None,
                    "clip_len": getattr(self.segmenter, "clip_len", None),
                    "clip_lens": list(getattr(self.segmenter, "clip_lens", ()))}
        if op == "predict":
            return self.predict(request)
        raise ValueError(f"unknown op {op!r}")

    def predict(self, request: dict) -> dict:
        from refvps.baselines.frames import LazyFrames
        from refvps.baselines.protocol import VideoInput

        if self.segmenter is None:
            raise RuntimeError("predict before load")
        if request.get("clip_len") is not None:
            self.segmenter.clip_len = int(request["clip_len"])
        started = time.perf_counter()
        _memory_start()
        paths = request["frames"]
        video = VideoInput(request.get("video_id", ""), request.get("frame_names") or
                           [os.path.splitext(os.path.basename(p))[0] for p in paths],
                           LazyFrames(paths), paths)
        if hasattr(self.segmenter, "predict_video"):
            masks = self.segmenter.predict_video(video, [request["expression"]])[0]
        else:
            masks = self.segmenter.predict(list(video.frames), request["expression"])
        write_masks(request["out"], masks)
        peak, kind = _memory_peak()
        return {"status": "ok", "seconds": time.perf_counter() - started,
                "peak_mem_mb": peak, "mem_kind": kind}


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--target", required=True, help="registered name or module:Class")
    args = parser.parse_args(argv)
    channel = os.fdopen(os.dup(1), "w", buffering=1, encoding="utf-8")
    os.dup2(2, 1)  # upstream prints go to stderr, never into the protocol
    sys.stdout = sys.stderr
    from refvps.baselines.protocol import ModelLoadError, is_out_of_memory

    worker = Worker(args.target)
    for line in sys.stdin:
        if not line.strip():
            continue
        request = json.loads(line)
        if request.get("op") == "shutdown":
            channel.write(json.dumps({"status": "ok"}) + "\n")
            break
        try:
            reply = worker.handle(request)
        except ModelLoadError as exc:  # says what failed already
            reply = {"status": "error", "kind": "load", "message": str(exc),
                     "traceback": traceback.format_exc(limit=12)}
        except Exception as exc:
            reply = {"status": "error", "kind": "oom" if is_out_of_memory(exc) else "runtime",
                     "message": f"{type(exc).__name__}: {exc}",
                     "traceback": traceback.format_exc(limit=12)}
        channel.write(json.dumps(reply, default=str) + "\n")


if __name__ == "__main__":
    main()
