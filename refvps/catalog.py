"""What ``refvps benchmarks`` shows: every registered benchmark, its splits and its protocol."""
from __future__ import annotations

from pathlib import Path

from refvps.errors import RefvpsError


def benchmark_catalog(data: str | Path | None = None) -> list[dict]:
    """One record per registered benchmark; with a data root, videos and queries per split.

    A split's ``status`` is ``ok``, ``no data`` (nothing found for it under the root),
    ``error: ...`` (its metadata could not be read) or None when no data root was given.
    """
    from refvps.datapaths import resolve_benchmark_root
    from refvps.loaders import BENCHMARKS, benchmark_class

    records = []
    for name in BENCHMARKS:
        cls = benchmark_class(name)
        root = None
        if data is not None:
            try:
                root = resolve_benchmark_root(cls, data)
            except RefvpsError:
                root = None
        splits = []
        for split in cls.splits:
            entry = {"split": split, "default": split == cls.default_split,
                     "scoring": "server" if split in cls.server_splits else "local",
                     "videos": None, "queries": None, "status": None}
            if data is not None:
                entry.update(_count(cls, root, split))
            splits.append(entry)
        records.append({"benchmark": name, "title": cls.title, "folder": cls.folder,
                        "unit": cls.unit_name, "protocol": cls.protocol,
                        "reference": cls.reference, "missing_modes": list(cls.missing_modes),
                        "submit": cls.submission_root is not None and bool(cls.server_splits),
                        "root": None if root is None else str(root), "splits": splits})
    return records


def _count(cls, root: Path | None, split: str) -> dict:
    if root is None:
        return {"status": "no data"}
    try:
        bench = cls(root, split=split)
        queries = bench.queries()
        # an empty split is cheap to validate: tells a malformed file from an absent one
        problems = [] if queries else bench.validate()
    except (RefvpsError, OSError, ValueError, KeyError, TypeError) as exc:
        return {"status": f"error: {exc}"}
    broken = [p for p in problems if p.what != "file not found"]
    if broken:
        return {"status": f"error: {broken[0]}"}
    if not queries:
        return {"status": "no data", "videos": 0, "queries": 0}
    return {"status": "ok", "videos": len({q.video for q in queries}), "queries": len(queries)}
