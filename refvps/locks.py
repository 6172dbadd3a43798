"""Inter-process locks that name their holder and die with it.

A lock is an OS lock on an open lock file (``flock`` on POSIX, ``msvcrt.locking`` on Windows):
the kernel releases it when the holding process exits, however it exits, so a lock left by a
killed process is simply taken by the next one; nothing has to guess whether a holder is stale.
The holder writes its pid, host, command and start time into the file, so the process refused
learns who holds it. A holder may delete the lock file on release; whoever locked the deleted
file notices (it is no longer the file at that path) and locks the new one instead. (The
``filelock`` package locks the same way but cannot say who holds a lock, which is the message a
user needs.)
"""
from __future__ import annotations

import json
import os
import socket
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

from refvps.errors import RefvpsError

if os.name == "nt":  # pragma: no cover - exercised on Windows only
    import msvcrt

    def _try_lock(fd: int) -> bool:
        try:
            os.lseek(fd, 0, os.SEEK_SET)
            msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)
            return True
        except OSError:
            return False

    def _unlock(fd: int) -> None:
        os.lseek(fd, 0, os.SEEK_SET)
        msvcrt.locking(fd, msvcrt.LK_UNLCK, 1)
else:
    import fcntl

    def _try_lock(fd: int) -> bool:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return True
        except BlockingIOError:
            return False

    def _unlock(fd: int) -> None:
        fcntl.flock(fd, fcntl.LOCK_UN)


def _same_file(fd: int, path: Path) -> bool:
    try:
        on_disk = os.stat(path)
    except FileNotFoundError:
        return False
    held = os.fstat(fd)
    return (held.st_dev, held.st_ino) == (on_disk.st_dev, on_disk.st_ino)


class LockedError(RefvpsError):
    """Another process holds the lock; the message names it."""

    def __init__(self, message: str, holder: dict):
        super().__init__(message)
        self.holder = holder


def describe_holder(holder: dict) -> str:
    """``pid 123 on host, refvps eval ..., since <time>`` from a lock file's contents."""
    if not holder:
        return "another process (it has not written its name yet)"
    parts = [f"pid {holder.get('pid')}"]
    if holder.get("host") and holder.get("host") != socket.gethostname():
        parts[0] += f" on {holder['host']}"
    if holder.get("purpose"):
        parts.append(str(holder["purpose"]))
    if holder.get("since"):
        parts.append(f"since {holder['since']}")
    return ", ".join(parts)


class ProcessLock:
    """An exclusive lock on ``path`` for one process (a context manager).

    ``acquire(wait=0)`` refuses at once with :class:`LockedError` naming the holder; a positive
    ``wait`` polls that many seconds first.
    """

    def __init__(self, path: str | Path, purpose: str = ""):
        self.path = Path(path)
        self.purpose = purpose
        self._fd: int | None = None

    @property
    def held(self) -> bool:
        return self._fd is not None

    def read_holder(self) -> dict:
        try:
            data = json.loads(self.path.read_text(encoding="utf-8") or "{}")
        except (OSError, ValueError):
            return {}
        return data if isinstance(data, dict) else {}

    def acquire(self, wait: float = 0.0, what: str = "") -> "ProcessLock":
        if self._fd is not None:
            return self
        deadline = time.monotonic() + wait
        while True:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            try:
                fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            except FileNotFoundError:  # its folder was removed by a releasing holder: retry
                continue
            if _try_lock(fd):
                if _same_file(fd, self.path):
                    break
                os.close(fd)  # locked a file its holder deleted on release: lock the new one
                continue
            os.close(fd)
            if time.monotonic() >= deadline:
                holder = self.read_holder()
                raise LockedError(f"{what or self.path} is in use by {describe_holder(holder)} "
                                  f"(lock file {self.path})", holder)
            time.sleep(0.1)
        self._fd = fd
        record = {"pid": os.getpid(), "host": socket.gethostname(), "purpose": self.purpose,
                  "command": " ".join(sys.argv[:1] + sys.argv[1:8]),
                  "since": datetime.now(timezone.utc).isoformat(timespec="seconds")}
        data = json.dumps(record).encode()
        os.ftruncate(fd, 0)
        os.lseek(fd, 0, os.SEEK_SET)
        os.write(fd, data)
        return self

    def release(self, remove: bool = False) -> None:
        """Unlock; ``remove`` deletes the lock file first (while still holding it), which is
        safe because a process that then locks the deleted file sees so and retries."""
        if self._fd is None:
            return
        fd, self._fd = self._fd, None
        try:
            os.ftruncate(fd, 0)
            if remove and os.name != "nt":
                self.path.unlink(missing_ok=True)
            _unlock(fd)
        finally:
            os.close(fd)

    def __enter__(self) -> "ProcessLock":
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()
