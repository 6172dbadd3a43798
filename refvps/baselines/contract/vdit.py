"""VD-IT contract: upstream needs CUDA (``models/ops`` MultiScaleDeformableAttention builds only
with CUDA and is imported when the model is built; the backbone's forward calls ``.cuda()``), so
without a GPU the harness reports ``skipped: needs CUDA``.

The tiny checkpoint is not written yet: it needs a tiny ModelScope T2V folder in
``Text-To-Video-Finetuning/mymodels/model_scope_diffusers`` layout, a tiny CLIP-ViT-H vision
model and roberta-base, all built in code, and that was not developed without a GPU to run it.
"""
from __future__ import annotations

from pathlib import Path
from typing import Dict

from refvps.baselines.contract import ContractSpec


def write_checkpoint(model: str, repo: Path, folder: Path) -> Dict[str, str]:
    raise NotImplementedError("the VD-IT tiny checkpoint writer is not implemented yet (it must "
                              "be developed on a GPU machine; see refvps/baselines/contract/vdit.py)")


SPEC = ContractSpec(family="vd-it", models=("vd-it",), repo_folder="VD-IT", commit="e44bd79",
                    envs={"vd-it": "vd-it.txt"}, needs_cuda=True, write_checkpoint=write_checkpoint,
                    notes="CUDA-only: MultiScaleDeformableAttention op and .cuda() in the backbone")
