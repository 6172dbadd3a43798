"""VD-IT (ECCV 2024, buxiangzhiren/VD-IT): video diffusion features + a ReferFormer-style head.

Reproduces ``inference_davis.py`` / ``inference_ytvos.py``: ``T.Resize(360)`` (short side, PIL
bilinear), ``ToTensor``, ImageNet ``Normalize``; the model picks the best query inside
``forward`` (``dataset_file='davis'``); ``pred_masks`` are cropped to the unpadded size, resized
bilinearly to the frame size and thresholded with ``sigmoid > 0.5``. Clips of ``clip_len``
(36, the Ref-DAVIS script's; 0 = the whole video as on Ref-YouTube-VOS). Worked around
(docs/baselines.md §2.6): ``inference_ytvos.py`` is never imported (it pins GPU 7); cwd is the
repo root; a seed per (expression, video length) for the stochastic VAE sampling; the model
runs on the current CUDA device (``cuda`` means ``cuda:<current>``) because the backbone calls
``.cuda()``. CPU: upstream cannot run there. ``models/ops`` (MultiScaleDeformableAttention) builds
only with CUDA and is imported when the model is built, and the backbone's forward calls
``.cuda()`` (``models/itcross_video_swin_transformer.py``).
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import List

import numpy as np

from refvps.baselines.base import BaseSegmenter
from refvps.baselines.clips import plan_fixed
from refvps.baselines.models.common import (IMAGENET_MEAN, IMAGENET_STD, checkpoint_keys_check,
                                            cuda_only_check, derive_seed,
                                            enter_upstream, pil_resize, resize_scores,
                                            seed_everything, set_offline, short_side_size,
                                            to_normalised_chw, with_repo_check)

VDIT_FLAGS = ("--with_box_refine", "--binary", "--freeze_text_encoder", "--eval",
              "--backbone", "itcross_video_swin", "--dataset_file", "davis")


def vdit_preprocess(frames: List[np.ndarray], short: int) -> np.ndarray:
    height, width = short_side_size(*frames[0].shape[:2], short)
    return np.stack([to_normalised_chw(pil_resize(f, height, width), IMAGENET_MEAN, IMAGENET_STD)
                     for f in frames])


def vdit_masks(pred_masks, resized: tuple, height: int, width: int, threshold: float) -> np.ndarray:
    """T x 1 x Hp x Wp logits -> T x H x W bool: unpad, bilinear resize, sigmoid > threshold."""
    h, w = resized
    logits = resize_scores(pred_masks[:, :, :h, :w], height, width)
    return (logits.sigmoid() > threshold)[:, 0].cpu().numpy()


def cuda_index(device: str) -> int:
    """The GPU index of ``device`` for ``torch.cuda.set_device`` (which refuses a bare
    ``"cuda"``): the given index, else the current device."""
    import torch

    index = torch.device(device).index
    return torch.cuda.current_device() if index is None else index


@dataclass
class VDITConfig:
    repo: str = ""  # VD-IT checkout (with Text-To-Video-Finetuning/mymodels/model_scope_diffusers)
    checkpoint: str = ""  # fine-tuned checkpoint (dict with 'model')
    device: str = "cuda"
    clip_len: int = 36
    short_side: int = 360
    threshold: float = 0.5
    amp: bool = True
    seed: int = 42
    offline: bool = True


class VDIT(BaseSegmenter):
    """VD-IT, ModelScope T2V features + ReferFormer decoder (buxiangzhiren/VD-IT)."""

    name = "vd-it"
    version = "1"
    upstream = "buxiangzhiren/VD-IT@e44bd79"
    needs_gpu = True
    Config = VDITConfig
    packages = ("torch", "torchvision", "diffusers", "transformers", "MultiScaleDeformableAttention")
    path_fields = ("repo", "checkpoint")

    def requirements(self):
        return with_repo_check(super().requirements(), self.config.repo, "VD-IT")

    def doctor_checks(self):
        """What ``refvps models doctor vd-it`` checks beyond paths and torch (see doctor.py)."""
        from refvps.baselines.doctor import FAIL, OK, Check, hub_model_check, try_import

        cfg = self.config
        for check in (cuda_only_check("VD-IT", cfg.device, "its deformable-attention op builds "
                                      "only with CUDA and its backbone calls .cuda()"),
                      try_import("MultiScaleDeformableAttention",
                                 "cd REPO/models/ops && python setup.py build install (needs CUDA)",
                                 "VD-IT op MultiScaleDeformableAttention"),
                      try_import("diffusers", "pip install -r <(refvps models env vd-it)"),
                      checkpoint_keys_check(f"checkpoint {cfg.checkpoint}", cfg.checkpoint, "model",
                                            "pass VD-IT's released checkpoint (a dict with 'model')")):
            if check is not None:
                yield check
        found = try_import("transformers", "pip install transformers==4.36.2")
        if found.status == OK and tuple(int(p) for p in found.detail.split()[0].split(".")[:2]) < (4, 25):
            found = Check("transformers", FAIL, found.detail + "; the vendored mydiffusers needs "
                          ">= 4.25.1 (upstream's requirements.txt pins 4.12.5)",
                          "pip install transformers==4.36.2")
        yield found
        base = os.path.join(cfg.repo, "Text-To-Video-Finetuning", "mymodels", "model_scope_diffusers")
        missing = [d for d in ("unet", "vae", "text_encoder", "tokenizer")
                   if not os.path.isdir(os.path.join(base, d))]
        yield (Check("ModelScope T2V base", FAIL, f"{base} lacks {', '.join(missing)}",
                     "git clone https://huggingface.co/damo-vilab/text-to-video-ms-1.7b into it")
               if missing else Check("ModelScope T2V base", OK, base))
        for name in ("laion/CLIP-ViT-H-14-laion2B-s32B-b79K", "roberta-base"):
            yield hub_model_check(f"hub model {name}", name, cfg.offline)

    def load(self) -> None:
        import torch

        cfg = self.config
        set_offline(cfg.offline)
        if str(cfg.device).startswith("cuda"):
            torch.cuda.set_device(cuda_index(cfg.device))
        enter_upstream(cfg.repo)
        import opts
        from models import build_model_diff_cross

        parser = opts.get_args_parser()
        args = parser.parse_args(list(VDIT_FLAGS) + (["--amp"] if cfg.amp else []))
        args.masks = True
        args.device = cfg.device
        self.model, _, _ = build_model_diff_cross(args)
        checkpoint = torch.load(cfg.checkpoint, map_location="cpu")
        result = self.model.load_state_dict(checkpoint.get("model", checkpoint), strict=False)
        self.missing_keys = list(result.missing_keys)
        self.model.to(cfg.device).eval()

    def segment(self, frames: List[np.ndarray], expression: str) -> np.ndarray:
        import torch

        cfg = self.config
        height, width = frames[0].shape[:2]
        resized = short_side_size(height, width, cfg.short_side)
        seed_everything(derive_seed(cfg.seed, expression, len(frames)))
        out = []
        amp = torch.autocast("cuda", enabled=cfg.amp and str(cfg.device).startswith("cuda"))
        with torch.no_grad(), amp:
            for start, end, _ in plan_fixed(len(frames), cfg.clip_len or None):
                images = torch.from_numpy(vdit_preprocess(frames[start:end], cfg.short_side))
                target = {"size": torch.as_tensor([resized[0], resized[1]]).to(cfg.device)}
                outputs = self.model([images.to(cfg.device)], [expression], [target])
                out.append(vdit_masks(outputs["pred_masks"][0].float(), resized, height, width,
                                      cfg.threshold))
        return np.concatenate(out)
