"""Run a segmenter in another Python environment: a long-lived worker process per model.

``--model-arg python=/envs/rem/bin/python`` makes :class:`refvps.baselines.runner.ModelSpec`
build a :class:`SubprocessSegmenter`. The worker (:mod:`refvps.baselines.worker`) loads the
model once and serves queries; frames travel as file paths (the original JPEGs when they exist,
else lossless PNGs), masks come back as packed npz files. When the worker dies, it is restarted
(the model reloaded) and the query retried once; a second death fails the query, and the next
query starts a fresh worker. A model that does not load raises :class:`ModelLoadError` once and
is not loaded again (the runner then stops).
"""
from __future__ import annotations

import dataclasses
import json
import os
import select
import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any, Sequence

import numpy as np

import refvps
from refvps.baselines.base import Requirement
from refvps.baselines.clips import shorter_clip_len
from refvps.baselines.protocol import ModelLoadError, OutOfMemory, SegmenterInfo, VideoInput
from refvps.baselines.registry import registered
from refvps.baselines.worker import BOOT, read_masks


class WorkerCrashed(RuntimeError):
    """The worker process exited or stopped answering."""


class WorkerError(RuntimeError):
    """The worker answered with an error (its traceback is in the message)."""


class SubprocessSegmenter:
    """A segmenter proxy; the model runs in ``python``'s environment."""

    def __init__(self, target: str, python: str, model_args: dict | None = None, *,
                 load_timeout_s: float = 3600.0, frame_timeout_s: float = 30.0,
                 min_timeout_s: float = 300.0, env: dict | None = None):
        self.name = target
        known = registered()  # the worker gets module:Class (entry points need Python 3.10)
        self.target = known[target].target if target in known else target
        self.python = python
        self.model_args = dict(model_args or {})
        self.load_timeout_s = load_timeout_s
        self.frame_timeout_s = frame_timeout_s
        self.min_timeout_s = min_timeout_s
        self.env = dict(env or {})
        self.proc: subprocess.Popen | None = None
        self.hello: dict = {}
        self.loaded: dict = {}
        self.crashes = 0
        self.last_stats: dict | None = None
        self._override: int | None = None
        self._load_error: ModelLoadError | None = None
        self._buffer = b""
        self._tmp = Path(tempfile.mkdtemp(prefix="refvps-worker-"))

    # --- process management ---------------------------------------------------------------------
    def _spawn(self) -> None:
        refvps_parent = str(Path(refvps.__file__).resolve().parent.parent)
        env = dict(os.environ, PYTHONUNBUFFERED="1", **self.env)
        self.proc = subprocess.Popen([self.python, "-c", BOOT, refvps_parent, "--target",
                                      self.target], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     env=env)
        self._buffer = b""
        self.hello = self._exchange({"op": "hello"}, 120.0)

    def _start(self) -> None:
        """Start a worker and load the model in it. A failed load is remembered and raised
        again without a new attempt: the same arguments in the same environment fail again."""
        if self._load_error is not None:
            raise self._load_error
        try:
            self._spawn()
            reply = self._exchange({"op": "load", "args": self.model_args}, self.load_timeout_s)
        except (WorkerCrashed, OSError, ValueError) as exc:
            self._stop()
            self._load_error = ModelLoadError(f"{self.name}: the worker under {self.python} "
                                              f"did not load the model: {exc}")
            raise self._load_error from exc
        if reply.get("status") != "ok":
            self._stop()
            message = reply.get("message")
            if reply.get("kind") != "load":  # an older worker, or a failure around the load
                message = f"{self.name}: the model could not be loaded: {message}"
            self._load_error = ModelLoadError(f"{message} (in the worker under {self.python})")
            raise self._load_error
        self.loaded = reply

    def ensure_loaded(self) -> None:
        """Start the worker and load the model now (the runner does, before any query)."""
        if self.proc is None or self.proc.poll() is not None:
            self._start()

    def _stop(self) -> None:
        if self.proc is None:
            return
        proc, self.proc = self.proc, None
        try:
            if proc.poll() is None:
                proc.stdin.write(b'{"op": "shutdown"}\n')
                proc.stdin.flush()
                proc.wait(timeout=10)
        except (OSError, subprocess.TimeoutExpired):
            proc.kill()
            proc.wait()

    def _read_line(self, deadline: float) -> bytes:
        fd = self.proc.stdout.fileno()
        while b"\n" not in self._buffer:
            left = deadline - time.monotonic()
            if left <= 0:
                self.proc.kill()
                self.proc.wait()
                raise WorkerCrashed(f"{self.name}: worker did not answer in time (killed)")
            ready, _, _ = select.select([fd], [], [], min(left, 1.0))
            if ready:
                chunk = os.read(fd, 1 << 16)
                if not chunk:
                    code = self.proc.wait()
                    raise WorkerCrashed(f"{self.name}: worker exited with code {code}")
                self._buffer += chunk
        line, _, self._buffer = self._buffer.partition(b"\n")
        return line

    def _exchange(self, request: dict, timeout: float) -> dict:
        try:
            self.proc.stdin.write((json.dumps(request) + "\n").encode())
            self.proc.stdin.flush()
        except (BrokenPipeError, OSError):
            code = self.proc.wait()
            raise WorkerCrashed(f"{self.name}: worker exited with code {code}") from None
        return json.loads(self._read_line(time.monotonic() + timeout))

    def _request(self, request: dict, timeout: float) -> dict:
        """Send ``request``; if the worker dies, restart it and retry once."""
        for attempt in (1, 2):
            if self.proc is None or self.proc.poll() is not None:
                self._start()
            try:
                return self._exchange(request, timeout)
            except WorkerCrashed:
                self.crashes += 1
                self.proc = None
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")

    # --- the Segmenter protocol ------------------------------------------------------------------
    def info(self) -> SegmenterInfo:
        data = self.loaded.get("info") or {}
        if not data:
            raise RuntimeError(f"{self.name}: info() before the model is loaded "
                               "(call ensure_loaded() first)")
        known = {f.name for f in dataclasses.fields(SegmenterInfo)}
        return SegmenterInfo(**{k: v for k, v in data.items() if k in known})

    @property
    def clip_len(self) -> int | None:
        return self._override if self._override is not None else self.loaded.get("clip_len")

    @clip_len.setter
    def clip_len(self, value: int | None) -> None:
        self._override = value

    def shorter_clip_len(self, n_frames: int) -> int | None:
        shorter = shorter_clip_len(self.clip_len, n_frames, self.loaded.get("clip_lens") or ())
        if shorter is not None:
            self._override = shorter
        return shorter

    def predict_video(self, video: VideoInput, expressions: Sequence[str]) -> list[np.ndarray]:
        paths = list(video.frame_paths) if video.frame_paths else self._write_frames(video.frames)
        timeout = max(self.min_timeout_s, self.frame_timeout_s * len(paths))
        outputs = []
        for key, expression in enumerate(expressions):
            out = self._tmp / f"{key}.npz"
            reply = self._request({"op": "predict", "video_id": video.video_id,
                                   "frame_names": list(video.frame_names), "frames": paths,
                                   "expression": expression, "out": str(out),
                                   "clip_len": self.clip_len}, timeout)
            if reply.get("status") != "ok":
                message = f"{self.name} (worker): {reply.get('message')}"
                if reply.get("kind") == "oom":
                    raise OutOfMemory(message)
                raise WorkerError(f"{message}\n{reply.get('traceback', '')}")
            self.last_stats = {"peak_mem_mb": reply["peak_mem_mb"], "mem_kind": reply["mem_kind"]}
            outputs.append(read_masks(str(out)))
            out.unlink()
        return outputs

    def predict(self, frames: Sequence[np.ndarray], expression: str) -> np.ndarray:
        frames = list(frames)
        names = [f"{i:05d}" for i in range(len(frames))]
        return self.predict_video(VideoInput("", names, frames), [expression])[0]

    def _write_frames(self, frames: Sequence[np.ndarray]) -> list[str]:
        from PIL import Image

        folder = Path(tempfile.mkdtemp(dir=self._tmp, prefix="frames-"))
        paths = []
        for index, frame in enumerate(frames):
            path = folder / f"{index:05d}.png"
            Image.fromarray(np.asarray(frame)).save(path)  # lossless
            paths.append(str(path))
        return paths

    def requirements(self) -> list[Requirement]:
        """The model's requirements as its own environment sees them."""
        if not Path(self.python).exists() and shutil.which(self.python) is None:
            return [Requirement(f"python {self.python}", False, "interpreter not found")]
        try:
            self._spawn()
            reply = self._exchange({"op": "check", "args": self.model_args}, 600.0)
        except (WorkerCrashed, OSError, ValueError) as exc:
            return [Requirement(f"worker under {self.python}", False, str(exc))]
        finally:
            self._stop()
        versions = ", ".join(f"{k} {self.hello[k]}" for k in ("python", "torch") if k in self.hello)
        head = [Requirement(f"python {self.python}", True, versions)]
        if reply.get("status") != "ok":
            return head + [Requirement("model check", False, reply.get("message", ""))]
        return head + [Requirement(r["what"], r["ok"], r["detail"]) for r in reply["requirements"]]

    def close(self) -> None:
        self._stop()
        self._load_error = None
        shutil.rmtree(self._tmp, ignore_errors=True)
        self._tmp.mkdir(parents=True, exist_ok=True)

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()
        shutil.rmtree(self._tmp, ignore_errors=True)

    def __del__(self) -> None:
        try:
            self._stop()
            shutil.rmtree(self._tmp, ignore_errors=True)
        except Exception:
            pass

    def __getstate__(self) -> dict[str, Any]:
        raise TypeError("a SubprocessSegmenter holds a process; send its ModelSpec instead")
