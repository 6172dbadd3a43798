"""Prediction stores (a folder or a .zip with the same layout) and their presence check.

Layout (Ref-VPS, MeViS, Ref-YouTube-VOS): ``<root>/<video>/<query_id>/<frame>.png``; any
non-zero pixel is foreground. A store may wrap that layout in one extra top folder (for example
``Annotations/`` in a Ref-YouTube-VOS submission zip); it is detected and stripped.
"""
from __future__ import annotations

import os
import stat
import zipfile
import zlib
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Iterable

import numpy as np

from refvps.errors import InputFileError, MaskError, Problem, RefvpsError
from refvps.inputs import (MAX_MASK_BYTES, PngHeader, check_png, file_problem, read_bounded,
                           read_file, too_large)
from refvps.masks import binarize, read_mask_bytes
from refvps.pngdecode import decode_cv2_gray_foreground

READERS = ("pil", "cv2-gray")
"""How prediction PNGs are decoded: ``pil`` = palette indices / gray values (DAVIS reader),
``cv2-gray`` = ``cv2.imread(path, IMREAD_GRAYSCALE)`` (MeViS reader); foreground = non-zero."""

MACOS_METADATA_DIR = "__MACOSX/"
"""Folder of resource-fork entries that macOS's archiver adds to zips (ignored, counted)."""


class PredictionStore:
    """Read-only access to prediction masks by relative path, from a folder or a zip.

    Every file is checked for what it is before it is decoded (:mod:`refvps.inputs`). A path is
    *listed* when the store's listing holds it, as a file or as something that is not one (a
    directory, FIFO or broken link named like a frame): :meth:`read_bytes` returns None only
    for paths that are not listed, which the presence check reports; anything listed either
    reads or raises a :class:`~refvps.errors.MaskError` naming the file and the reason.
    """

    def __init__(self, path: str | Path, reader: str = "pil"):
        self.path = Path(path)
        if reader not in READERS:
            raise ValueError(f"unknown prediction reader {reader!r}; choose one of {READERS}")
        self.reader = reader
        self.strict_format = True  # cv2-gray: refuse what OpenCV's grayscale read would misread
        self.prefix = ""
        self._zip: zipfile.ZipFile | None = None
        self._zip_pid = 0
        self._files: set[str] | None = None
        self._others: dict[str, str] = {}      # listed entries that are not files -> reason
        self._unlisted: dict[str, str] = {}    # folders that could not be listed -> reason
        self._members: dict[str, zipfile.ZipInfo] = {}
        self._duplicates: dict[str, int] = {}
        self._ignored: list[str] = []
        self._backslashed: list[str] = []
        self._folders: set[str] | None = None
        self._layout_files: tuple[str, set[str]] | None = None
        if not self.path.exists():
            raise RefvpsError(f"predictions not found: {self.path}")
        self.is_zip = not self.path.is_dir()
        if self.is_zip:
            reason = file_problem(self.path)
            if reason:
                raise RefvpsError(f"{self.path}: {reason}; predictions must be a folder or a .zip")
            if self.path.suffix.lower() == ".json":
                raise RefvpsError(f"{self.path}: a JSON file; put it in a folder (or a .zip) and "
                                  "pass that as the predictions (e.g. A2D-Sentences results)")
            if not zipfile.is_zipfile(self.path):
                raise RefvpsError(f"{self.path}: not a folder and not a readable .zip archive")

    def __getstate__(self) -> dict:
        state = dict(self.__dict__)
        state["_zip"] = None  # reopened lazily in each worker process
        state["_folders"] = state["_layout_files"] = None
        if self.is_zip:  # members are re-read from the archive's central directory
            state["_files"], state["_members"], state["_duplicates"] = None, {}, {}
        # A folder's listing travels with the store: a worker reads exactly what the presence
        # check saw, so a file that vanishes in between is a problem, never a silent skip.
        return state

    # --- listing ----------------------------------------------------------------------------
    def _archive(self) -> zipfile.ZipFile:
        # A forked worker must not share the parent's handle (and its file offset).
        if self._zip is None or self._zip_pid != os.getpid():
            try:
                self._zip = zipfile.ZipFile(self.path)
            except (zipfile.BadZipFile, OSError) as exc:
                raise RefvpsError(f"{self.path}: unreadable .zip archive ({exc})") from None
            self._zip_pid = os.getpid()
        return self._zip

    def raw_files(self) -> set[str]:
        """Every file in the store as a POSIX path relative to its root (before prefixing)."""
        if self._files is None:
            self._files = self._list_zip() if self.is_zip else self._list_folder()
        return self._files

    def _list_zip(self) -> set[str]:
        files: set[str] = set()
        self._members, self._duplicates, self._ignored, self._backslashed = {}, {}, [], []
        for info in self._archive().infolist():
            name = info.filename
            if "\\" in name:
                self._backslashed.append(name)
                name = name.replace("\\", "/")
            if name.startswith(MACOS_METADATA_DIR) or PurePosixPath(name).name.startswith("._"):
                self._ignored.append(name)
                continue
            if name.endswith("/"):
                continue
            if name in self._members:
                self._duplicates[name] = self._duplicates.get(name, 1) + 1
            self._members[name] = info
            files.add(name)
        return files

    def _list_folder(self) -> set[str]:
        """Regular files (and links to them); other entries go to ``_others`` with the reason."""
        files: set[str] = set()
        self._others, self._unlisted = {}, {}
        pending = [("", str(self.path))]
        while pending:
            base, folder = pending.pop()
            try:
                entries = list(os.scandir(folder))
            except OSError as exc:
                self._unlisted[base.rstrip("/") or "."] = exc.strerror or str(exc)
                continue
            for entry in entries:
                rel = base + entry.name
                if entry.is_dir(follow_symlinks=False):
                    self._others[rel] = "is a directory, not a file"
                    pending.append((rel + "/", entry.path))
                elif entry.is_file(follow_symlinks=False):
                    files.add(rel)
                else:  # a symbolic link, FIFO, socket or device: classify without opening
                    reason = file_problem(entry.path)
                    if reason is None:
                        files.add(rel)
                    else:
                        self._others[rel] = reason
        return files

    def files(self) -> set[str]:
        """Files relative to the layout root (after stripping a detected wrapper folder)."""
        if not self.prefix:
            return self.raw_files()
        if self._layout_files is None or self._layout_files[0] != self.prefix:
            cut = len(self.prefix)
            self._layout_files = (self.prefix, {f[cut:] for f in self.raw_files()
                                                if f.startswith(self.prefix)})
        return self._layout_files[1]

    def listing_problems(self) -> list[Problem]:
        """Folders of the store that could not be listed (e.g. permission denied)."""
        self.raw_files()
        return [Problem(str(self.path / rel), f"folder cannot be listed ({reason})")
                for rel, reason in sorted(self._unlisted.items())]

    def listed(self, relpath: str) -> bool:
        """Whether ``relpath`` is in the listing (as a file or as an entry that is not one)."""
        name = self.prefix + relpath
        return name in self.raw_files() or name in self._others

    def notes(self) -> list[str]:
        """What the listing ignored or normalised (shown with the results)."""
        self.raw_files()
        notes = []
        if self._ignored:
            notes.append(f"{self.path}: ignored {len(self._ignored)} macOS metadata entr"
                         f"{'y' if len(self._ignored) == 1 else 'ies'} (__MACOSX/, ._*), e.g. "
                         f"{self._ignored[0]}")
        if self._backslashed:
            notes.append(f"{self.path}: {len(self._backslashed)} member name(s) use backslashes "
                         f"as folder separators (written on Windows); read as '/', e.g. "
                         f"{self._backslashed[0]}")
        return notes

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
            self.raw_files()
            members = [i.filename.replace("\\", "/") for i in self._archive().infolist()]
            self._folders = {"/".join(parts[:depth])
                             for member in members
                             for parts in [member.rstrip("/").split("/")]
                             for depth in range(1, len(parts) + (member.endswith("/")))}
        return name in self._folders

    def describe(self, relpath: str) -> str:
        """A path a user can find: the file, or ``archive.zip:member``."""
        if self.is_zip:
            info = self._members.get(self.prefix + relpath)
            return f"{self.path}:{info.filename if info else self.prefix + relpath}"
        return str(self.path / (self.prefix + relpath))

    # --- reading ----------------------------------------------------------------------------
    def read_bytes(self, relpath: str, limit: int = MAX_MASK_BYTES) -> bytes | None:
        """The bytes at ``relpath``; None when it is not listed (the presence check reports it).

        A listed path that cannot be read raises :class:`~refvps.errors.MaskError`: a scored
        frame is never dropped silently.
        """
        if not self.listed(relpath):
            return None
        where = self.describe(relpath)
        name = self.prefix + relpath
        if self.is_zip:
            return self._read_member(name, where, limit)
        reason = self._others.get(name)
        if reason is not None and reason.startswith("is a FIFO"):
            raise InputFileError(where, reason)  # never opened, even non-blocking
        try:
            return read_file(self.path / name, where, limit)
        except InputFileError as exc:
            if exc.what == "file not found":
                raise InputFileError(where, "disappeared between the listing and the read "
                                            "(changed while refvps was running?)") from None
            raise

    def _read_member(self, name: str, where: str, limit: int) -> bytes:
        info = self._members[name]
        if self._duplicates.get(name):
            raise InputFileError(where, f"appears {self._duplicates[name]} times in the archive; "
                                        "which one is meant is ambiguous")
        if info.flag_bits & 0x1:
            raise InputFileError(where, "is encrypted; refvps reads unencrypted archives only")
        if stat.S_ISLNK(info.external_attr >> 16):
            raise InputFileError(where, "is a symbolic link stored in the archive, not a file")
        if info.file_size > limit:
            raise InputFileError(where, too_large(info.file_size, limit))
        try:
            with self._archive().open(info) as handle:
                return read_bounded(handle, where, limit)
        except zipfile.BadZipFile as exc:  # e.g. "Bad CRC-32": the member is damaged
            raise InputFileError(where, f"damaged archive member ({exc})") from None
        except (zlib.error, EOFError, OSError) as exc:
            raise InputFileError(where, f"damaged archive member ({exc.__class__.__name__}: "
                                        f"{exc})") from None
        except (NotImplementedError, RuntimeError) as exc:
            raise InputFileError(where, f"cannot be extracted ({exc})") from None

    def read_binary(self, relpath: str) -> np.ndarray | None:
        """The foreground mask at ``relpath`` (bool H x W), or None when it is not listed."""
        data = self.read_bytes(relpath)
        if data is None:
            return None
        return self.decode_binary(data, self.describe(relpath))

    def decode_binary(self, data: bytes, where: str) -> np.ndarray:
        """The foreground of the PNG ``data`` (bool H x W) with this store's reader."""
        if self.reader == "cv2-gray":
            if self.strict_format:
                _check_gray_readable(check_png(data, where), where)
            return _decode_cv2_gray(data, where)
        return binarize(read_mask_bytes(data, where))


def _check_gray_readable(header: PngHeader, where: str) -> None:
    """Refuse PNGs that OpenCV's 8-bit grayscale read would silently turn into other masks."""
    if header.color_type in (2, 4, 6):
        raise MaskError(where, f"is a {header.color} PNG; predictions must be single-channel "
                               "(grayscale 'L' or palette 'P'): OpenCV's grayscale conversion can "
                               "turn a dark foreground into background")
    if header.bit_depth == 16:
        raise MaskError(where, "is a 16-bit PNG; predictions must be 8-bit: OpenCV's 8-bit "
                               "grayscale read keeps only the high byte of each value")


def _decode_cv2_gray(data: bytes, where: str) -> np.ndarray:
    fast = decode_cv2_gray_foreground(data)  # None: not a plain greyscale PNG, OpenCV decides
    if fast is not None:
        return fast
    import cv2  # only here: a scoring process that never falls back never loads OpenCV

    try:
        image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_GRAYSCALE) if data else None
    except cv2.error as exc:
        raise MaskError(where, f"unreadable image (OpenCV: {exc.err or exc})") from None
    if image is None:
        raise MaskError(where, "unreadable image (OpenCV could not decode it)")
    return image != 0


@dataclass
class Presence:
    """Result of :func:`check_presence`."""

    missing: list[str]               # required relative paths that are absent
    missing_problems: list[Problem]  # the same, grouped by folder
    unknown_problems: list[Problem]  # unlistable folders, folders matching nothing in the dataset


def _folders_of(relpaths: Iterable[str]) -> set[str]:
    """Every folder above the given relative POSIX paths ("a/b/c.png": "a" and "a/b")."""
    folders: set[str] = set()
    for parent in {relpath.rpartition("/")[0] for relpath in relpaths} - {""}:
        parts = parent.split("/")
        folders.update("/".join(parts[:depth]) for depth in range(1, len(parts) + 1))
    return folders


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
    missing = [r for r in required if r not in files and not store.listed(r)]
    expected_dirs = _folders_of([*required, *tolerated])
    present_dirs = _folders_of(files)
    missing_problems: list[Problem] = []
    by_dir: dict[str, list[str]] = defaultdict(list)
    for relpath in missing:
        parts = relpath.split("/")
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
            names = [PurePosixPath(p).stem for p in sorted(paths)[:8]]
            shown = ", ".join(names) + (", ..." if len(paths) > 8 else "")
            missing_problems.append(Problem(store.describe(anchor),
                                            f"missing {len(paths)} required frame(s): {shown}"))
    unknown_problems = []
    for folder in sorted(present_dirs - expected_dirs):
        parent = folder.rpartition("/")[0] or "."
        if folder.count("/") < unknown_depth and (parent == "." or parent in expected_dirs):
            unknown_problems.append(Problem(store.describe(folder),
                                            "unknown folder (no such video / query in the dataset)"))
    return Presence(missing, missing_problems, store.listing_problems() + unknown_problems)
