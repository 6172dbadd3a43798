"""The annotation workspace on disk: layers, prompts, flags, expressions and undo history.

Every annotation frame has four full-resolution binary layers:

- ``model``: the latest backend output (clicks, boxes, propagation);
- ``add`` / ``erase``: the annotator's brush and eraser strokes, kept apart from ``model`` so a
  new model output never degrades them;
- ``ignore``: the annotator's Ignore strokes.

The exported label is ``1`` on ``(model | add) & ~erase``, ``255`` (Ignore) on ``ignore``
(Ignore wins), ``0`` elsewhere.

A frame's layers are stored as immutable revisions ``layers/<frame>/<rev>.npz``; ``state.json``
points at each frame's current revision. An edit writes its new revision first, then rewrites
``state.json`` atomically, so killing the process loses at most the edit in flight. Undo and
redo move the pointers back and forth through the history kept in ``state.json``, which is why
reopening a workspace restores the history too.
"""
from __future__ import annotations

import copy
import io
import json
import threading
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from refvps.annotate.storage import atomic_write_bytes, atomic_write_json
from refvps.errors import RefvpsError
from refvps.formats import (EXPRESSIONS_PER_CLIP, IGNORE_LABEL, WORKSPACE_FRAMES, WORKSPACE_INFO,
                            WORKSPACE_LAYERS, WORKSPACE_STATE)

LAYER_NAMES = ("model", "add", "erase", "ignore")
STATUSES = ("empty", "model", "edited", "reviewed")
HISTORY_LIMIT = 500


class WorkspaceError(RefvpsError):
    """A workspace that cannot be opened or an edit that cannot be applied."""


@dataclass(frozen=True)
class Layers:
    model: np.ndarray
    add: np.ndarray
    erase: np.ndarray
    ignore: np.ndarray

    @classmethod
    def empty(cls, size: tuple[int, int]) -> "Layers":
        return cls(*(np.zeros(size, bool) for _ in LAYER_NAMES))

    def replace(self, **layers: np.ndarray) -> "Layers":
        values = {name: layers.get(name, getattr(self, name)) for name in LAYER_NAMES}
        return Layers(**values)

    @property
    def foreground(self) -> np.ndarray:
        return (self.model | self.add) & ~self.erase

    @property
    def edited(self) -> bool:
        return bool(self.add.any() or self.erase.any() or self.ignore.any())

    def labels(self) -> np.ndarray:
        """The exported label map: 0 background, 1 target, 255 Ignore."""
        labels = self.foreground.astype(np.uint8)
        labels[self.ignore] = IGNORE_LABEL
        return labels


def _encode_layers(layers: Layers) -> bytes:
    buffer = io.BytesIO()
    shape = np.array(layers.model.shape, np.int64)
    np.savez_compressed(buffer, shape=shape,
                        **{name: np.packbits(getattr(layers, name)) for name in LAYER_NAMES})
    return buffer.getvalue()


def _decode_layers(path: Path) -> Layers:
    with np.load(path) as data:
        shape = tuple(int(v) for v in data["shape"])
        count = shape[0] * shape[1]
        return Layers(*(np.unpackbits(data[name], count=count).reshape(shape).astype(bool)
                        for name in LAYER_NAMES))


def _new_record() -> dict:
    return {"rev": 0, "points": [], "box": None, "reviewed": False, "no_target": False}


def _default_state(anno_frames: list[str]) -> dict:
    return {
        "next_rev": 1,
        "frames": {name: _new_record() for name in anno_frames},
        "meta": {"expressions": [""] * EXPRESSIONS_PER_CLIP, "concept": "", "concept_groups": []},
        "undo": [],
        "redo": [],
    }


class Workspace:
    """One clip's annotation state; all methods are thread-safe."""

    def __init__(self, root: str | Path):
        self.root = Path(root)
        info_path = self.root / WORKSPACE_INFO
        if not info_path.is_file():
            raise WorkspaceError(f"{self.root}: not an annotation workspace (no {WORKSPACE_INFO})")
        self.info: dict = json.loads(info_path.read_text(encoding="utf-8"))
        self.frames: list[str] = list(self.info["frames"])
        self.anno_frames: list[str] = list(self.info["anno_frames"])
        self.size: tuple[int, int] = (int(self.info["height"]), int(self.info["width"]))
        self._anno_index = {name: k for k, name in enumerate(self.anno_frames)}
        self._lock = threading.RLock()
        self._cache: OrderedDict[tuple[str, int], Layers] = OrderedDict()
        state_path = self.root / WORKSPACE_STATE
        if state_path.is_file():
            self.state = json.loads(state_path.read_text(encoding="utf-8"))
        else:
            self.state = _default_state(self.anno_frames)

    # --- reading ---------------------------------------------------------------------------
    @property
    def clip_id(self) -> str:
        return self.info["clip_id"]

    def anno_index(self, frame: str) -> int:
        """Position of ``frame`` among the annotation frames (KeyError-free: raises a clear error)."""
        try:
            return self._anno_index[frame]
        except KeyError:
            raise WorkspaceError(f"{frame!r} is not an annotation frame of {self.clip_id}") from None

    def frame_path(self, frame: str) -> Path:
        return self.root / WORKSPACE_FRAMES / f"{frame}.jpg"

    def record(self, frame: str) -> dict:
        with self._lock:
            self.anno_index(frame)
            return {**_new_record(), **copy.deepcopy(self.state["frames"][frame])}

    def layers(self, frame: str) -> Layers:
        with self._lock:
            rev = self.record(frame)["rev"]
            return self._load(frame, rev)

    def _load(self, frame: str, rev: int) -> Layers:
        if rev == 0:
            return Layers.empty(self.size)
        key = (frame, rev)
        layers = self._cache.get(key)
        if layers is None:
            path = self.root / WORKSPACE_LAYERS / frame / f"{rev}.npz"
            try:
                layers = _decode_layers(path)
            except (OSError, ValueError, KeyError) as exc:
                raise WorkspaceError(f"{path}: unreadable layers ({exc})") from None
            self._cache[key] = layers
            if len(self._cache) > 64:
                self._cache.popitem(last=False)
        else:
            self._cache.move_to_end(key)
        return layers

    def status(self, frame: str) -> str:
        """``reviewed`` (checked by the annotator), ``edited`` (brush, eraser or Ignore strokes),
        ``model`` (backend output only) or ``empty`` (no target and no Ignore)."""
        record = self.record(frame)
        if record["reviewed"]:
            return "reviewed"
        layers = self.layers(frame)
        if layers.edited:
            return "edited"
        return "model" if layers.model.any() else "empty"

    def locked(self, frame: str) -> bool:
        """Frames propagation must not overwrite: reviewed, edited, marked "no target", or
        prompted by the annotator."""
        record = self.record(frame)
        return bool(record["reviewed"] or record["no_target"] or record["points"]
                    or record["box"] or self.layers(frame).edited)

    @property
    def meta(self) -> dict:
        with self._lock:
            return copy.deepcopy(self.state["meta"])

    def can_undo(self) -> bool:
        return bool(self.state["undo"])

    def can_redo(self) -> bool:
        return bool(self.state["redo"])

    # --- writing ---------------------------------------------------------------------------
    def _save(self) -> None:
        atomic_write_json(self.root / WORKSPACE_STATE, self.state)

    def commit(self, action: str, frame: str, layers: Layers | None = None,
               group: str | None = None, **fields) -> None:
        """Apply one edit to ``frame`` and save it: new layers and/or record fields.

        Edits with the same ``group`` (a propagation run) form one undo step.
        """
        with self._lock:
            self.anno_index(frame)
            before = self.record(frame)
            after = copy.deepcopy(before)
            unknown = set(fields) - set(after) - {"rev"}
            if unknown:
                raise WorkspaceError(f"unknown frame fields {sorted(unknown)}")
            after.update(fields)
            if layers is not None:
                rev = self.state["next_rev"]
                atomic_write_bytes(self.root / WORKSPACE_LAYERS / frame / f"{rev}.npz",
                                   _encode_layers(layers))
                self.state["next_rev"] = rev + 1
                after["rev"] = rev
                self._cache[(frame, rev)] = layers
            if after == before:
                return
            self.state["frames"][frame] = after
            change = {"frame": frame, "before": before, "after": after}
            undo = self.state["undo"]
            if group is not None and undo and undo[-1].get("group") == group:
                undo[-1]["changes"].append(change)
            else:
                undo.append({"action": action, "group": group, "changes": [change]})
                del undo[:-HISTORY_LIMIT]
            self.state["redo"] = []
            self._save()

    def edit(self, action: str, frame: str, change: Callable[[Layers], Layers],
             group: str | None = None, **fields) -> None:
        """Read-modify-write of a frame's layers as one atomic step (concurrent edits of the
        same frame, e.g. a stroke during a propagation, are never lost)."""
        with self._lock:
            self.commit(action, frame, change(self.layers(frame)), group=group, **fields)

    def undo(self) -> list[str]:
        """Undo the last step; returns the frames it changed (empty when nothing to undo)."""
        return self._step("undo", "redo", "before")

    def redo(self) -> list[str]:
        return self._step("redo", "undo", "after")

    def _step(self, source: str, target: str, side: str) -> list[str]:
        with self._lock:
            if not self.state[source]:
                return []
            entry = self.state[source].pop()
            changes = entry["changes"] if side == "after" else reversed(entry["changes"])
            for change in changes:
                self.state["frames"][change["frame"]] = copy.deepcopy(change[side])
            self.state[target].append(entry)
            self._save()
            return sorted({c["frame"] for c in entry["changes"]})

    def set_meta(self, expressions: list[str] | None = None, concept: str | None = None,
                 concept_groups: list[str] | None = None) -> dict:
        """Store the clip's expressions, concept and concept groups (not part of undo)."""
        with self._lock:
            meta = self.state["meta"]
            if expressions is not None:
                if len(expressions) != EXPRESSIONS_PER_CLIP:
                    raise WorkspaceError(f"expected {EXPRESSIONS_PER_CLIP} expressions, got "
                                         f"{len(expressions)}")
                meta["expressions"] = [str(e) for e in expressions]
            if concept is not None:
                meta["concept"] = str(concept)
            if concept_groups is not None:
                meta["concept_groups"] = [str(g) for g in concept_groups]
            self._save()
            return copy.deepcopy(meta)
