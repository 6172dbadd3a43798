"""REM (ReferEverything, ICCV 2025): ModelScope-1.4B and Wan2.1-14B variants.

Reproduces the upstream inference scripts (``infer_sample_MS.py``, ``infer_sample_wan.py``):
frames stretched to 512 x 512 with PIL bilinear, ``ToTensor``, ``Normalize(0.5, 0.5)``; the
model's own text encoder; the decoded 3-channel mask latents resized bilinearly to the frame
size, averaged over channels and thresholded at 0.5. Worked around (docs/baselines.md §1.7):
a random seed per (expression, video length) instead of one global seed; the MS sample's
20-frame debug slice is not used (the model is called directly); Wan prompts longer than
``token_length`` T5 tokens are truncated instead of crashing; videos shorter than the smallest
Wan clip are padded by repeating the last frame; xformers is optional.
"""
from __future__ import annotations

import contextlib
import warnings
from dataclasses import dataclass
from typing import List

import numpy as np

from refvps.baselines.base import BaseSegmenter
from refvps.baselines.clips import fit_clip_len, plan_fixed, plan_tail
from refvps.baselines.models.common import (derive_seed, enter_upstream, pil_resize,
                                            resize_scores, seed_everything, set_offline,
                                            to_normalised_chw)

WAN_CLIP_LENS = (73, 61, 49, 37, 25, 17, 9, 5)


def rem_preprocess(frames: List[np.ndarray], size: int) -> np.ndarray:
    """n x 3 x size x size float32 in [-1, 1] (T.Resize((size, size)), ToTensor, Normalize(0.5))."""
    return np.stack([to_normalised_chw(pil_resize(f, size, size), (0.5,) * 3, (0.5,) * 3)
                     for f in frames])


def rem_masks(decoded, height: int, width: int, threshold: float) -> np.ndarray:
    """Decoded n x 3 x h x w mask frames -> n x H x W bool: resize, channel mean, > threshold."""
    return (resize_scores(decoded, height, width).mean(1) > threshold).cpu().numpy()


def wan_pad_text(embeddings, length: int):
    """L x D token embeddings cut or zero-padded to ``length`` rows (upstream crashes above)."""
    embeddings = embeddings[:length]
    pad = embeddings.new_zeros(length - embeddings.shape[0], embeddings.shape[1])
    return __import__("torch").cat([embeddings, pad])


@contextlib.contextmanager
def optional_xformers():
    """Let upstream's ``enable_xformers_memory_efficient_attention()`` calls pass without
    xformers (diffusers then keeps its default attention). Upstream calls it on models
    (``ModelMixin``: ``VDiffFeatExtractor_lean_updown.__init__``) and on the pipeline
    (``DiffusionPipeline``: ``build_vdiff_lean_updown``); both are patched."""
    try:
        import xformers  # noqa: F401
    except ImportError:
        pass
    else:
        yield
        return
    try:
        from diffusers import DiffusionPipeline
        from diffusers.models.modeling_utils import ModelMixin
    except ImportError:
        yield
        return
    originals = [(cls, cls.enable_xformers_memory_efficient_attention)
                 for cls in (ModelMixin, DiffusionPipeline)]
    for cls, _ in originals:
        cls.enable_xformers_memory_efficient_attention = _no_xformers
    warnings.warn("xformers is not installed; REM runs with diffusers' default attention")
    try:
        yield
    finally:
        for cls, original in originals:
            cls.enable_xformers_memory_efficient_attention = original


def load_rem_checkpoint(path: str) -> dict:
    """A REM training checkpoint (``torch.save`` of a dict with the weights, the optimizer state,
    ``epoch`` and the training ``args`` as an ``argparse.Namespace``). Upstream loads it with
    torch 1.13's full unpickling; torch >= 2.6 refuses the Namespace by default, so it is
    allowed explicitly and nothing else is unpickled."""
    import argparse

    import torch

    safe_globals = getattr(torch.serialization, "safe_globals", None)
    if safe_globals is None:  # torch < 2.5: no weights_only default to work around
        return torch.load(path, map_location="cpu")
    with safe_globals([argparse.Namespace]):
        return torch.load(path, map_location="cpu", weights_only=True)


def _no_xformers(self, *args, **kwargs) -> None:
    """Stands in for ``enable_xformers_memory_efficient_attention`` when xformers is missing."""


@dataclass
class REMMSConfig:
    repo: str = ""  # ReferEverything checkout
    checkpoint: str = ""  # fine-tuned REM-MS checkpoint (dict with 'unet')
    base_model: str = "ali-vilab/text-to-video-ms-1.7b"  # HF id or local diffusers folder
    device: str = "cuda"
    clip_len: int = 72  # non-overlapping clips (upstream: 72; BURST 64, VSPW 32)
    size: int = 512  # 256 reproduces upstream --half
    threshold: float = 0.5
    vae_chunk: int = 16
    seed: int = 42
    offline: bool = True


class REMModelScope(BaseSegmenter):
    """REM on ModelScope T2V 1.4B (miccooper9/ReferEverything)."""

    name = "rem-ms"
    version = "1"
    upstream = "miccooper9/ReferEverything@6dcc5a9"
    needs_gpu = True
    deterministic = True  # given the per-query seed
    Config = REMMSConfig
    packages = ("torch", "torchvision", "diffusers", "transformers")
    path_fields = ("repo", "checkpoint")

    def load(self) -> None:
        cfg = self.config
        set_offline(cfg.offline)
        enter_upstream(cfg.repo)
        from models.mst2v_wrapper import Vdiff_updown, build_vdiff_lean_updown

        with optional_xformers():
            backbone = build_vdiff_lean_updown(sd_id=cfg.base_model)
        self.model = Vdiff_updown(backbone).to(cfg.device)
        checkpoint = load_rem_checkpoint(cfg.checkpoint)
        if "unet" not in checkpoint:
            raise KeyError(f"{cfg.checkpoint}: no 'unet' entry (keys: {sorted(checkpoint)[:8]}); "
                           "is this a REM-MS checkpoint?")
        self.model.backbone.unet.load_state_dict(checkpoint["unet"])  # strict, as upstream
        self.model.eval()

    def _text(self, expression: str):
        backbone = self.model.backbone
        tokens = backbone.tokenizer(expression, padding="max_length",
                                    max_length=backbone.tokenizer.model_max_length,
                                    truncation=True, return_tensors="pt")
        return backbone.text_encoder(tokens.input_ids.to(self.config.device))[0]

    def segment(self, frames: List[np.ndarray], expression: str) -> np.ndarray:
        import torch

        cfg = self.config
        height, width = frames[0].shape[:2]
        seed_everything(derive_seed(cfg.seed, expression, len(frames)))
        vae = self.model.backbone.vae
        out = []
        with torch.no_grad():
            text = self._text(expression)
            for start, end, _ in plan_fixed(len(frames), cfg.clip_len):
                images = torch.from_numpy(rem_preprocess(frames[start:end], cfg.size))
                latents = self.model(images.to(cfg.device).unsqueeze(0), text)
                latents = latents / vae.config.scaling_factor
                decoded = torch.cat([vae.decode(latents[i:i + cfg.vae_chunk]).sample
                                     for i in range(0, latents.shape[0], cfg.vae_chunk)])
                out.append(rem_masks(decoded, height, width, cfg.threshold))
        return np.concatenate(out)


@dataclass
class REMWanConfig:
    repo: str = ""
    checkpoint: str = ""  # fine-tuned REM-Wan checkpoint (dict with 'model_state')
    base_dir: str = ""  # Wan-AI/Wan2.1-T2V-14B-Diffusers (the diffusers layout)
    device: str = "cuda"
    clip_len: int = 73  # 4k+1, from WAN_CLIP_LENS
    size: int = 512
    token_length: int = 77
    threshold: float = 0.5
    bf16: bool = True  # upstream runs under torch.autocast("cuda", bfloat16)
    offline: bool = True


class REMWan(BaseSegmenter):
    """REM on Wan2.1 T2V 14B (miccooper9/ReferEverything)."""

    name = "rem-wan"
    version = "1"
    upstream = "miccooper9/ReferEverything@6dcc5a9"
    needs_gpu = True
    Config = REMWanConfig
    packages = ("torch", "diffusers", "transformers")  # want2v_wrapper needs no torchvision
    path_fields = ("repo", "checkpoint", "base_dir")
    clip_lens = WAN_CLIP_LENS

    def load(self) -> None:
        cfg = self.config
        if cfg.clip_len not in WAN_CLIP_LENS:
            raise ValueError(f"clip_len must be one of {WAN_CLIP_LENS}, got {cfg.clip_len}")
        set_offline(cfg.offline)
        enter_upstream(cfg.repo)
        from models.want2v_wrapper import WanVdiff_wrapper, build_want2vlarge_txt_model

        with optional_xformers():
            backbone = build_want2vlarge_txt_model(cfg.base_dir)
        self.model = WanVdiff_wrapper(backbone).to(cfg.device)
        checkpoint = load_rem_checkpoint(cfg.checkpoint)
        if "model_state" not in checkpoint:
            raise KeyError(f"{cfg.checkpoint}: no 'model_state' entry; is this a REM-Wan checkpoint?")
        result = self.model.load_state_dict(checkpoint["model_state"], strict=False)
        self.missing_keys = list(result.missing_keys)
        self.unexpected_keys = list(result.unexpected_keys)
        if self.unexpected_keys or self.missing_keys:
            warnings.warn(f"REM-Wan checkpoint: {len(self.missing_keys)} missing and "
                          f"{len(self.unexpected_keys)} unexpected keys (upstream loads with "
                          f"strict=False), e.g. {(self.missing_keys + self.unexpected_keys)[:3]}")
        self.model.eval()

    def _autocast(self):
        """Upstream's ``torch.autocast("cuda", bfloat16)``, on the CPU too: the model is loaded
        in bf16 (``build_want2vlarge_txt_model``) but parts of it run in fp32, and without
        autocast the CPU matmuls refuse the mix."""
        import torch

        if not self.config.bf16:
            return contextlib.nullcontext()
        device = torch.device(self.config.device).type
        return torch.autocast(device, torch.bfloat16, cache_enabled=False)

    def _text(self, expression: str):
        import torch

        backbone = self.model.backbone
        tokens = backbone.tokenizer(expression, padding="max_length", max_length=512,
                                    truncation=True, add_special_tokens=True,
                                    return_attention_mask=True, return_tensors="pt")
        device = self.config.device
        hidden = backbone.text_encoder(tokens.input_ids.to(device),
                                       tokens.attention_mask.to(device)).last_hidden_state
        length = int(tokens.attention_mask.gt(0).sum())
        text = torch.stack([wan_pad_text(hidden[0, :length], self.config.token_length)])
        return text.to(device, backbone.dit.dtype)

    def segment(self, frames: List[np.ndarray], expression: str) -> np.ndarray:
        import torch

        cfg = self.config
        height, width = frames[0].shape[:2]
        n_frames = len(frames)
        clip_len = fit_clip_len(cfg.clip_len, n_frames, WAN_CLIP_LENS)
        if clip_len is None:  # shorter than every clip: pad with the last frame, crop after
            clip_len = min(WAN_CLIP_LENS)
            frames = frames + [frames[-1]] * (clip_len - n_frames)
        backbone = self.model.backbone
        vae = backbone.vae
        out = []
        with torch.no_grad(), self._autocast():
            text = self._text(expression)
            z_dim = vae.config.z_dim
            mean = torch.tensor(vae.config.latents_mean).view(1, z_dim, 1, 1, 1).to(cfg.device, vae.dtype)
            inv_std = 1.0 / torch.tensor(vae.config.latents_std).view(1, z_dim, 1, 1, 1).to(cfg.device, vae.dtype)
            for start, end, keep_from in plan_tail(len(frames), clip_len):
                images = torch.from_numpy(rem_preprocess(frames[start:end], cfg.size))
                images = images.to(cfg.device, vae.dtype)
                latents = vae.encode(images.unsqueeze(0).permute(0, 2, 1, 3, 4)).latent_dist.mode()
                latents = (latents - mean) * inv_std
                pred = self.model(latents.to(backbone.dit.dtype), timesteps=0, prompt_embeds=text)
                pred = pred.to(vae.dtype) / inv_std + mean
                decoded = vae.decode(pred, return_dict=False)[0].squeeze(0).permute(1, 0, 2, 3)
                out.append(rem_masks(decoded[keep_from - start:], height, width, cfg.threshold))
        return np.concatenate(out)[:n_frames]
