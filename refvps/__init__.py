"""refvps: exact, fast evaluation for referring video (process) segmentation.

The public API is imported lazily so that ``import refvps`` stays cheap::

    import refvps
    result = refvps.evaluate("preds/", benchmark="ref-vps", data="~/datasets")
    print(result.metrics["J"])
"""
from __future__ import annotations

__version__ = "0.1.0"

_LAZY = {
    "evaluate": ("refvps.evaluation", "evaluate"),
    "EvalResult": ("refvps.evaluation", "EvalResult"),
    "load_benchmark": ("refvps.loaders", "load_benchmark"),
    "BENCHMARKS": ("refvps.loaders", "BENCHMARKS"),
    "PredictionStore": ("refvps.predictions", "PredictionStore"),
    "make_sample": ("refvps.sample", "make_sample"),
    "ValidationError": ("refvps.errors", "ValidationError"),
}


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        module, attr = _LAZY[name]
        return getattr(importlib.import_module(module), attr)
    raise AttributeError(f"module 'refvps' has no attribute {name!r}")


__all__ = ["__version__", *_LAZY]
