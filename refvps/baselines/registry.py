"""Find segmenters by name: the ``refvps.segmenters`` entry-point group, or ``module:Class``.

Nothing heavy is imported here; a model's module is imported only by :func:`segmenter_class`.
"""
from __future__ import annotations

import importlib
from dataclasses import dataclass
from importlib.metadata import entry_points

from refvps.errors import ModelError

GROUP = "refvps.segmenters"

BUILTIN: dict[str, str] = {
    "empty": "refvps.baselines.reference:EmptySegmenter",
    "full-frame": "refvps.baselines.reference:FullFrameSegmenter",
    "center-box": "refvps.baselines.reference:CenterBoxSegmenter",
    "oracle": "refvps.baselines.reference:OracleSegmenter",
    "noisy-oracle": "refvps.baselines.reference:NoisyOracleSegmenter",
    "saliency-flow": "refvps.baselines.classical:SaliencyFlowSegmenter",
    "rem-ms": "refvps.baselines.models.rem:REMModelScope",
    "rem-wan": "refvps.baselines.models.rem:REMWan",
    "vd-it": "refvps.baselines.models.vdit:VDIT",
    "uniref-r50": "refvps.baselines.models.uniref:UniRefR50",
    "uniref-swinl": "refvps.baselines.models.uniref:UniRefSwinL",
    "sola": "refvps.baselines.models.sola:SOLA",
}
"""refvps's own segmenters; pyproject.toml declares the same table as entry points (a test keeps
them equal). It is consulted too so that a source checkout works without reinstalling."""


@dataclass(frozen=True)
class Registered:
    name: str
    target: str  # "module:Class"
    origin: str  # "refvps" or the distribution that declares the entry point


def registered() -> dict[str, Registered]:
    """Every known segmenter name, refvps's first; a name declared twice differently is an error."""
    found = {name: Registered(name, target, "refvps") for name, target in BUILTIN.items()}
    for ep in entry_points(group=GROUP):
        dist = getattr(getattr(ep, "dist", None), "name", None) or "?"
        current = found.get(ep.name)
        if current is not None and current.target != ep.value:
            raise RuntimeError(f"segmenter name {ep.name!r} is declared twice: {current.target} "
                               f"({current.origin}) and {ep.value} ({dist})")
        if current is None:
            found[ep.name] = Registered(ep.name, ep.value, dist)
    return found


def segmenter_class(name: str) -> type:
    """The class registered as ``name``, or the class ``name`` = ``"package.module:Class"``."""
    if ":" in name:
        target = name
    else:
        known = registered()
        if name not in known:
            raise ModelError(f"unknown model {name!r}; registered: {', '.join(sorted(known))} "
                             "(or pass module:Class)")
        target = known[name].target
    module, _, attr = target.partition(":")
    try:
        cls = getattr(importlib.import_module(module), attr)
    except (ImportError, AttributeError) as exc:
        raise ModelError(f"cannot load model {name!r} from {target}: {exc}") from None
    if not getattr(cls, "name", ""):
        cls.name = name
    return cls


def create(name: str, **args):
    """A segmenter instance (not loaded yet): ``create("center-box", frac=0.5)``."""
    return segmenter_class(name)(**args)
