"""Prediction stores (a folder or a .zip with the same layout) and their presence check.

Layout (Ref-VPS, MeViS, Ref-YouTube-VOS): ``<root>/<video>/<query_id>/<frame>.png``; any
non-zero pixel is foreground. A store may wrap that layout in one extra top folder (for example
``Annotations/`` in a Ref-YouTube-VOS submission zip); it is detected and stripped.
"""
from __future__ import annotations

import os
import zipfile
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Iterable

import numpy as np

from refvps.errors import MaskError, Problem, RefvpsError
from refvps.masks import binarize, read_mask_bytes
from refvps.pngdecode import decode_cv2_gray_foreground

READERS = ("pil", "cv2-gray")
"""How prediction PNGs are decoded: ``pil`` = palette indices / gray values (DAVIS reader),
``cv2-gray`` = ``cv2.imread(path, IMREAD_GRAYSCALE)`` (MeViS reader); foreground = non-zero."""


class PredictionStore:
    """Read-only access to prediction masks by relative path, from a folder or a zip."""

    def __init__(self, path: str | Path, reader: str = "pil"):
        self.path = Path(path)
        if reader not in READERS:
            raise ValueError(f"unknown prediction reader {reader!r}; choose one of {READERS}")
        self.reader = reader
        self.prefix = ""
        self._zip: zipfile.ZipFile | None = None
        self._zip_pid = 0
        self._files: set[str] | None = None
        self._folders: set[str] | None = None
        if not self.path.exists():
            raise RefvpsError(f"predictions not found: {self.path}")
        self.is_zip = self.path.is_file()
        if self.is_zip and not zipfile.is_zipfile(self.path):
            raise RefvpsError(f"{self.path}: not a folder and not a readable .zip archive")

    def __getstate__(self) -> dict:
        state = dict(self.__dict__)
        state["_zip"] = None  # reopened lazily in each worker process
        state["_files"] = None
        state["_folders"] = None
        return state

    # --- listing ----------------------------------------------------------------------------
    def _archive(self) -> zipfile.ZipFile:
        # A forked worker must not share the parent's handle (and its file offset).
        if self._zip is None or self._zip_pid != os.getpid():
            self._zip = zipfile.ZipFile(self.path)
            self._zip_pid = os.getpid()
        return self._zip

    def raw_files(self) -> set[str]:
        """Every file in the store as a POSIX path relative to its root (before prefixing)."""
        if self._files is None:
            if self.is_zip:
                self._files = {n for n in self._archive().namelist() if not n.endswith("/")}
            else:
                files = set()
                root = str(self.path)
                for folder, _dirs, names in os.walk(root):
                    rel = os.path.relpath(folder, root)
                    base = "" if rel == "." else rel.replace(os.sep, "/") + "/"
                    files.update(base + n for n in names)
                self._files = files
        return self._files

    def files(self) -> set[str]:
        """Files relative to the layout root (after stripping a detected wrapper folder)."""
        if not self.prefix:
            return self.raw_files()
        cut = len(self.prefix)
        return {f[cut:] for f in self.raw_files() if f.startswith(self.prefix)}

    def adapt_prefix(self, required: Iterable[str]) -> None:
        """Strip a single wrapper folder when the layout sits one level down."""
        required = list(required)
        files = self.raw_files()
        if not required or any(r in files for r in required[:200]):
            return
        tops = {f.split("/", 1)[0] for f in files if "/" in f}
        if len(tops) == 1:
            prefix = next(iter(tops)) + "/"
            if any(prefix + r in files for r in required[:200]):
                self.prefix = prefix

    def has_folder(self, relpath: str) -> bool:
        """Whether folder ``relpath`` exists in the layout (an empty folder counts)."""
        name = self.prefix + relpath.rstrip("/")
        if not self.is_zip:
            return (self.path / name).is_dir()
        if self._folders is None:
            self._folders = {"/".join(parts[:depth])
                             for member in self._archive().namelist()
                             for parts in [member.rstrip("/").split("/")]
                             for depth in range(1, len(parts) + (member.endswith("/")))}
        return name in self._folders

    def describe(self, relpath: str) -> str:
        """A path a user can find: the file, or ``archive.zip:member``."""
        if self.is_zip:
            return f"{self.path}:{self.prefix}{relpath}"
        return str(self.path / (self.prefix + relpath))

    # --- reading ----------------------------------------------------------------------------
    def read_bytes(self, relpath: str) -> bytes | None:
        name = self.prefix + relpath
        if self.is_zip:
            try:
                return self._archive().read(name)
            except KeyError:
                return None
        try:
            return (self.path / name).read_bytes()
        except FileNotFoundError:
            return None

    def read_binary(self, relpath: str) -> np.ndarray | None:
        """The foreground mask at ``relpath`` (bool H x W), or None when the file is absent."""
        data = self.read_bytes(relpath)
        if data is None:
            return None
        return self.decode_binary(data, self.describe(relpath))

    def decode_binary(self, data: bytes, where: str) -> np.ndarray:
        """The foreground of the PNG ``data`` (bool H x W) with this store's reader."""
        if self.reader == "cv2-gray":
            return _decode_cv2_gray(data, where)
        return binarize(read_mask_bytes(data, where))


def _decode_cv2_gray(data: bytes, where: str) -> np.ndarray:
    import cv2

    fast = decode_cv2_gray_foreground(data)  # None: not a plain greyscale PNG, OpenCV decides
    if fast is not None:
        return fast

    image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_GRAYSCALE)
    if image is None:
        raise MaskError(where, "unreadable image (OpenCV could not decode it)")
    return image != 0


@dataclass
class Presence:
    """Result of :func:`check_presence`."""

    missing: list[str]               # required relative paths that are absent
    missing_problems: list[Problem]  # the same, grouped by folder
    unknown_problems: list[Problem]  # folders that match nothing in the dataset


def check_presence(store: PredictionStore, required: list[str],
                   unknown_depth: int = 2, tolerated: Iterable[str] = ()) -> Presence:
    """Missing required files and unknown folders, grouped into readable problems.

    A folder at most ``unknown_depth`` levels down is *unknown* when it sits beside the folders
    the layout expects (its parent is an expected folder or the root) but is not one of them,
    e.g. a prediction folder for a video or an expression that is not in the dataset. The
    folders of ``tolerated`` paths (files that may be present but are not scored) are not unknown.
    """
    store.adapt_prefix(required)
    files = store.files()
    missing = [r for r in required if r not in files]
    expected_dirs: set[str] = set()
    for relpath in [*required, *tolerated]:
        parts = PurePosixPath(relpath).parts[:-1]
        for depth in range(1, len(parts) + 1):
            expected_dirs.add("/".join(parts[:depth]))
    present_dirs = set()
    for relpath in files:
        parts = PurePosixPath(relpath).parts[:-1]
        for depth in range(1, len(parts) + 1):
            present_dirs.add("/".join(parts[:depth]))
    missing_problems: list[Problem] = []
    by_dir: dict[str, list[str]] = defaultdict(list)
    for relpath in missing:
        parts = PurePosixPath(relpath).parts
        anchor = "/".join(parts[:-1])
        for depth in range(1, len(parts)):
            prefix = "/".join(parts[:depth])
            if prefix not in present_dirs:
                anchor = prefix
                break
        by_dir[anchor].append(relpath)
    for anchor, paths in sorted(by_dir.items()):
        if anchor not in present_dirs:
            missing_problems.append(Problem(store.describe(anchor),
                                            f"folder missing ({len(paths)} required frame(s))"))
        else:
            names = [PurePosixPath(p).stem for p in sorted(paths)]
            shown = ", ".join(names[:8]) + (", ..." if len(names) > 8 else "")
            missing_problems.append(Problem(store.describe(anchor),
                                            f"missing {len(names)} required frame(s): {shown}"))
    unknown_problems = []
    for folder in sorted(present_dirs - expected_dirs):
        parent = str(PurePosixPath(folder).parent)
        if folder.count("/") < unknown_depth and (parent == "." or parent in expected_dirs):
            unknown_problems.append(Problem(store.describe(folder),
                                            "unknown folder (no such video / query in the dataset)"))
    return Presence(missing, missing_problems, unknown_problems)
