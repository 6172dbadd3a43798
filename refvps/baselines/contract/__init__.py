"""Upstream contract runs: each model family's wrapper run against the real upstream code.

``scripts/upstream-check --upstream DIR`` (:mod:`refvps.baselines.contract.check`) builds an
isolated environment per model from the package registries, writes a tiny random-weight
checkpoint in the upstream's own format, and runs ``refvps predict`` on one clip of the sample
benchmark through the upstream checkout ``DIR/<repo_folder>``. Each family says how, in a module
of this package that defines ``SPEC = ContractSpec(...)``; modules are found by
:func:`specs` (no list to edit). A family module must import nothing heavy at module level: it
is imported by the host process too, which may have no torch.

Filling in a family (``refvps/baselines/contract/<family>.py``)::

    from refvps.baselines.contract import ContractSpec

    def write_checkpoint(model, repo, folder):
        import torch                       # runs inside the model's environment
        ...                                # build the upstream model with a shrunk config,
        torch.save(state, folder / "tiny.pth")
        return {"checkpoint": str(folder / "tiny.pth"), "device": "cpu"}

    SPEC = ContractSpec(family="sola", models=("sola",), repo_folder="SOLA",
                        commit="4b0adf8", envs={"sola": "sola.txt"}, needs_cuda=False,
                        write_checkpoint=write_checkpoint)

The fields:

``models``
    Registry names (``refvps models``) the family covers.
``repo_folder``
    The checkout's folder name under ``--upstream DIR``, as GitHub names the repository
    (``ReferEverything``, ``VD-IT``, ``UniRef``, ``SOLA``).
``commit``
    The pinned upstream commit (a prefix is fine; the wrapper's ``upstream`` attribute must
    end with ``@<commit>``). When the checkout is a git work tree the harness refuses one at
    another commit and checks ``run.json``'s ``upstream_commit``; a plain folder is trusted.
``envs``
    Model -> requirements file name in ``refvps/baselines/envs/`` (package data; models sharing
    a file share one environment). ``pip install -r`` of that file must resolve on the
    registry; ``#`` comments explain each pin. Lines starting ``# refvps-install:`` are extra
    pip commands run after the ``-r`` install, in order (e.g.
    ``# refvps-install: --no-deps sam2==1.1.0``); use them for packages whose declared
    dependencies must not be followed. :func:`requirements_text` returns the file's text
    (for ``refvps models env NAME`` and the docs).
``needs_cuda``
    True when the upstream code needs CUDA kernels: without a GPU the harness reports
    ``skipped`` with reason ``needs CUDA`` and builds nothing.
``write_checkpoint(model, repo, folder) -> dict[str, str]``
    Runs inside the model's environment (``python -m refvps.baselines.contract.tiny``), with
    ``repo`` (a ``Path`` to the checkout) importable the way the wrapper imports it (the
    function may call :func:`refvps.baselines.models.common.enter_upstream`). It writes a
    random-weight checkpoint *in the upstream's own format* (and any base-model folders,
    tokenizers, configs) under ``folder`` (a ``Path``), shrunk so one query on the contract
    clip (29 frames of 96 x 160) takes seconds to minutes on 2 CPU cores, seeded, and with no
    download (``HF_HUB_OFFLINE=1`` is set). It returns the ``--model-arg`` values for
    ``refvps predict`` (strings; ``repo`` is added by the harness, and ``device=cpu`` unless
    the function sets ``device``). The harness records the sha256 of the file named by the
    ``checkpoint`` argument and checks that ``run.json`` reports the same.
``timeout_s``
    Limit for one model's predict run (default 1800).

:func:`spec_for` maps a registry name to its family spec.
"""
from __future__ import annotations

import importlib
import pkgutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Dict, Mapping, Tuple

ENVS_DIR = Path(__file__).resolve().parent.parent / "envs"
"""Requirements files of the model environments (package data)."""

HARNESS_MODULES = frozenset({"check", "tiny", "venvs", "outputs"})
"""Modules of this package that are the harness, not families."""


@dataclass(frozen=True)
class ContractSpec:
    """How to run one model family's wrappers against its upstream code (see the module doc)."""

    family: str
    models: Tuple[str, ...]
    repo_folder: str
    commit: str
    envs: Mapping[str, str]
    needs_cuda: bool
    write_checkpoint: Callable[[str, Path, Path], Dict[str, str]]
    timeout_s: float = 1800.0
    notes: str = field(default="", compare=False)

    def env_file(self, model: str) -> Path:
        return ENVS_DIR / self.envs[model]


def specs() -> Dict[str, ContractSpec]:
    """Family name -> spec, from every family module of this package."""
    found = {}
    for info in pkgutil.iter_modules([str(Path(__file__).parent)]):
        if info.name.startswith("_") or info.name in HARNESS_MODULES:
            continue
        spec = getattr(importlib.import_module(f"{__name__}.{info.name}"), "SPEC", None)
        if isinstance(spec, ContractSpec):
            found[spec.family] = spec
    return found


def model_specs() -> Dict[str, ContractSpec]:
    """Registry name -> the spec of its family."""
    return {model: spec for spec in specs().values() for model in spec.models}


def spec_for(model: str) -> ContractSpec:
    known = model_specs()
    if model not in known:
        raise KeyError(f"no upstream contract for model {model!r}; known: "
                       f"{', '.join(sorted(known)) or '(none)'}")
    return known[model]


def requirements_text(model: str) -> str:
    """The requirements file of ``model``'s environment (what ``refvps models env`` prints)."""
    return spec_for(model).env_file(model).read_text(encoding="utf-8")
