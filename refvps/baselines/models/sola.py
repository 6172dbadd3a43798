"""SOLA (cvlab-kaist/SOLA): SAM2 mask tracks + a language-aligned track selector.

Per video (cached for all its expressions): SAM2 automatic masks on keyframes, "part" masks
dropped (contained > 0.7 in a larger mask), largest first; each prompt not already covered by a
track (IoU > 0.7) is propagated forward and backward with the SAM2 video predictor, keeping its
masklet and per-frame ``obj_ptr`` tokens (at most ``max_tracks``). Per expression: RoBERTa-large
tokens, the selector's scores, ``sigmoid > threshold``, union of the selected masklets.

Worked around (docs/baselines.md §4.4): the keyframe rule is explicit (``keyframes=first-middle``
or ``every:N``) instead of the inconsistent upstream scripts; frames are linked as ``%05d.jpg``
for SAM2; video and state are offloaded to the CPU; an expression with no track gets an empty
mask instead of an assertion error. Not reproduced: the GroundingDINO prompt tracks (grid tracks
only), so numbers can be below the paper's. No selector checkpoint is released; pass your own.
"""
from __future__ import annotations

import hashlib
import os
import tempfile
from dataclasses import dataclass
from typing import Dict, List, Sequence

import numpy as np

from refvps.baselines.base import BaseSegmenter
from refvps.baselines.models.common import enter_upstream, set_offline
from refvps.baselines.protocol import VideoInput


def keyframes(n_frames: int, rule: str) -> List[int]:
    """Prompt frames: ``first-middle`` -> [0, T//2]; ``every:N`` -> 0, N, 2N, ..."""
    if rule == "first-middle":
        return sorted({0, n_frames // 2})
    if rule.startswith("every:"):
        return list(range(0, n_frames, int(rule.split(":", 1)[1])))
    raise ValueError(f"keyframes rule {rule!r}: use first-middle or every:N")


def drop_part_masks(masks: Sequence[np.ndarray], containment: float = 0.7) -> List[int]:
    """Indices of the masks to keep, largest first; a mask mostly inside a kept one is a part."""
    order = sorted(range(len(masks)), key=lambda i: -int(masks[i].sum()))
    kept: List[int] = []
    for index in order:
        area = masks[index].sum()
        if area == 0:
            continue
        if any((masks[index] & masks[k]).sum() / area > containment for k in kept):
            continue
        kept.append(index)
    return kept


def iou(a: np.ndarray, b: np.ndarray) -> float:
    union = np.logical_or(a, b).sum()
    return float(np.logical_and(a, b).sum() / union) if union else 0.0


def sola_union(masklets: np.ndarray, probs: np.ndarray, threshold: float) -> np.ndarray:
    """N x T x H x W masklets, N probabilities -> T x H x W union of those above threshold."""
    selected = probs > threshold
    if masklets.shape[0] == 0 or not selected.any():
        return np.zeros(masklets.shape[1:], bool)
    return masklets[selected].any(axis=0)


@dataclass
class SOLAConfig:
    repo: str = ""  # SOLA checkout
    checkpoint: str = ""  # your trained selector epoch_N.pth (none is released)
    config: str = ""  # SOLA yaml (default: configs/mevis/default.yaml)
    sam2_checkpoint: str = ""  # sam2_hiera_large.pt
    sam2_config: str = "sam2_hiera_l.yaml"
    roberta: str = "sentence-transformers/all-roberta-large-v1"
    device: str = "cuda"
    keyframes: str = "first-middle"
    max_tracks: int = 64
    threshold: float = 0.5
    offline: bool = True


class SOLA(BaseSegmenter):
    """SOLA, SAM2 tracks + language-aligned track selection (cvlab-kaist/SOLA)."""

    name = "sola"
    version = "1"
    upstream = "cvlab-kaist/SOLA@4b0adf8"
    needs_gpu = True
    Config = SOLAConfig
    packages = ("torch", "sam2", "transformers", "yaml")
    path_fields = ("repo", "checkpoint", "sam2_checkpoint")

    def load(self) -> None:
        import torch
        import yaml
        from sam2.automatic_mask_generator import SAM2AutomaticMaskGenerator
        from sam2.build_sam import build_sam2, build_sam2_video_predictor
        from transformers import AutoModel, AutoTokenizer

        cfg = self.config
        set_offline(cfg.offline)
        enter_upstream(cfg.repo)
        from module.module import LanguageAlignedTrackSelectionModule

        config = cfg.config or os.path.join(cfg.repo, "configs", "mevis", "default.yaml")
        with open(config, encoding="utf-8") as handle:
            model_cfg = yaml.safe_load(handle)["model"]
        self.selector = LanguageAlignedTrackSelectionModule(model_cfg).to(cfg.device)
        self.selector.load_state_dict(torch.load(cfg.checkpoint, map_location="cpu",
                                                 weights_only=True))
        self.selector.eval()
        self.tokenizer = AutoTokenizer.from_pretrained(cfg.roberta)
        self.roberta = AutoModel.from_pretrained(cfg.roberta).to(cfg.device).eval()
        self.generator = SAM2AutomaticMaskGenerator(build_sam2(cfg.sam2_config, cfg.sam2_checkpoint,
                                                               device=cfg.device))
        self.predictor = build_sam2_video_predictor(cfg.sam2_config, cfg.sam2_checkpoint,
                                                    device=cfg.device)
        self._cache: Dict[str, tuple] = {}

    # --- per video ------------------------------------------------------------------------------
    def tracks(self, video: VideoInput):
        """(N x T x H x W bool masklets, N x T x D tokens) of the video, cached."""
        paths = list(video.frame_paths or [])
        key = hashlib.sha1("\n".join(paths).encode()).hexdigest() if paths else None
        if key and key in self._cache:
            return self._cache[key]
        with tempfile.TemporaryDirectory(prefix="refvps-sola-") as folder:
            frames = _link_frames(video, folder)
            result = self._track(folder, frames)
        if key:
            self._cache = {key: result}  # one video at a time
        return result

    def _track(self, folder: str, frames: List[np.ndarray]):
        import torch

        cfg = self.config
        n_frames = len(frames)
        masklets: List[np.ndarray] = []
        tokens: List[np.ndarray] = []
        with torch.inference_mode(), torch.autocast("cuda", torch.bfloat16,
                                                    enabled=str(cfg.device).startswith("cuda")):
            state = self.predictor.init_state(video_path=folder, offload_video_to_cpu=True,
                                              offload_state_to_cpu=True)
            batch = 2 if n_frames > 200 else 4
            for t in keyframes(n_frames, cfg.keyframes):
                proposals = [m["segmentation"].astype(bool) for m in self.generator.generate(frames[t])]
                prompts = [proposals[i] for i in drop_part_masks(proposals)]
                prompts = [p for p in prompts if all(iou(p, m[t]) <= 0.7 for m in masklets)]
                for start in range(0, len(prompts), batch):
                    if len(masklets) >= cfg.max_tracks:
                        break
                    group = prompts[start:start + batch][:cfg.max_tracks - len(masklets)]
                    new_masks, new_tokens = self._propagate(state, t, group, n_frames)
                    masklets += new_masks
                    tokens += new_tokens
        if not masklets:
            height, width = frames[0].shape[:2]
            return np.zeros((0, n_frames, height, width), bool), np.zeros((0, n_frames, 256), np.float32)
        return np.stack(masklets), np.stack(tokens)

    def _propagate(self, state, frame_idx: int, prompts: List[np.ndarray], n_frames: int):
        self.predictor.reset_state(state)
        masks = [[None] * n_frames for _ in prompts]
        for obj_id, prompt in enumerate(prompts):
            _, _, logits = self.predictor.add_new_mask(inference_state=state, frame_idx=frame_idx,
                                                       obj_id=obj_id, mask=prompt)
            masks[obj_id][frame_idx] = (logits[obj_id] > 0).cpu().numpy()[0]
        for reverse in (False, True):
            for t, _ids, logits in self.predictor.propagate_in_video(state, reverse=reverse):
                for obj_id in range(len(prompts)):
                    masks[obj_id][t] = (logits[obj_id] > 0).cpu().numpy()[0]
        tokens = [[None] * n_frames for _ in prompts]
        for kind in ("cond", "non_cond"):
            for t, output in state["output_dict"][f"{kind}_frame_outputs"].items():
                for obj_id in range(len(prompts)):
                    tokens[obj_id][t] = output["obj_ptr"][obj_id].float().cpu().numpy()
        return [np.stack(m) for m in masks], [np.stack(k) for k in tokens]

    # --- per expression -------------------------------------------------------------------------
    def predict_video(self, video: VideoInput, expressions: Sequence[str]) -> List[np.ndarray]:
        import torch

        self.ensure_loaded()
        masklets, tokens = self.tracks(video)
        out = []
        for expression in expressions:
            if masklets.shape[0] == 0:
                out.append(np.zeros(masklets.shape[1:], bool))
                continue
            with torch.no_grad():
                lang = self.tokenizer.batch_encode_plus([expression], padding="longest",
                                                        return_tensors="pt").to(self.config.device)
                lang = self.roberta(**lang).last_hidden_state
                objects = torch.from_numpy(tokens[None]).to(self.config.device)
                score, _ = self.selector(objects, lang)
                probs = torch.sigmoid(score).float().cpu().numpy().reshape(-1)
            out.append(sola_union(masklets, probs, self.config.threshold))
        return out

    def segment(self, frames: List[np.ndarray], expression: str) -> np.ndarray:
        names = [f"{i:05d}" for i in range(len(frames))]
        return self.predict_video(VideoInput("", names, frames), [expression])[0]


def _link_frames(video: VideoInput, folder: str) -> List[np.ndarray]:
    """Frames as ``%05d.jpg`` in ``folder`` (SAM2 needs integer names); links when possible."""
    from PIL import Image

    frames = [np.asarray(f) for f in video.frames]
    for index, frame in enumerate(frames):
        target = os.path.join(folder, f"{index:05d}.jpg")
        source = video.frame_paths[index] if video.frame_paths else None
        if source and source.lower().endswith((".jpg", ".jpeg")):
            os.symlink(os.path.abspath(source), target)
        else:
            Image.fromarray(frame).save(target, quality=100)
    return frames
