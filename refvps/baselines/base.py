"""A base class for segmenters: typed configuration, lazy loading, requirement checks.

Subclasses declare a ``Config`` dataclass; ``--model-arg k=v`` strings are converted to the
field types and unknown keys are rejected. Heavy imports (torch, upstream code) belong in
:meth:`BaseSegmenter.load`, which runs on the first prediction. Python 3.8 compatible (it runs
inside model workers).
"""
from __future__ import annotations

import dataclasses
import hashlib
import importlib.util
import os
import subprocess
import typing
import warnings
from dataclasses import dataclass
from typing import Any, ClassVar, Dict, List, Optional, Sequence, Tuple

import numpy as np

from refvps.errors import ModelError
from refvps.baselines.clips import shorter_clip_len
from refvps.baselines.protocol import ModelLoadError, SegmenterInfo, check_masks


@dataclass
class NoConfig:
    pass


@dataclass(frozen=True)
class Requirement:
    """One thing a model needs (for ``refvps models --check``)."""

    what: str
    ok: bool
    detail: str = ""


_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


def _convert(value: Any, kind: Any, key: str) -> Any:
    if not isinstance(value, str):
        return value
    origin = typing.get_origin(kind)
    args = typing.get_args(kind)
    if origin is typing.Union:  # Optional[X]
        if value.lower() in {"none", "null", ""}:
            return None
        kind = next(a for a in args if a is not type(None))
        origin, args = typing.get_origin(kind), typing.get_args(kind)
    try:
        if kind is bool:
            if value.lower() in _TRUE | _FALSE:
                return value.lower() in _TRUE
            raise ValueError(value)
        if kind in (int, float, str):
            return kind(value)
        if origin in (tuple, Tuple):
            return tuple(_convert(v, args[0], key) for v in value.split(",") if v.strip())
    except ValueError:
        raise ModelError(f"model argument {key}={value!r}: expected {getattr(kind, '__name__', kind)}"
                         ) from None
    return value


def parse_config(config_cls: type, args: Dict[str, Any]) -> Any:
    """An instance of dataclass ``config_cls`` from ``args`` (strings converted to field types)."""
    fields = {f.name: f for f in dataclasses.fields(config_cls)}
    unknown = sorted(set(args) - set(fields))
    if unknown:
        raise ModelError(f"unknown model argument(s) {', '.join(unknown)}; this model takes: "
                         f"{', '.join(fields) or '(none)'}")
    hints = typing.get_type_hints(config_cls)
    return config_cls(**{k: _convert(v, hints[k], k) for k, v in args.items()})


class BaseSegmenter:
    """Typed config, lazy ``load()``, context manager, input/output checks, clip backoff."""

    name: ClassVar[str] = ""
    version: ClassVar[str] = "1"
    upstream: ClassVar[str] = ""
    needs_gpu: ClassVar[bool] = False
    deterministic: ClassVar[bool] = True
    Config: ClassVar[type] = NoConfig
    packages: ClassVar[Tuple[str, ...]] = ()  # importable modules the model needs
    path_fields: ClassVar[Tuple[str, ...]] = ()  # config fields that must name existing files
    clip_lens: ClassVar[Tuple[int, ...]] = ()  # allowed clip lengths (empty: any)

    def __init__(self, **args: Any):
        self.config = parse_config(self.Config, args)
        self._loaded = False
        self._load_error: Optional[ModelLoadError] = None
        self._provenance: Dict[str, str] = {}

    # --- lifecycle ----------------------------------------------------------------------------
    def load(self) -> None:
        """Import and build the model (heavy); called once before the first prediction."""

    def ensure_loaded(self) -> None:
        """Load once. A failed load is not retried: the same :class:`ModelLoadError` is raised
        again until :meth:`close`."""
        if self._loaded:
            return
        if self._load_error is not None:
            raise self._load_error
        cwd = os.getcwd()  # wrappers may enter the upstream checkout
        try:
            self.load()
        except Exception as exc:
            name = self.name or type(self).__name__
            self._load_error = ModelLoadError(f"{name}: the model could not be loaded: "
                                              f"{type(exc).__name__}: {exc}")
            raise self._load_error from exc
        self._provenance = self.provenance(cwd)
        self._loaded = True

    def provenance(self, cwd: str = ".") -> Dict[str, str]:
        """What was really loaded: the upstream checkout's commit (config ``repo``, when it is
        a git work tree) and the sha256 of the ``checkpoint`` file (relative paths from
        ``cwd``). Warns when the checkout is not at the commit the wrapper was written for."""
        found = {"upstream_commit": "", "checkpoint_sha256": ""}
        repo = getattr(self.config, "repo", "")
        if repo:
            repo = os.path.join(cwd, repo)
            found["upstream_commit"] = git_head(repo)
            pinned = self.upstream.partition("@")[2]
            if found["upstream_commit"] and pinned and \
                    not found["upstream_commit"].startswith(pinned):
                warnings.warn(f"{repo} is at {found['upstream_commit'][:12]}; "
                              f"{self.name} was written against {self.upstream}")
        checkpoint = getattr(self.config, "checkpoint", "")
        if checkpoint and os.path.isfile(os.path.join(cwd, checkpoint)):
            found["checkpoint_sha256"] = file_sha256(os.path.join(cwd, checkpoint))
        return found

    def close(self) -> None:
        self._loaded = False
        self._load_error = None

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def info(self) -> SegmenterInfo:
        return SegmenterInfo(self.name or type(self).__name__, self.version, self.upstream,
                             dataclasses.asdict(self.config), self.needs_gpu, self.deterministic,
                             **self._provenance)

    # --- prediction ---------------------------------------------------------------------------
    def predict(self, frames: Sequence[np.ndarray], expression: str) -> np.ndarray:
        frames = list(frames)
        if not frames:
            raise ValueError("no frames to segment")
        size = frames[0].shape[:2]
        for index, frame in enumerate(frames):
            if frame.ndim != 3 or frame.shape[2] != 3 or frame.shape[:2] != size:
                raise ValueError(f"frame {index}: shape {frame.shape}, expected {(*size, 3)} "
                                 "(all frames H x W x 3 RGB, one size)")
        self.ensure_loaded()
        masks = self.segment(frames, expression)
        return check_masks(masks, len(frames), size, self.name or type(self).__name__)

    def segment(self, frames: List[np.ndarray], expression: str) -> np.ndarray:
        """The model itself: checked frames in, T x H x W masks out."""
        raise NotImplementedError

    # --- clips (out-of-memory backoff) ----------------------------------------------------------
    @property
    def clip_len(self) -> Optional[int]:
        return getattr(self.config, "clip_len", None)

    @clip_len.setter
    def clip_len(self, value: Optional[int]) -> None:
        self.config = dataclasses.replace(self.config, clip_len=value)

    def shorter_clip_len(self, n_frames: int) -> Optional[int]:
        """Switch to the next shorter clip length for a video of ``n_frames``; None if none."""
        if not hasattr(self.config, "clip_len"):
            return None
        shorter = shorter_clip_len(self.clip_len, n_frames, self.clip_lens)
        if shorter is not None:
            self.clip_len = shorter
        return shorter

    # --- requirements -------------------------------------------------------------------------
    def requirements(self) -> List[Requirement]:
        """What is present and what is missing to run this model (no model is loaded)."""
        out = []
        for key in self.path_fields:
            value = getattr(self.config, key, "")
            if not value:
                out.append(Requirement(f"{key} (model argument)", False, f"pass --model-arg {key}=PATH"))
            else:
                out.append(Requirement(f"{key} {value}", os.path.exists(value),
                                       "" if os.path.exists(value) else "not found"))
        for module in self.packages:
            found = _find_spec(module)
            out.append(Requirement(f"python package {module}", found,
                                   "" if found else "not importable in this environment"))
        if self.needs_gpu:
            out.append(gpu_requirement())
        return out


def git_head(folder: str) -> str:
    """The commit checked out in ``folder`` if it is the top of a git work tree, else ""."""
    if not os.path.exists(os.path.join(folder, ".git")):
        return ""
    try:
        done = subprocess.run(["git", "-C", folder, "rev-parse", "HEAD"], capture_output=True,
                              text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired):
        return ""
    return done.stdout.strip() if done.returncode == 0 else ""


def file_sha256(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _find_spec(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


def gpu_requirement() -> Requirement:
    """Whether torch sees a CUDA GPU."""
    if not _find_spec("torch"):
        return Requirement("CUDA GPU", False, "torch is not installed")
    import torch

    if torch.cuda.is_available():
        return Requirement("CUDA GPU", True, torch.cuda.get_device_name(0))
    return Requirement("CUDA GPU", False, "torch.cuda.is_available() is False")
