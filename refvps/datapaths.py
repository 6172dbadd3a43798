"""Where datasets and user files live: ``--data``, else ``REFVPS_DATA``, else a per-user default."""
from __future__ import annotations

import os
from pathlib import Path

from refvps.errors import DataNotFoundError

DATA_ENV = "REFVPS_DATA"


def user_data_dir() -> Path:
    """The per-user data directory (``$XDG_DATA_HOME/refvps`` or ``~/.local/share/refvps``)."""
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "refvps"


def default_data_root() -> Path:
    return user_data_dir() / "data"


def data_root(data: str | Path | None = None) -> tuple[Path, str]:
    """The dataset root and where it came from ("--data", "REFVPS_DATA" or "default")."""
    if data:
        return Path(data).expanduser(), "--data"
    if os.environ.get(DATA_ENV):
        return Path(os.environ[DATA_ENV]).expanduser(), DATA_ENV
    return default_data_root(), "default"


def resolve_benchmark_root(cls, data: str | Path | None = None) -> Path:
    """The folder of benchmark ``cls``: ``<root>/<cls.folder>``, or the root itself if it is one."""
    root, origin = data_root(data)
    candidates = [root / cls.folder, root]
    if candidates[0].is_dir():
        return candidates[0]
    if root.is_dir() and cls.looks_like(root):
        return root
    looked = "\n".join(f"  - {c}{'' if c.exists() else ' (does not exist)'}" for c in candidates)
    raise DataNotFoundError(
        f"no {cls.title} data found (data root from {origin}: {root}).\nLooked in:\n{looked}\n"
        f"Fix: pass --data DIR, or set {DATA_ENV}=DIR, where DIR holds a '{cls.folder}/' folder "
        f"(or is that folder itself); the default root is {default_data_root()}.\n"
        f"Try it on the built-in sample: refvps sample DIR && refvps eval --data DIR "
        f"--preds DIR/predictions/perfect")
