"""Benchmark registry: one module per benchmark, imported only when that benchmark is used."""
from __future__ import annotations

import importlib
from pathlib import Path

_BASE_NAMES = ("Benchmark", "GroundTruth", "Query", "TaskResult", "VideoTask")

BENCHMARKS: dict[str, str] = {
    "ref-vps": "refvps.loaders.refvps:RefVPS",
    "mevis": "refvps.loaders.mevis:MeViS",
    "ref-davis": "refvps.loaders.refdavis:RefDavis",
    "ref-ytvos": "refvps.loaders.refytvos:RefYouTubeVOS",
    "burst": "refvps.loaders.burst:Burst",
    "vspw": "refvps.loaders.vspw:VSPW",
    "vspw-semantic": "refvps.loaders.vspw_semantic:VSPWSemantic",
    "davis17": "refvps.loaders.davis17:Davis17",
    "a2d-sentences": "refvps.loaders.actor_sentences:A2DSentences",
    "jhmdb-sentences": "refvps.loaders.actor_sentences:JHMDBSentences",
}
"""Command-line name -> ``module:Class`` of every benchmark, in display order."""


def __getattr__(name: str):
    """The base classes, imported on first use (the command line only needs the names)."""
    if name in _BASE_NAMES:
        return getattr(importlib.import_module("refvps.loaders.base"), name)
    raise AttributeError(f"module 'refvps.loaders' has no attribute {name!r}")


def benchmark_class(name: str) -> type[Benchmark]:
    """The :class:`Benchmark` subclass registered under ``name``."""
    try:
        target = BENCHMARKS[name]
    except KeyError:
        raise ValueError(f"unknown benchmark {name!r}; choose one of "
                         f"{', '.join(BENCHMARKS)}") from None
    module, _, cls = target.partition(":")
    return getattr(importlib.import_module(module), cls)


def load_benchmark(name: str = "ref-vps", data: str | Path | None = None,
                   split: str | None = None, **options) -> Benchmark:
    """Open benchmark ``name`` under the data root (``--data``, ``REFVPS_DATA`` or the default)."""
    from refvps.datapaths import resolve_benchmark_root

    cls = benchmark_class(name)
    return cls(resolve_benchmark_root(cls, data), split=split, **options)


__all__ = ["BENCHMARKS", "Benchmark", "GroundTruth", "Query", "TaskResult", "VideoTask",
           "benchmark_class", "load_benchmark"]
