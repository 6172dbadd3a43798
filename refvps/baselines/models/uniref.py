"""UniRef++ (FoundationVision/UniRef), R50 and Swin-L, through its own RVOS inference path.

The wrapper builds the detectron2 model from the upstream eval config, feeds one expression as
the batched input ``inference_rvos_vl`` expects (``dataset_name='refytvos'``: online, frame by
frame, first and previous masks as references, top-1 query, score > 0.3 else empty, sigmoid >
0.5, resized to the frame size), the expression a ``str`` as the test-time mapper leaves it
(``ytvis_dataset_mapper.py``; ``forward_text`` rejects a list), and reads back the 0/255 PNGs the model writes under
``model.save_path_prefix`` (a temporary folder). Frames go through ``ResizeShortestEdge(480,
1333)``; the expression through ``clean_string``. Worked around (docs/baselines.md §3.5): cwd =
repo root (relative ``pretrained_models/``); the ImageNet resnet18 that model building
downloads (``vos_helper/mod_resnet.py``: ``resnet18-5c106cde.pth``) must be in
``$TORCH_HOME/hub/checkpoints`` when offline. CPU: upstream cannot run there. Importing the model
imports ``MultiScaleDeformableAttention`` (``models/deformable_detr/ops``, CUDA-only build), and
``forward_text`` moves the text to ``"cuda"``.
"""
from __future__ import annotations

import os
import re
import shutil
import tempfile
from dataclasses import dataclass
from typing import List

import numpy as np

from refvps.baselines.base import BaseSegmenter
from refvps.baselines.models.common import (checkpoint_keys_check, cuda_only_check, enter_upstream,
                                            pil_resize, set_offline, shortest_edge_size,
                                            with_repo_check)

RESNET18_URL = "https://download.pytorch.org/models/resnet18-5c106cde.pth"
RESNET18_FILE = "resnet18-5c106cde.pth"  # vos_helper/mod_resnet.py, via model_zoo.load_url


def torch_hub_file(name: str) -> str:
    """Where ``torch.hub.load_state_dict_from_url`` keeps ``name`` ($TORCH_HOME/hub/checkpoints)."""
    home = os.environ.get("TORCH_HOME") or os.path.join(
        os.environ.get("XDG_CACHE_HOME", os.path.expanduser("~/.cache")), "torch")
    return os.path.join(home, "hub", "checkpoints", name)


_REMOVED = re.compile(r"[.,'!?\"()*#:;]")


def clean_string(expression: str) -> str:
    """UniRef's text normalisation: lower-case, drop punctuation, '-' and '/' become spaces."""
    return _REMOVED.sub("", expression.lower()).replace("-", " ").replace("/", " ")


@dataclass
class UniRefConfig:
    repo: str = ""  # UniRef checkout (installed with pip install -e . in its environment)
    checkpoint: str = ""  # video-joint_r50.pth / the Swin-L one
    config: str = ""  # default: the repo's eval_rvos yaml for the backbone
    device: str = "cuda"
    min_size: int = 480
    max_size: int = 1333
    offline: bool = True


class _UniRef(BaseSegmenter):
    version = "1"
    upstream = "FoundationVision/UniRef@16442cf"
    needs_gpu = True
    Config = UniRefConfig
    packages = ("torch", "detectron2", "flash_attn", "transformers")
    path_fields = ("repo", "checkpoint")
    backbone = ""

    def requirements(self):
        return with_repo_check(super().requirements(), self.config.repo, "UniRef")

    def config_file(self) -> str:
        if self.config.config:
            return self.config.config
        return os.path.join(self.config.repo, "projects", "UniRef", "configs", "eval",
                            self.backbone, f"eval_rvos_{self.backbone}.yaml")

    def doctor_checks(self):
        """What ``refvps models doctor uniref-*`` checks beyond paths and torch (see doctor.py)."""
        from refvps.baselines.doctor import FAIL, OK, Check, try_import

        cfg = self.config
        for check in (cuda_only_check("UniRef++", cfg.device, "its deformable-attention op and "
                                      "flash-attn build only with CUDA, and forward_text uses cuda"),
                      try_import("MultiScaleDeformableAttention", "cd REPO/projects/UniRef/uniref/"
                                 "models/deformable_detr/ops && bash make.sh (needs CUDA)",
                                 "UniRef op MultiScaleDeformableAttention"),
                      try_import("flash_attn", "pip install --no-build-isolation flash-attn==2.0.6"),
                      try_import("transformers", "pip install transformers==4.31.0"),
                      checkpoint_keys_check(f"checkpoint {cfg.checkpoint}", cfg.checkpoint, "model",
                                            "pass the UniRef++ checkpoint of this backbone")):
            if check is not None:
                yield check
        config = self.config_file()
        yield (Check(f"config {config}", OK) if os.path.isfile(config) else
               Check(f"config {config}", FAIL, "not found", "pass --model-arg config=FILE"))
        bert = os.path.join(cfg.repo, "pretrained_models", "bert-base-uncased")
        yield (Check("text model", OK, bert) if os.path.isfile(os.path.join(bert, "config.json"))
               else Check("text model", FAIL, f"{bert}/config.json not found", "huggingface-cli "
                          f"download bert-base-uncased --local-dir {bert}"))
        resnet = torch_hub_file(RESNET18_FILE)
        yield (Check("ImageNet resnet18", OK, resnet) if os.path.isfile(resnet) else
               Check("ImageNet resnet18", FAIL if cfg.offline else "warn",
                     f"{resnet} not found (vos_helper/mod_resnet.py loads it)",
                     f"python -c \"import torch; torch.hub.load_state_dict_from_url('{RESNET18_URL}')\""))

    def load(self) -> None:
        cfg = self.config
        set_offline(cfg.offline)
        enter_upstream(cfg.repo)
        from detectron2.checkpoint import DetectionCheckpointer
        from detectron2.config import get_cfg
        from detectron2.modeling import build_model
        from detectron2.projects.uniref import add_uniref_config

        d2 = get_cfg()
        add_uniref_config(d2)
        d2.merge_from_file(self.config_file())
        d2.MODEL.WEIGHTS = cfg.checkpoint
        d2.MODEL.DEVICE = cfg.device
        d2.freeze()
        self.model = build_model(d2)
        DetectionCheckpointer(self.model).load(cfg.checkpoint)
        self.model.eval()

    def segment(self, frames: List[np.ndarray], expression: str) -> np.ndarray:
        import torch

        cfg = self.config
        height, width = frames[0].shape[:2]
        new_h, new_w = shortest_edge_size(height, width, cfg.min_size, cfg.max_size)
        names = [f"{i:05d}" for i in range(len(frames))]
        images = [torch.as_tensor(np.ascontiguousarray(pil_resize(f, new_h, new_w).transpose(2, 0, 1)))
                  for f in frames]
        folder = tempfile.mkdtemp(prefix="refvps-uniref-")
        try:
            self.model.save_path_prefix = folder
            batch = {"task": "rvos", "dataset_name": "refytvos", "image": images,
                     "height": height, "width": width, "video": "video", "exp_id": "0",
                     "file_names": [f"video/{n}.jpg" for n in names],
                     "expressions": clean_string(expression)}
            with torch.no_grad():
                self.model([batch])
            return read_back(folder, names, height, width)
        finally:
            shutil.rmtree(folder, ignore_errors=True)


def read_back(folder: str, names: List[str], height: int, width: int) -> np.ndarray:
    """The T x H x W masks the model wrote as ``<name>.png`` somewhere under ``folder``."""
    from PIL import Image

    found = {}
    for root, _dirs, files in os.walk(folder):
        for file in files:
            stem, ext = os.path.splitext(file)
            if ext == ".png":
                found[stem] = os.path.join(root, file)
    missing = [n for n in names if n not in found]
    if missing:
        raise RuntimeError(f"UniRef wrote no mask for {len(missing)} frame(s), e.g. {missing[0]}")
    masks = np.stack([np.asarray(Image.open(found[n]).convert("L")) > 127 for n in names])
    if masks.shape[1:] != (height, width):
        raise RuntimeError(f"UniRef masks are {masks.shape[2]}x{masks.shape[1]}, frames {width}x{height}")
    return masks


class UniRefR50(_UniRef):
    """UniRef++ with a ResNet-50 backbone (FoundationVision/UniRef)."""

    name = "uniref-r50"
    backbone = "r50"


class UniRefSwinL(_UniRef):
    """UniRef++ with a Swin-L backbone (FoundationVision/UniRef)."""

    name = "uniref-swinl"
    backbone = "swin-l"
