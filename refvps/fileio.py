"""Atomic writes of files and of whole output folders, and JSON-safe values: a reader never
sees a half-written file, nor a folder mixing two runs."""
from __future__ import annotations

import errno
import math
import os
import secrets
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any, BinaryIO, Callable

from refvps.errors import RefvpsError


def atomic_write(path: str | Path, write: Callable[[BinaryIO], None]) -> None:
    """Call ``write`` on a temporary file beside ``path``, then rename it over ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            write(handle)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def atomic_write_text(path: str | Path, text: str) -> None:
    atomic_write(path, lambda handle: handle.write(text.encode("utf-8")))


def jsonable(value: Any) -> Any:
    """``value`` with NaN as None, numpy scalars as Python numbers and keys as strings."""
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if isinstance(value, float) and math.isnan(value):
        return None
    if hasattr(value, "item"):
        return jsonable(value.item())
    return value


class OutputError(RefvpsError):
    """An output folder that cannot be written (under a file, read-only, holds foreign files)."""


def exchange_paths(a: Path, b: Path) -> bool:
    """Swap two paths in one atomic step (Linux ``renameat2(RENAME_EXCHANGE)``); False where the
    system or the filesystem cannot."""
    if not sys.platform.startswith("linux"):
        return False
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    renameat2 = getattr(libc, "renameat2", None)
    if renameat2 is None:
        return False
    at_fdcwd, rename_exchange = -100, 2
    result = renameat2(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), rename_exchange)
    if result == 0:
        return True
    error = ctypes.get_errno()
    if error in (errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP, errno.EPERM):
        return False
    raise OSError(error, os.strerror(error), str(a), None, str(b))


def _fsync_tree(root: Path) -> None:
    """Flush a staged folder's files and the folder to disk before it is renamed into place."""
    for path in root.iterdir():
        if path.is_file():
            with open(path, "rb") as handle:
                os.fsync(handle.fileno())
    _fsync_dir(root)


def _fsync_dir(path: Path) -> None:
    if os.name == "nt":
        return
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class OutputFolder:
    """A folder of outputs written as one set: all of the new files, or the previous folder.

    ``open()`` (before any long work) checks that the folder can be written and takes the lock;
    the files are then written into ``staging`` and ``commit()`` puts them in place with one
    rename. The lock, the staging folder and the folder being replaced live in a hidden sibling
    ``.<name>.refvps/``, so nothing half-written ever appears in the folder itself:

    - a new folder: ``rename(staging, folder)``;
    - replacing one: on Linux one ``renameat2(RENAME_EXCHANGE)`` swaps them (no instant without
      a folder); elsewhere ``rename(folder, old)`` then ``rename(staging, folder)``, so for the
      instant between the two renames the folder is absent (an interrupted writer puts ``old``
      back as it closes; after a kill exactly there, the next writer does).

    A killed writer leaves its staging folder in the sibling; the next writer of the same folder
    removes it. After a commit the sibling is removed. Only a folder that is empty or holds
    exactly the files of an earlier set (``owned`` decides) is replaced; anything else is refused,
    so no file refvps did not write is ever deleted.
    """

    def __init__(self, path: str | Path, what: str = "--out",
                 owned: Callable[[Path], list[str]] | None = None, lock_wait: float = 0.0):
        self.path = Path(os.path.abspath(Path(path).expanduser()))
        if self.path.is_symlink():
            self.path = self.path.resolve()
        self.what = what
        self.owned = owned
        self.lock_wait = lock_wait
        self.side = self.path.with_name(f".{self.path.name}.refvps")
        self.staging: Path | None = None
        self._lock = None
        self._created: list[Path] = []  # parent folders open() made, removed if nothing lands
        self._committed = False

    # --- checks ---------------------------------------------------------------------------
    def _refuse(self, why: str) -> OutputError:
        return OutputError(f"{self.what} {self.path}: {why}")

    def check(self) -> None:
        """Raise :class:`OutputError` unless the folder can be (re)written as a whole."""
        for ancestor in [self.path, *self.path.parents]:
            if ancestor.exists() or ancestor.is_symlink():
                if not ancestor.is_dir():
                    where = "it" if ancestor == self.path else str(ancestor)
                    raise self._refuse(f"{where} is a file, not a folder")
        if self.path.is_dir():
            entries = sorted(p.name for p in self.path.iterdir())
            foreign = entries if self.owned is None else self.owned(self.path)
            if entries and foreign:
                shown = ", ".join(foreign[:5]) + (" ..." if len(foreign) > 5 else "")
                raise self._refuse(f"already holds files refvps did not write there ({shown}); "
                                   "it would replace the folder, so choose a new or empty one")

    def open(self) -> "OutputFolder":
        """Check, lock, tidy what a killed writer left, and create an empty staging folder."""
        from refvps.locks import ProcessLock

        if self.staging is not None:
            return self
        self.check()
        self._created = [p for p in self.path.parents if not p.exists()][::-1]
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._lock = ProcessLock(self.side / "lock", purpose=f"writing {self.path}")
            self._lock.acquire(wait=self.lock_wait, what=f"{self.what} {self.path}")
        except OSError as exc:
            raise self._refuse(f"cannot write there ({exc.strerror or exc})") from None
        try:
            self._recover()
            self.staging = self.side / f"stage-{os.getpid()}-{secrets.token_hex(4)}"
            self.staging.mkdir()
        except OSError as exc:
            self.close()
            raise self._refuse(f"cannot write there ({exc.strerror or exc})") from None
        except BaseException:
            self.close()
            raise
        return self

    def _put_back(self) -> None:
        """If the folder was moved aside and its replacement never arrived, move it back."""
        olds = sorted(self.side.glob("old-*"), key=lambda p: p.stat().st_mtime)
        if olds and not self.path.exists():
            olds.pop().rename(self.path)

    def _recover(self) -> None:
        """Undo what a writer killed mid-commit left: put a moved-aside folder back, drop the
        rest (all under the lock, so no writer is still using them)."""
        self._put_back()
        for leftover in self.side.iterdir():
            if leftover.is_dir():
                shutil.rmtree(leftover)
            elif leftover.name != "lock":
                leftover.unlink()

    # --- writing --------------------------------------------------------------------------
    def commit(self) -> None:
        """Put the staged files in place as one set."""
        from refvps.faults import checkpoint

        if self.staging is None:
            raise RuntimeError("OutputFolder.commit() before open()")
        _fsync_tree(self.staging)
        checkpoint("output.staged")
        self.check()  # nobody else may have written foreign files there meanwhile
        if not self.path.exists():
            self.staging.rename(self.path)
            checkpoint("output.renamed")
        elif exchange_paths(self.staging, self.path):
            checkpoint("output.exchanged")
            shutil.rmtree(self.staging)
        else:
            old = self.side / f"old-{os.getpid()}-{secrets.token_hex(4)}"
            self.path.rename(old)
            checkpoint("output.moved-aside")
            self.staging.rename(self.path)
            checkpoint("output.renamed")
            shutil.rmtree(old)
        _fsync_dir(self.path.parent)
        self.staging = None
        self._committed = True
        checkpoint("output.committed")

    def close(self) -> None:
        """Drop an uncommitted staging folder and release the lock (and the sibling, if empty)."""
        if self.staging is not None:
            shutil.rmtree(self.staging, ignore_errors=True)
            self.staging = None
        if self._lock is not None and self._lock.held:
            self._put_back()
            self._lock.release(remove=True)
            try:
                self.side.rmdir()
            except OSError:
                pass  # another writer is already waiting in it
        if not self._committed:
            for folder in reversed(self._created):
                try:
                    folder.rmdir()
                except OSError:
                    break  # not empty: someone else writes there too
        self._lock = None

    def __enter__(self) -> "OutputFolder":
        return self.open()

    def __exit__(self, *exc) -> None:
        self.close()
