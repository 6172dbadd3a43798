"""REM (ReferEverything) contract: tiny ModelScope-T2V and Wan2.1 models in diffusers layout."""
from __future__ import annotations

from pathlib import Path
from typing import Dict

from refvps.baselines.contract import ContractSpec


def write_checkpoint(model: str, repo: Path, folder: Path) -> Dict[str, str]:
    raise NotImplementedError("REM tiny checkpoints: in progress")


SPEC = ContractSpec(family="rem", models=("rem-ms", "rem-wan"), repo_folder="ReferEverything",
                    commit="6dcc5a9", envs={"rem-ms": "rem-ms.txt", "rem-wan": "rem-wan.txt"},
                    needs_cuda=False, write_checkpoint=write_checkpoint)
