"""One annotation session: a workspace, a backend and the background propagation job.

The backend is not thread-safe, so every backend call runs under one lock; a propagation run
holds it for its whole length, and interactive prompts meanwhile are refused as busy.
"""
from __future__ import annotations

import threading
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from refvps.annotate.backends import Backend
from refvps.annotate.workspace import Layers, Workspace, WorkspaceError

BRUSH_LAYERS = ("add", "erase", "ignore", "unignore")
"""Stroke kinds: brush (add), eraser (erase), Ignore brush, Ignore eraser."""
DIRECTIONS = {"forward": (False,), "backward": (True,), "both": (False, True)}
"""Propagation direction -> the ``reverse`` flags of its passes, in order."""


class BusyError(WorkspaceError):
    """The backend is running a propagation; try again when it is done or cancelled."""


@dataclass
class Job:
    id: str
    frame: str
    direction: str
    total: int = 0
    done: int = 0
    state: str = "running"  # running, done, cancelled, failed
    error: str | None = None
    cancel: threading.Event = field(default_factory=threading.Event)

    def public(self) -> dict:
        return {"id": self.id, "frame": self.frame, "direction": self.direction,
                "total": self.total, "done": self.done, "state": self.state, "error": self.error}


def stroke_mask(size: tuple[int, int], points: list[list[float]], radius: float) -> np.ndarray:
    """Rasterise a brush stroke (a polyline of round dabs) at full resolution."""
    canvas = np.zeros(size, np.uint8)
    pts = [(int(round(x)), int(round(y))) for x, y in points]
    thickness = max(1, int(round(2 * radius)))
    for a, b in zip(pts, pts[1:]):
        cv2.line(canvas, a, b, 1, thickness, lineType=cv2.LINE_8)
    for p in pts:
        cv2.circle(canvas, p, max(0, int(round(radius))), 1, -1)
    return canvas.astype(bool)


class Session:
    def __init__(self, workspace: Workspace, backend: Backend):
        self.ws = workspace
        self.backend = backend
        self._backend_lock = threading.Lock()
        self.job: Job | None = None
        self._opened = False

    # --- backend access -----------------------------------------------------------------------
    def _acquire(self) -> None:
        if not self._backend_lock.acquire(blocking=False):
            raise BusyError("propagation is running; wait for it or cancel it")
        try:
            if not self._opened:
                self.backend.open([self.ws.frame_path(f) for f in self.ws.anno_frames])
                self._opened = True
        except BaseException:
            self._backend_lock.release()
            raise

    def _prompt(self, frame: str, record: dict) -> np.ndarray:
        points = np.array([p[:2] for p in record["points"]], float).reshape(-1, 2)
        labels = np.array([p[2] for p in record["points"]], int)
        box = None if record["box"] is None else np.array(record["box"], float)
        return self.backend.click(self.ws.anno_index(frame), points, labels, box)

    # --- prompts ------------------------------------------------------------------------------
    def click(self, frame: str, x: float, y: float, positive: bool) -> None:
        record = self.ws.record(frame)
        self._check_xy(x, y)
        record["points"].append([float(x), float(y), 1 if positive else 0])
        self._repredict(frame, record, "click")

    def box(self, frame: str, box: list[float]) -> None:
        x0, y0, x1, y1 = (float(v) for v in box)
        self._check_xy(x0, y0)
        self._check_xy(x1, y1)
        record = self.ws.record(frame)
        record["box"] = [min(x0, x1), min(y0, y1), max(x0, x1), max(y0, y1)]
        self._repredict(frame, record, "box")

    def clear_prompts(self, frame: str) -> None:
        record = self.ws.record(frame)
        record["points"], record["box"] = [], None
        self._repredict(frame, record, "clear prompts")

    def _repredict(self, frame: str, record: dict, action: str) -> None:
        self._acquire()
        try:
            if record["points"] or record["box"]:
                model = self._prompt(frame, record)
            else:
                self.backend.clear(self.ws.anno_index(frame))
                model = np.zeros(self.ws.size, bool)
        finally:
            self._backend_lock.release()
        model = np.asarray(model, bool)
        self.ws.edit(action, frame, lambda old: old.replace(model=model), points=record["points"],
                     box=record["box"], reviewed=False)

    def _check_xy(self, x: float, y: float) -> None:
        h, w = self.ws.size
        if not (0 <= x < w and 0 <= y < h):
            raise WorkspaceError(f"point ({x}, {y}) lies outside the {w}x{h} frame")

    # --- manual layers ------------------------------------------------------------------------
    def stroke(self, frame: str, kind: str, points: list[list[float]], radius: float) -> None:
        if kind not in BRUSH_LAYERS:
            raise WorkspaceError(f"unknown stroke kind {kind!r}; one of {', '.join(BRUSH_LAYERS)}")
        if not points:
            raise WorkspaceError("a stroke needs at least one point")
        paint = stroke_mask(self.ws.size, points, radius)

        def apply(old: Layers) -> Layers:
            if kind == "add":
                return old.replace(add=old.add | paint, erase=old.erase & ~paint)
            if kind == "erase":
                return old.replace(erase=old.erase | paint, add=old.add & ~paint)
            if kind == "ignore":
                return old.replace(ignore=old.ignore | paint)
            return old.replace(ignore=old.ignore & ~paint)

        self.ws.edit(kind, frame, apply, reviewed=False)

    def clear_frame(self, frame: str) -> None:
        """Mark ``frame`` as having no target: every layer and prompt cleared."""
        self.ws.commit("clear frame", frame, Layers.empty(self.ws.size), points=[], box=None,
                       reviewed=False)

    def set_reviewed(self, frame: str, reviewed: bool) -> None:
        self.ws.commit("review" if reviewed else "unreview", frame, reviewed=bool(reviewed))

    # --- propagation --------------------------------------------------------------------------
    def _targets(self, start: int, step: int) -> list[int]:
        """Frames after ``start`` in one direction, up to (excluding) the next locked frame."""
        out = []
        k = start + step
        while 0 <= k < len(self.ws.anno_frames) and not self.ws.locked(self.ws.anno_frames[k]):
            out.append(k)
            k += step
        return out

    def propagate(self, frame: str, direction: str) -> Job:
        """Start propagating from ``frame`` in a background thread; returns the job."""
        if direction not in DIRECTIONS:
            raise WorkspaceError(f"unknown direction {direction!r}; one of {', '.join(DIRECTIONS)}")
        start = self.ws.anno_index(frame)
        self._acquire()
        try:
            runs = [(reverse, self._targets(start, -1 if reverse else 1))
                    for reverse in DIRECTIONS[direction]]
            job = Job(uuid.uuid4().hex[:12], frame, direction, total=sum(len(t) for _, t in runs))
            self.job = job
            thread = threading.Thread(target=self._run, args=(job, start, runs), daemon=True,
                                      name=f"propagate-{job.id}")
            thread.start()
        except BaseException:
            self._backend_lock.release()
            raise
        return job

    def _condition(self, start: int) -> None:
        frame = self.ws.anno_frames[start]
        record = self.ws.record(frame)
        layers = self.ws.layers(frame)
        if (record["points"] or record["box"]) and not layers.edited:
            self._prompt(frame, record)
        else:
            self.backend.set_mask(start, layers.foreground)

    def _run(self, job: Job, start: int, runs: list[tuple[bool, list[int]]]) -> None:
        group = f"propagate-{job.id}"
        try:
            if job.total:
                self._condition(start)
            for reverse, targets in runs:
                if not targets or job.cancel.is_set():
                    continue
                wanted = set(targets)
                for k, mask in self.backend.propagate(start, reverse, len(targets)):
                    if job.cancel.is_set():
                        break
                    if k not in wanted:
                        continue
                    model = np.asarray(mask, bool)
                    self.ws.edit(f"propagate {job.direction} from {job.frame}",
                                 self.ws.anno_frames[k], lambda old: old.replace(model=model),
                                 group=group)
                    job.done += 1
            job.state = "cancelled" if job.cancel.is_set() else "done"
        except Exception as exc:  # reported to the page through the job status
            job.state, job.error = "failed", f"{exc.__class__.__name__}: {exc}"
        finally:
            self._backend_lock.release()

    def cancel(self) -> Job | None:
        if self.job is not None and self.job.state == "running":
            self.job.cancel.set()
        return self.job

    def wait(self, timeout: float | None = None) -> Job | None:
        """Block until the running job ends (tests and the CLI)."""
        if self._backend_lock.acquire(timeout=-1 if timeout is None else timeout):
            self._backend_lock.release()
        return self.job

    def close(self) -> None:
        self.cancel()
        self.wait(timeout=30)
        self.backend.close()


def open_session(workspace: str | Path, backend: Backend) -> Session:
    return Session(Workspace(workspace), backend)
