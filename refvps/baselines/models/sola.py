"""SOLA (cvlab-kaist/SOLA): SAM2 mask tracks + a language-aligned track selector.

Per video (cached for all its expressions), the grid tracks of upstream's
``track_generation/generate_prompts_grid.py`` + ``generate_tokens_grid.py``: SAM2 automatic
masks on the keyframes ``frames[::bin_size]`` (``bin_size=0``: ``T // 2``, upstream's eval
setting), part masks dropped (more than 0.7 of a mask inside a larger kept one), then *all*
prompts sorted by area, largest first. Batches of up to ``batch_size`` prompts (2 for videos
over 200 frames), all from the keyframe of the largest prompt not yet handled, are tracked
forward and backward with the SAM2 video predictor; after every batch the prompts left are
dropped when a new masklet covers them (IoU > ``iou_threshold`` on upstream's 540 x 960 grid),
until ``max_tracks`` tracks exist. Per expression (``inference.py``): the tokenizer and text
model named by the config, the selector's score per track, ``sigmoid > threshold``, the union
of the selected masklets.

Worked around (docs/baselines.md §0, §4.4): sam2 1.1.0 keeps per-object outputs
(``output_dict_per_obj``) where upstream read ``output_dict``; the tokenizer is called
directly (transformers 5 has no ``batch_encode_plus``); one ``bin_size`` for prompts and
tracks (upstream's README pairs ``--bin_size 0`` with ``--bin_size 4``, which its own
assertion rejects for most videos); an expression without any track gets an empty mask
instead of upstream's assertion error. Not reproduced: the GroundingDINO prompt tracks (grid
tracks only), so numbers can be below the paper's. No selector checkpoint is released.
"""
from __future__ import annotations

import hashlib
import os
import tempfile
from dataclasses import dataclass
from typing import Callable, Dict, List, NamedTuple, Optional, Sequence, Tuple

import numpy as np

from refvps.baselines.base import BaseSegmenter
from refvps.baselines.models.common import enter_upstream, repo_problem, set_offline, with_repo_check
from refvps.baselines.protocol import VideoInput

PART_CONTAINMENT = 0.7  # generate_prompts_grid.py: is_part[P > 0.7]
IOU_GRID = {True: (960, 540), False: (540, 960)}  # seg_utils.reshape_masklet: portrait / landscape


def keyframes(n_frames: int, bin_size: int) -> List[int]:
    """Prompt frames, as ``frames[::bin_size]`` in generate_prompts_grid.py (0: ``T // 2``)."""
    step = bin_size if bin_size > 0 else n_frames // 2
    return list(range(0, n_frames, max(step, 1)))


def drop_part_masks(masks: Sequence[np.ndarray], containment: float = PART_CONTAINMENT) -> List[int]:
    """Indices of the masks kept by upstream's part filter, largest first (stable on ties).

    A mask whose area is more than ``containment`` inside a larger kept mask is a part. Empty
    masks are kept, as upstream's ``0 / 0 = nan`` never exceeds the threshold.
    """
    order = sorted(range(len(masks)), key=lambda i: -int(masks[i].sum()))
    kept: List[int] = []
    for index in order:
        area = int(masks[index].sum())
        if area and any((masks[index] & masks[k]).sum() / area > containment for k in kept):
            continue
        kept.append(index)
    return kept


class Prompt(NamedTuple):
    frame_idx: int
    mask: np.ndarray  # H x W bool
    area: int


def sorted_prompts(proposals: Dict[int, List[np.ndarray]]) -> List[Prompt]:
    """Keyframe -> SAM2 masks, to the prompts of all keyframes by area, largest first."""
    prompts = []
    for frame_idx in sorted(proposals):
        masks = proposals[frame_idx]
        prompts += [Prompt(frame_idx, masks[i], int(masks[i].sum())) for i in drop_part_masks(masks)]
    return sorted(prompts, key=lambda p: -p.area)


def mask_iou(a: np.ndarray, b: np.ndarray) -> float:
    """seg_utils.compute_mask_iou: 1.0 when both masks are empty."""
    union = int(np.logical_or(a, b).sum())
    return float(np.logical_and(a, b).sum() / union) if union else 1.0


TrackFn = Callable[[int, List[np.ndarray]], List[Tuple[np.ndarray, np.ndarray]]]
IouFn = Callable[[np.ndarray, np.ndarray], float]


def grid_tracks(prompts: Sequence[Prompt], track: TrackFn, n_frames: int, *, batch_size: int = 4,
                max_tracks: int = 64, iou_threshold: float = 0.7,
                iou: IouFn = mask_iou) -> List[Tuple[int, np.ndarray, np.ndarray]]:
    """The track loop of generate_tokens_grid.py: ``[(prompt_index, masklet, tokens)]`` in
    prompt order.

    ``track(frame_idx, masks)`` propagates one batch of prompt masks through the video and
    returns ``(T x H x W masklet, T x D tokens)`` per prompt. ``iou(masklet_frame, prompt_mask)``
    decides whether a prompt still waiting is covered by a new masklet.
    """
    waiting = [True] * len(prompts)
    found: Dict[int, Tuple[np.ndarray, np.ndarray]] = {}
    limit = 2 if n_frames > 200 else batch_size
    while len(found) < max_tracks:
        batch: List[int] = []
        for index, prompt in enumerate(prompts):
            if not waiting[index] or (batch and prompt.frame_idx != prompts[batch[0]].frame_idx):
                continue
            batch.append(index)
            waiting[index] = False
            if len(batch) >= limit or len(found) + len(batch) >= max_tracks:
                break
        if not batch:
            break
        frame_idx = prompts[batch[0]].frame_idx
        for index, (masklet, tokens) in zip(batch, track(frame_idx, [prompts[i].mask for i in batch])):
            found[index] = (masklet, tokens)
            for other, prompt in enumerate(prompts):
                if waiting[other] and iou(masklet[prompt.frame_idx], prompt.mask) > iou_threshold:
                    waiting[other] = False
    return [(index, *found[index]) for index in sorted(found)]


def sola_union(masklets: np.ndarray, probs: np.ndarray, threshold: float) -> np.ndarray:
    """N x T x H x W masklets, N probabilities -> T x H x W union of those above threshold."""
    selected = probs > threshold
    if masklets.shape[0] == 0 or not selected.any():
        return np.zeros(masklets.shape[1:], bool)
    return masklets[selected].any(axis=0)


def upstream_grid_iou(masklet_frame: np.ndarray, prompt_mask: np.ndarray) -> float:
    """IoU as generate_tokens_grid.py computes it: the masklet frame resized bilinearly to the
    540 x 960 grid (``> 0.5``), the prompt mask by nearest neighbour to the same grid."""
    import torch
    import torch.nn.functional as F

    height, width = masklet_frame.shape
    size = IOU_GRID[not height < width]
    pred = F.interpolate(torch.from_numpy(masklet_frame).float()[None, None], size=size,
                         mode="bilinear") > 0.5
    prompt = F.interpolate(torch.from_numpy(prompt_mask).float()[None, None], size=size,
                           mode="nearest") > 0.5
    return mask_iou(pred[0, 0].numpy(), prompt[0, 0].numpy())


def torchvision_check():
    """torchvision imports and its NMS operator runs (SAM2's automatic mask generator needs it)."""
    from refvps.baselines.doctor import FAIL, OK, Check, package_version

    torch_version = package_version("torch") or "?"
    parts = torch_version.split("+")[0].split(".")
    pair = f"0.{int(parts[1]) + 15}" if parts[0] == "2" and len(parts) > 1 else "the matching release"
    fix = (f"pip install torchvision=={pair}.* (the release built for torch {torch_version}); "
           "SAM2's automatic mask generator imports torchvision.ops")
    try:
        import torch
        from torchvision.ops.boxes import batched_nms

        keep = batched_nms(torch.tensor([[0.0, 0, 2, 2], [0, 0, 2, 2]]), torch.tensor([0.9, 0.8]),
                           torch.tensor([0, 0]), 0.5)
    except Exception as exc:
        return Check("torchvision", FAIL, f"{type(exc).__name__}: {exc}", fix)
    if keep.tolist() != [0]:
        return Check("torchvision", FAIL, f"batched_nms gave {keep.tolist()}, expected [0]", fix)
    return Check("torchvision", OK, f"{package_version('torchvision')}, NMS operator works")


SAM2_API = {
    "sam2.build_sam": ("build_sam2", "build_sam2_video_predictor"),
    "sam2.automatic_mask_generator": ("SAM2AutomaticMaskGenerator",),
    "sam2.sam2_video_predictor": ("SAM2VideoPredictor",),
}
SAM2_STATE_KEYS = ("output_dict_per_obj", "obj_id_to_idx")


def sam2_api_problems() -> List[str]:
    """What this wrapper calls in sam2 and the installed sam2 lacks (empty: all there)."""
    import importlib
    import inspect

    problems = []
    found = {}
    for module, names in SAM2_API.items():
        try:
            mod = importlib.import_module(module)
        except ModuleNotFoundError as exc:
            if exc.name != "torchvision":  # reported by the torchvision check
                problems.append(f"import {module}: {exc}")
            continue
        except Exception as exc:
            problems.append(f"import {module}: {type(exc).__name__}: {exc}")
            continue
        for name in names:
            if not hasattr(mod, name):
                problems.append(f"{module}.{name} missing")
            else:
                found[name] = getattr(mod, name)
    calls = {"build_sam2": ("hydra_overrides_extra",),
             "build_sam2_video_predictor": ("hydra_overrides_extra",),
             "SAM2AutomaticMaskGenerator": ("points_per_side", "pred_iou_thresh",
                                            "stability_score_thresh")}
    for name, params in calls.items():
        if name in found:
            accepted = inspect.signature(found[name]).parameters
            problems += [f"{name}() takes no {p}" for p in params if p not in accepted]
    predictor = found.get("SAM2VideoPredictor")
    if predictor is not None:
        for method in ("init_state", "add_new_mask", "propagate_in_video", "reset_state"):
            if not hasattr(predictor, method):
                problems.append(f"SAM2VideoPredictor.{method} missing")
        if hasattr(predictor, "init_state"):
            source = inspect.getsource(predictor.init_state)
            problems += [f"SAM2VideoPredictor.init_state keeps no {key!r} (refvps reads each "
                         f"track's obj_ptr tokens from it)" for key in SAM2_STATE_KEYS
                         if key not in source]
    return problems


def sam2_api_check():
    from refvps.baselines.doctor import FAIL, OK, Check, package_version

    fix = ("pip install --no-deps sam2==1.1.0 (with hydra-core and iopath); see "
           "docs/models/sola.md")
    try:
        import sam2
    except Exception as exc:
        return Check("sam2", FAIL, f"{type(exc).__name__}: {exc}", fix)
    where = os.path.dirname(sam2.__file__ or "") if getattr(sam2, "__file__", None) else "?"
    label = f"sam2 {package_version('sam2') or '?'} at {where}"
    problems = sam2_api_problems()
    if problems:
        return Check(label, FAIL, "API differs from what refvps calls: " + "; ".join(problems), fix)
    return Check(label, OK, "API as refvps calls it (per-object video outputs)")


def selector_checkpoint_problem(module, path: str) -> str:
    """Why ``path`` does not load into ``module`` strictly, as inference.py loads it ('' if it does)."""
    import torch

    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        return f"torch.load failed: {type(exc).__name__}: {str(exc)[:300]}"
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        keys = list(state)[:5] if isinstance(state, dict) else type(state).__name__
        return f"not a state_dict of tensors (train.py saves module.state_dict()); found {keys}"
    expected = module.state_dict()
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    shapes = [f"{k}: {tuple(state[k].shape)} vs {tuple(v.shape)}" for k, v in expected.items()
              if k in state and tuple(state[k].shape) != tuple(v.shape)]
    parts = []
    if missing:
        parts.append(f"{len(missing)} missing keys (e.g. {missing[0]})")
    if unexpected:
        parts.append(f"{len(unexpected)} unexpected keys (e.g. {unexpected[0]})")
    if shapes:
        parts.append(f"{len(shapes)} shape mismatches (e.g. {shapes[0]}; checkpoint vs config)")
    return "; ".join(parts)


@dataclass
class SOLAConfig:
    repo: str = ""  # SOLA checkout
    checkpoint: str = ""  # your trained selector epoch_N.pth (train.py's state_dict; none is released)
    config: str = ""  # SOLA yaml (default: configs/mevis/default.yaml in the checkout)
    sam2_checkpoint: str = ""  # e.g. sam2_hiera_large.pt
    sam2_config: str = "sam2_hiera_l.yaml"  # a config name inside the sam2 package
    sam2_overrides: str = ""  # extra hydra overrides for both SAM2 builders, space-separated
    roberta: str = ""  # text model (default: the config's model.roberta_version)
    device: str = "cuda"
    bin_size: int = 0  # keyframes frames[::bin_size]; 0 = T // 2 (upstream's eval prompts)
    batch_size: int = 4  # prompts tracked together (2 for videos over 200 frames)
    max_tracks: int = 64
    iou_threshold: float = 0.7
    points_per_side: int = 32  # SAM2AutomaticMaskGenerator defaults, as upstream uses them
    pred_iou_thresh: float = 0.8
    stability_score_thresh: float = 0.95
    threshold: float = 0.5
    offline: bool = True


class SOLA(BaseSegmenter):
    """SOLA, SAM2 tracks + language-aligned track selection (cvlab-kaist/SOLA)."""

    name = "sola"
    version = "2"
    upstream = "cvlab-kaist/SOLA@4b0adf8"
    needs_gpu = True
    Config = SOLAConfig
    packages = ("torch", "torchvision", "sam2", "transformers", "yaml")
    path_fields = ("repo", "checkpoint", "sam2_checkpoint")

    def requirements(self):
        return with_repo_check(super().requirements(), self.config.repo, "SOLA")

    def config_path(self) -> str:
        return self.config.config or os.path.join(self.config.repo, "configs", "mevis", "default.yaml")

    def model_config(self) -> dict:
        import yaml

        with open(self.config_path(), encoding="utf-8") as handle:
            return yaml.safe_load(handle)["model"]

    def load(self) -> None:
        import torch
        from sam2.automatic_mask_generator import SAM2AutomaticMaskGenerator
        from sam2.build_sam import build_sam2, build_sam2_video_predictor
        from transformers import AutoModel, AutoTokenizer

        cfg = self.config
        set_offline(cfg.offline)
        model_cfg = self.model_config()
        enter_upstream(cfg.repo)
        from module.module import LanguageAlignedTrackSelectionModule

        self.selector = LanguageAlignedTrackSelectionModule(model_cfg).to(cfg.device)
        self.selector.load_state_dict(torch.load(cfg.checkpoint, map_location="cpu",
                                                 weights_only=True))
        self.selector.eval()
        text_model = cfg.roberta or model_cfg["roberta_version"]
        self.tokenizer = AutoTokenizer.from_pretrained(text_model)
        self.roberta = AutoModel.from_pretrained(text_model).to(cfg.device).eval()
        overrides = cfg.sam2_overrides.split()
        # generate_prompts_grid.py passes apply_postprocess=False, a misspelt keyword that
        # build_sam2 ignores: the default post-processing is what upstream ran.
        self.generator = SAM2AutomaticMaskGenerator(
            build_sam2(cfg.sam2_config, cfg.sam2_checkpoint, device=cfg.device,
                       hydra_overrides_extra=overrides),
            points_per_side=cfg.points_per_side, pred_iou_thresh=cfg.pred_iou_thresh,
            stability_score_thresh=cfg.stability_score_thresh)
        self.predictor = build_sam2_video_predictor(cfg.sam2_config, cfg.sam2_checkpoint,
                                                    device=cfg.device,
                                                    hydra_overrides_extra=overrides)
        self._cache: Dict[str, tuple] = {}

    # --- doctor -------------------------------------------------------------------------------
    def doctor_checks(self):
        """What ``refvps models doctor sola`` checks beyond paths and torch (see doctor.py)."""
        from refvps.baselines.doctor import FAIL, OK, Check, hub_model_check, try_import

        cfg = self.config
        yield torchvision_check()
        yield sam2_api_check()
        found = try_import("transformers", "pip install 'transformers>=4.30' (4.x and 5.x work)")
        if found.status == OK:
            major = found.detail.split(".")[0]
            found = Check("transformers", OK, found.detail + f" (major {major}; refvps calls the "
                          "tokenizer directly, which 4.x and 5.x both support)")
        yield found
        if repo_problem(cfg.repo, "SOLA"):
            yield Check("SOLA entry point", FAIL, "not imported: the repo is not a SOLA checkout",
                        "git clone https://github.com/cvlab-kaist/SOLA and pass --model-arg repo=DIR")
            return
        try:
            model_cfg = self.model_config()
        except Exception as exc:
            yield Check(f"SOLA config {self.config_path()}", FAIL, f"{type(exc).__name__}: {exc}",
                        "pass --model-arg config=FILE, a SOLA yaml with a 'model' section")
            return
        yield Check(f"SOLA config {self.config_path()}", OK,
                    f"lang_token_dim {model_cfg.get('lang_token_dim')}, "
                    f"object_token_dim {model_cfg.get('object_token_dim')}")
        yield from self._selector_checks(model_cfg)
        text_model = cfg.roberta or model_cfg.get("roberta_version", "")
        yield hub_model_check(f"text model {text_model}", text_model, cfg.offline)
        yield from self._sam2_checkpoint_checks()

    def _selector_checks(self, model_cfg: dict):
        from refvps.baselines.base import file_sha256
        from refvps.baselines.doctor import FAIL, OK, Check

        cfg = self.config
        try:
            enter_upstream(cfg.repo, chdir=False)
            from module.module import LanguageAlignedTrackSelectionModule
        except Exception as exc:
            yield Check("SOLA entry point module.module", FAIL, f"{type(exc).__name__}: {exc}",
                        "the checkout must be cvlab-kaist/SOLA at 4b0adf8 with its packages installed")
            return
        yield Check("SOLA entry point module.module", OK, "LanguageAlignedTrackSelectionModule")
        if not os.path.isfile(cfg.checkpoint):
            return  # reported with the paths
        problem = selector_checkpoint_problem(LanguageAlignedTrackSelectionModule(model_cfg),
                                              cfg.checkpoint)
        if problem:
            yield Check(f"selector checkpoint {cfg.checkpoint}", FAIL, problem,
                        "pass the epoch_N.pth that SOLA's train.py wrote with this config")
            return
        yield Check(f"selector checkpoint {cfg.checkpoint}", OK,
                    f"all keys match; sha256 {file_sha256(cfg.checkpoint)[:16]}... "
                    "(SOLA publishes no selector weights or checksums)")

    def _sam2_checkpoint_checks(self):
        from refvps.baselines.base import file_sha256
        from refvps.baselines.doctor import FAIL, OK, Check

        cfg = self.config
        if not os.path.isfile(cfg.sam2_checkpoint):
            return
        what = f"SAM2 checkpoint {cfg.sam2_checkpoint} ({cfg.sam2_config})"
        try:
            from sam2.build_sam import build_sam2

            build_sam2(cfg.sam2_config, cfg.sam2_checkpoint, device="cpu",
                       hydra_overrides_extra=cfg.sam2_overrides.split())
        except Exception as exc:
            yield Check(what, FAIL, f"{type(exc).__name__}: {str(exc)[:400]}",
                        "pass the .pt file that matches sam2_config (e.g. sam2_hiera_large.pt "
                        "with sam2_hiera_l.yaml)")
            return
        yield Check(what, OK, f"loads into the config's model; sha256 "
                    f"{file_sha256(cfg.sam2_checkpoint)[:16]}...")

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

    def _autocast(self):
        import torch

        cuda = str(self.config.device).startswith("cuda")
        return torch.autocast("cuda" if cuda else "cpu", torch.bfloat16, enabled=cuda)

    def _track(self, folder: str, frames: List[np.ndarray]):
        import torch

        cfg = self.config
        n_frames = len(frames)
        with torch.inference_mode(), self._autocast():
            proposals = {t: [m["segmentation"].astype(bool) for m in self.generator.generate(frames[t])]
                         for t in keyframes(n_frames, cfg.bin_size)}
            state = self.predictor.init_state(video_path=folder, offload_video_to_cpu=True,
                                              offload_state_to_cpu=True)
            found = grid_tracks(sorted_prompts(proposals),
                                lambda t, masks: self._propagate(state, t, masks, n_frames),
                                n_frames, batch_size=cfg.batch_size, max_tracks=cfg.max_tracks,
                                iou_threshold=cfg.iou_threshold, iou=upstream_grid_iou)
        if not found:
            height, width = frames[0].shape[:2]
            return np.zeros((0, n_frames, height, width), bool), np.zeros((0, n_frames, 256), np.float32)
        return np.stack([m for _, m, _ in found]), np.stack([k for _, _, k in found])

    def _propagate(self, state, frame_idx: int, prompts: List[np.ndarray], n_frames: int):
        """Track one batch of prompt masks from ``frame_idx`` forward and backward; the masklets
        (logits > 0) and per-frame ``obj_ptr`` tokens of each prompt."""
        self.predictor.reset_state(state)
        masks: List[List[Optional[np.ndarray]]] = [[None] * n_frames for _ in prompts]
        for obj_id, prompt in enumerate(prompts):
            self.predictor.add_new_mask(inference_state=state, frame_idx=frame_idx, obj_id=obj_id,
                                        mask=prompt)
        for reverse in (False, True):
            for t, _ids, logits in self.predictor.propagate_in_video(state, reverse=reverse):
                for obj_id in range(len(prompts)):
                    masks[obj_id][t] = (logits[obj_id] > 0).cpu().numpy()[0]
        out = []
        for obj_id in range(len(prompts)):
            per_obj = state["output_dict_per_obj"][state["obj_id_to_idx"][obj_id]]
            tokens: List[Optional[np.ndarray]] = [None] * n_frames
            for kind in ("cond_frame_outputs", "non_cond_frame_outputs"):
                for t, output in per_obj[kind].items():
                    tokens[t] = output["obj_ptr"][0].float().cpu().numpy()
            missing = [t for t in range(n_frames) if masks[obj_id][t] is None or tokens[t] is None]
            if missing:
                raise RuntimeError(f"SAM2 returned no output for frame {missing[0]} of a track")
            out.append((np.stack(masks[obj_id]), np.stack(tokens)))
        return out

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
                lang = self.tokenizer([expression], padding="longest",
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
