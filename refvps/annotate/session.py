"""One annotation session: a workspace, a backend and the background propagation job.

The backend is not thread-safe, so every backend call runs under one lock. A propagation run
holds it for its whole length, and interactive prompts meanwhile are refused as busy (the page
queues them and sends them when the run ends). Prompts wait for each other: two clicks in quick
succession are applied in order, never refused. Frames the annotator has decided (clicked,
edited, marked "no target", reviewed) are locked: propagation stops before them.
"""
from __future__ import annotations

import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

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


class _Locked(Exception):
    """A frame got locked while a propagation was about to write it."""


class ConfirmError(WorkspaceError):
    """An action that would discard work; repeated with ``confirm`` it goes ahead."""

    def __init__(self, message: str, reason: str, **details):
        super().__init__(message)
        self.reason, self.details = reason, details


@dataclass
class Job:
    id: str
    frame: str
    direction: str
    total: int = 0
    done: int = 0
    state: str = "running"  # running, done, cancelled, failed
    error: str | None = None
    targets: list[str] = field(default_factory=list)
    completed: list[str] = field(default_factory=list)
    started: float = field(default_factory=time.monotonic)
    ended: float | None = None
    cancel: threading.Event = field(default_factory=threading.Event)

    def public(self) -> dict:
        elapsed = (self.ended or time.monotonic()) - self.started
        eta = None
        if self.state == "running" and self.done:
            eta = round(elapsed / self.done * (self.total - self.done), 1)
        return {"id": self.id, "frame": self.frame, "direction": self.direction,
                "total": self.total, "done": self.done, "state": self.state, "error": self.error,
                "targets": self.targets, "completed": list(self.completed),
                "elapsed_s": round(elapsed, 1), "eta_s": eta}


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
        self._prompt_lock = threading.Lock()

    # --- backend access -----------------------------------------------------------------------
    def _running(self) -> bool:
        return self.job is not None and self.job.state == "running"

    def start(self, report: Callable[[str], None] | None = None) -> None:
        """Load the model and the clip now (the CLI, at start-up) rather than at the first click."""
        self.backend.load(report)
        started = time.perf_counter()
        with self._backend_lock:
            self._open()
        if report is not None:
            report(f"{self.backend.name}: {len(self.ws.anno_frames)} annotation frames ready in "
                   f"{time.perf_counter() - started:.1f} s")

    def _open(self) -> None:
        if not self._opened:
            self.backend.open([self.ws.frame_path(f) for f in self.ws.anno_frames])
            self._opened = True

    def _acquire(self) -> None:
        """Take the backend, waiting behind a click or a warm-up but never behind a propagation."""
        while not self._backend_lock.acquire(timeout=0.05):
            if self._running():
                raise BusyError("propagation is running; wait for it or cancel it")
        try:
            self._open()
        except BaseException:
            self._backend_lock.release()
            raise

    def prepare(self, frame: str) -> bool:
        """Precompute frame ``frame``'s features in the background if the backend is idle."""
        k = self.ws.anno_index(frame)
        if not self._backend_lock.acquire(blocking=False):
            return False

        def run() -> None:
            try:
                self._open()
                self.backend.prepare(k)
            except Exception:  # a failed warm-up costs nothing: the click computes it again
                pass
            finally:
                self._backend_lock.release()

        threading.Thread(target=run, daemon=True, name=f"prepare-{frame}").start()
        return True

    def _prompt(self, frame: str, record: dict) -> np.ndarray:
        points = np.array([p[:2] for p in record["points"]], float).reshape(-1, 2)
        labels = np.array([p[2] for p in record["points"]], int)
        box = None if record["box"] is None else np.array(record["box"], float)
        return self.backend.click(self.ws.anno_index(frame), points, labels, box)

    # --- prompts ------------------------------------------------------------------------------
    def click(self, frame: str, x: float, y: float, positive: bool) -> None:
        self._check_xy(x, y)
        point = [float(x), float(y), 1 if positive else 0]
        self._repredict(frame, "click", lambda r: r["points"].append(point))

    def box(self, frame: str, box: list[float]) -> None:
        x0, y0, x1, y1 = (float(v) for v in box)
        self._check_xy(x0, y0)
        self._check_xy(x1, y1)
        self._repredict(frame, "box", lambda r: r.update(box=[min(x0, x1), min(y0, y1),
                                                             max(x0, x1), max(y0, y1)]))

    def clear_prompts(self, frame: str, confirm: bool = False) -> None:
        """Forget the frame's clicks and box (and the mask they gave). On a frame without
        prompts that only holds a propagated mask this erases that mask: ``confirm`` needed."""
        record = self.ws.record(frame)
        if not (record["points"] or record["box"]) and not confirm \
                and self.ws.layers(frame).model.any():
            raise ConfirmError(f"frame {frame} has no clicks; clearing would erase its "
                               f"propagated mask", "erase_mask")
        self._repredict(frame, "clear prompts", lambda r: r.update(points=[], box=None))

    def _repredict(self, frame: str, action: str, change: Callable[[dict], None]) -> None:
        """Read-modify-write of the frame's prompts, then the model's mask for them; prompts
        are applied one after another in the order they arrive."""
        self.ws.anno_index(frame)
        with self._prompt_lock:
            self._acquire()
            try:
                record = self.ws.record(frame)
                change(record)
                if record["points"] or record["box"]:
                    model = self._prompt(frame, record)
                else:
                    self.backend.clear(self.ws.anno_index(frame))
                    model = np.zeros(self.ws.size, bool)
            finally:
                self._backend_lock.release()
            model = np.asarray(model, bool)
            self.ws.edit(action, frame, lambda old: old.replace(model=model),
                         points=record["points"], box=record["box"], reviewed=False,
                         no_target=False)

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

        fields = {"no_target": False} if kind == "add" else {}
        self.ws.edit(kind, frame, apply, reviewed=False, **fields)

    def clear_frame(self, frame: str) -> None:
        """Mark ``frame`` as having no target: every layer and prompt cleared, and the frame
        locked so that propagation does not fill it again."""
        self.ws.commit("no target", frame, Layers.empty(self.ws.size), points=[], box=None,
                       reviewed=False, no_target=True)

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

    def plan(self, frame: str, direction: str) -> dict:
        """What a propagation from ``frame`` would do: the frames it overwrites, the locked
        frames it stops before, and whether it starts from an empty mask."""
        if direction not in DIRECTIONS:
            raise WorkspaceError(f"unknown direction {direction!r}; one of {', '.join(DIRECTIONS)}")
        start = self.ws.anno_index(frame)
        names = self.ws.anno_frames
        targets, stops = [], []
        for reverse in DIRECTIONS[direction]:
            step = -1 if reverse else 1
            run = self._targets(start, step)
            targets += [names[k] for k in run]
            end = (run[-1] if run else start) + step
            if 0 <= end < len(names):
                stops.append(names[end])
        empty = not self.ws.layers(frame).foreground.any()
        return {"frame": frame, "direction": direction, "targets": targets, "stops": stops,
                "empty_start": empty}

    def propagate(self, frame: str, direction: str, confirm: bool = False) -> Job:
        """Start propagating from ``frame`` in a background thread; returns the job.

        From a frame without a mask this would empty every frame it reaches: ``confirm`` needed.
        """
        plan = self.plan(frame, direction)
        if plan["empty_start"] and plan["targets"] and not confirm:
            raise ConfirmError(f"frame {frame} has no mask: propagating from it would empty "
                               f"{len(plan['targets'])} frame(s)", "empty_start",
                               targets=plan["targets"])
        start = self.ws.anno_index(frame)
        self._acquire()
        try:
            runs = [(reverse, self._targets(start, -1 if reverse else 1))
                    for reverse in DIRECTIONS[direction]]
            job = Job(uuid.uuid4().hex[:12], frame, direction, total=sum(len(t) for _, t in runs),
                      targets=[self.ws.anno_frames[k] for _, run in runs for k in run])
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
                    name = self.ws.anno_frames[k]
                    if not self._write_unless_locked(job, name, model, group):
                        break
                    job.done += 1
                    job.completed.append(name)
            job.state = "cancelled" if job.cancel.is_set() else "done"
        except Exception as exc:  # reported to the page through the job status
            job.state, job.error = "failed", f"{exc.__class__.__name__}: {exc}"
        finally:
            job.ended = time.monotonic()
            self._backend_lock.release()

    def _write_unless_locked(self, job: Job, name: str, model: np.ndarray, group: str) -> bool:
        """Store a propagated mask unless the annotator locked the frame during the run (a
        stroke or "no target" while it was running); then the run stops in that direction."""
        def change(old: Layers) -> Layers:
            if self.ws.locked(name):  # under the workspace's lock: no edit can slip in between
                raise _Locked
            return old.replace(model=model)

        try:
            self.ws.edit(f"propagate {job.direction} from {job.frame}", name, change, group=group)
        except _Locked:
            return False
        return True

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
