"""UniRef++ contract: upstream needs CUDA (importing ``detectron2.projects.uniref`` imports
``MultiScaleDeformableAttention``, built only with CUDA by ``models/deformable_detr/ops/make.sh``;
``forward_text`` moves the text to ``"cuda"``; flash-attn 2.0.6 builds only with CUDA), so
without a GPU the harness reports ``skipped: needs CUDA``.

The tiny checkpoint is not written yet: it needs the eval config shrunk (backbone, DDETRS
layers), a tiny ``pretrained_models/bert-base-uncased`` folder and a ``resnet18-5c106cde.pth``
in ``$TORCH_HOME/hub/checkpoints``, all built in code, and that was not developed without a GPU
to run it.
"""
from __future__ import annotations

from pathlib import Path
from typing import Dict

from refvps.baselines.contract import ContractSpec


def write_checkpoint(model: str, repo: Path, folder: Path) -> Dict[str, str]:
    raise NotImplementedError("the UniRef++ tiny checkpoint writer is not implemented yet (it "
                              "must be developed on a GPU machine; see "
                              "refvps/baselines/contract/uniref.py)")


SPEC = ContractSpec(family="uniref", models=("uniref-r50", "uniref-swinl"), repo_folder="UniRef",
                    commit="16442cf", envs={"uniref-r50": "uniref.txt", "uniref-swinl": "uniref.txt"},
                    needs_cuda=True, write_checkpoint=write_checkpoint,
                    notes="CUDA-only: MultiScaleDeformableAttention op, flash-attn, forward_text on cuda")
