"""The SAM2 video predictor (``sam2==1.1.0``, installed with ``--no-deps``) as a backend.

Settings and workarounds, measured on sam2 1.1.0 (docs/annotation.md):

- corrections stick: ``add_all_frames_to_correct_as_cond=true`` makes a prompt on an already
  tracked frame a conditioning frame, and ``clear_non_cond_mem_around_input=true`` drops the stale
  memory around it. sam2 1.1.0 calls a method it does not define when the latter is on
  (``_clear_obj_non_cond_mem_around_input``); :func:`_clear_obj_memory_around` supplies it.
- CPU: memory features are stored as bfloat16, and reverse propagation from a corrected frame
  then fails in ``memory_attention`` (bf16 vs fp32 matmul). A forward pre-hook casts the memory
  inputs to fp32. On CUDA every call runs under bf16 autocast, as upstream does.
- image features: sam2 1.1.0 caches the backbone output of the last frame it encoded only, so
  coming back to a frame (after a propagation or a visit to another frame) runs the image
  encoder again. The backend keeps an LRU cache of every encoded frame's features (up to
  ``feature_cache_bytes``; the position encodings, identical for all frames, stored once) and
  hands the entry to sam2 before each lookup, so a click on an encoded frame costs only the
  prompt encoder and mask decoder. The prompt encoder's dense positional encoding, a constant
  that sam2 recomputes on every decoder call (about a quarter of a click's time on CPU), is
  computed once.
"""
from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import tempfile
import time
import types
import warnings
from collections import OrderedDict
from pathlib import Path
from typing import Callable, Iterator

import numpy as np

from refvps.annotate.backends import Backend

OBJ_ID = 1
CHECKPOINT_CONFIGS = {
    "sam2.1_hiera_tiny": "configs/sam2.1/sam2.1_hiera_t.yaml",
    "sam2.1_hiera_small": "configs/sam2.1/sam2.1_hiera_s.yaml",
    "sam2.1_hiera_base_plus": "configs/sam2.1/sam2.1_hiera_b+.yaml",
    "sam2.1_hiera_large": "configs/sam2.1/sam2.1_hiera_l.yaml",
    "sam2_hiera_tiny": "configs/sam2/sam2_hiera_t.yaml",
    "sam2_hiera_small": "configs/sam2/sam2_hiera_s.yaml",
    "sam2_hiera_base_plus": "configs/sam2/sam2_hiera_b+.yaml",
    "sam2_hiera_large": "configs/sam2/sam2_hiera_l.yaml",
}
"""Checkpoint file stem -> the package-relative Hydra config it belongs to."""
CORRECTION_OVERRIDES = ("++model.add_all_frames_to_correct_as_cond=true",
                        "++model.clear_non_cond_mem_around_input=true")
CHECKPOINT_ENV = "REFVPS_SAM2_CHECKPOINT"


def config_for_checkpoint(checkpoint: str | Path) -> str:
    stem = Path(checkpoint).stem
    try:
        return CHECKPOINT_CONFIGS[stem]
    except KeyError:
        raise ValueError(f"{checkpoint}: cannot tell the SAM2 config from the file name; pass "
                         f"--sam2-config (e.g. configs/sam2.1/sam2.1_hiera_t.yaml)") from None


def _fp32_memory(module, args, kwargs):
    import torch

    for key in ("memory", "memory_pos"):
        value = kwargs.get(key)
        if value is not None and value.dtype != torch.float32:
            kwargs[key] = value.float()
    return args, kwargs


def _clear_obj_memory_around(self, inference_state, frame_idx, obj_idx):
    """Drop one object's non-conditioning memory within the memory window around a prompt."""
    reach = self.memory_temporal_stride_for_eval * self.num_maskmem
    outputs = inference_state["output_dict_per_obj"][obj_idx]["non_cond_frame_outputs"]
    for t in range(frame_idx - reach, frame_idx + reach + 1):
        outputs.pop(t, None)


def _computed_once(compute):
    """``compute()``'s first result, returned on every call (for a constant tensor)."""
    value = []

    def cached():
        if not value:
            value.append(compute())
        return value[0]

    return cached


def _nbytes(value) -> int:
    if isinstance(value, (list, tuple)):
        return sum(_nbytes(v) for v in value)
    if isinstance(value, dict):
        return sum(_nbytes(v) for v in value.values())
    return int(value.numel() * value.element_size()) if hasattr(value, "numel") else 0


class Sam2Backend(Backend):
    name = "sam2"
    feature_cache_bytes = 1 << 30
    """Memory for the cached image features of visited frames (per frame: see the benchmark)."""

    def __init__(self, checkpoint: str | Path | None = None, config: str | None = None,
                 device: str = "cpu", image_size: int | None = None,
                 random_weights: bool = False):
        checkpoint = checkpoint or os.environ.get(CHECKPOINT_ENV) or None
        if checkpoint is None and not random_weights:
            raise ValueError(f"the sam2 backend needs --sam2-checkpoint PATH (or ${CHECKPOINT_ENV})")
        if checkpoint is not None and not Path(checkpoint).is_file():
            raise ValueError(f"{checkpoint}: SAM2 checkpoint not found")
        self.checkpoint = None if checkpoint is None else Path(checkpoint)
        self.config = config or (config_for_checkpoint(checkpoint) if checkpoint
                                 else CHECKPOINT_CONFIGS["sam2.1_hiera_tiny"])
        self.device = device
        self.image_size = image_size
        self.overrides = list(CORRECTION_OVERRIDES)
        if image_size:
            self.overrides.append(f"++model.image_size={int(image_size)}")
        self._predictor = None
        self._state = None
        self._tmp: str | None = None
        self._sha256: str | None = None
        self._features: OrderedDict[int, tuple] = OrderedDict()
        self._feature_bytes: dict[int, int] = {}
        self._pos_enc: list | None = None
        self.encoded = 0
        """How many times the image encoder ran (the feature cache's misses)."""

    def load(self, report: Callable[[str], None] | None = None) -> None:
        started = time.perf_counter()
        self._build()
        if report is not None:
            weights = self.checkpoint.name if self.checkpoint else "random weights"
            report(f"sam2: {Path(self.config).stem} ({weights}) loaded on {self.device} in "
                   f"{time.perf_counter() - started:.1f} s")

    def _cached_image_feature(self, original, inference_state, frame_idx, batch_size):
        """sam2's ``_get_image_feature`` with an LRU cache of every visited frame in front."""
        entry = self._features.get(frame_idx)
        if entry is not None:
            self._features.move_to_end(frame_idx)
            inference_state["cached_features"] = {frame_idx: entry}
        elif frame_idx not in inference_state["cached_features"]:
            self.encoded += 1
        features = original(inference_state, frame_idx, batch_size)
        if entry is None and frame_idx in inference_state["cached_features"]:
            image, backbone_out = inference_state["cached_features"][frame_idx]
            pos = backbone_out["vision_pos_enc"]
            if self._pos_enc is None or [p.shape for p in self._pos_enc] != [p.shape for p in pos]:
                self._pos_enc = list(pos)
            backbone_out = dict(backbone_out, vision_pos_enc=self._pos_enc)
            self._features[frame_idx] = (image, backbone_out)
            self._feature_bytes[frame_idx] = _nbytes(image) + _nbytes(backbone_out["backbone_fpn"])
            while len(self._features) > 1 and sum(self._feature_bytes.values()) > \
                    self.feature_cache_bytes:
                evicted, _ = self._features.popitem(last=False)
                del self._feature_bytes[evicted]
        return features

    def prepare(self, k: int) -> None:
        import torch

        with torch.inference_mode(), self._context():
            self._predictor._get_image_feature(self._state, k, 1)

    def _build(self):
        if self._predictor is None:
            os.environ.setdefault("TQDM_DISABLE", "1")
            warnings.filterwarnings("ignore", message=".*cannot import name '_C'.*")
            from sam2.build_sam import build_sam2_video_predictor

            predictor = build_sam2_video_predictor(
                self.config, None if self.checkpoint is None else str(self.checkpoint),
                device=self.device, hydra_overrides_extra=self.overrides)
            if not hasattr(predictor, "_clear_obj_non_cond_mem_around_input"):
                predictor._clear_obj_non_cond_mem_around_input = types.MethodType(
                    _clear_obj_memory_around, predictor)
            if not self.device.startswith("cuda"):
                predictor.memory_attention.register_forward_pre_hook(_fp32_memory,
                                                                     with_kwargs=True)
            original = predictor._get_image_feature
            predictor._get_image_feature = lambda state, frame_idx, batch_size: \
                self._cached_image_feature(original, state, frame_idx, batch_size)
            predictor.sam_prompt_encoder.get_dense_pe = _computed_once(
                predictor.sam_prompt_encoder.get_dense_pe)
            self._predictor = predictor
        return self._predictor

    def _context(self):
        if self.device.startswith("cuda"):
            import torch

            return torch.autocast("cuda", dtype=torch.bfloat16)
        return contextlib.nullcontext()

    def open(self, frames: list[Path]) -> None:
        predictor = self._build()
        self._cleanup()
        self._features.clear()
        self._feature_bytes.clear()
        self._tmp = tempfile.mkdtemp(prefix="refvps-sam2-")
        for k, path in enumerate(frames):  # SAM2 orders a folder by int(stem): name them 0..n-1
            os.symlink(Path(path).resolve(), Path(self._tmp) / f"{k:05d}.jpg")
        with self._context():
            self._state = predictor.init_state(self._tmp, offload_video_to_cpu=True)

    def _mask(self, logits) -> np.ndarray:
        return (logits[0, 0] > 0.0).cpu().numpy()

    def click(self, k, points, labels, box=None):
        points = np.asarray(points, np.float32).reshape(-1, 2)
        labels = np.asarray(labels, np.int32).reshape(-1)
        if not len(points) and box is None:
            self.clear(k)
            return np.zeros(self._size(), bool)
        with self._context():
            _, _, logits = self._predictor.add_new_points_or_box(
                self._state, k, OBJ_ID, points=points if len(points) else None,
                labels=labels if len(points) else None, clear_old_points=True,
                box=None if box is None else np.asarray(box, np.float32))
        return self._mask(logits)

    def _size(self) -> tuple[int, int]:
        return (self._state["video_height"], self._state["video_width"])

    def set_mask(self, k, mask):
        with self._context():
            self._predictor.add_new_mask(self._state, k, OBJ_ID, np.asarray(mask, bool))

    def clear(self, k):
        if OBJ_ID in self._state["obj_id_to_idx"]:
            with self._context():
                self._predictor.clear_all_prompts_in_frame(self._state, k, OBJ_ID,
                                                           need_output=False)

    def propagate(self, start, reverse, steps) -> Iterator[tuple[int, np.ndarray]]:
        with self._context():
            for k, _, logits in self._predictor.propagate_in_video(
                    self._state, start_frame_idx=start, max_frame_num_to_track=steps,
                    reverse=reverse):
                if k != start:
                    yield k, self._mask(logits)

    def describe(self) -> dict:
        from importlib.metadata import version

        import torch

        if self.checkpoint is not None and self._sha256 is None:
            digest = hashlib.sha256()
            with open(self.checkpoint, "rb") as handle:
                for block in iter(lambda: handle.read(1 << 20), b""):
                    digest.update(block)
            self._sha256 = digest.hexdigest()
        return {"backend": self.name, "sam2": version("sam2"),
                "torch": torch.__version__, "config": self.config, "device": self.device,
                "checkpoint": None if self.checkpoint is None else self.checkpoint.name,
                "checkpoint_sha256": self._sha256, "overrides": self.overrides}

    def _cleanup(self) -> None:
        if self._tmp is not None:
            shutil.rmtree(self._tmp, ignore_errors=True)
            self._tmp = None

    def close(self) -> None:
        self._state = None
        self._features.clear()
        self._feature_bytes.clear()
        self._cleanup()
