"""A procedurally generated, deterministic Ref-VPS-format sample benchmark with predictions.

Ten short clips (24 fps frames, 6 fps annotations) cover all five concept groups with the kinds
of targets Ref-VPS is about: amorphous (smoke, lava), deforming (a melting candle), splitting
(shattering glass), appearing and disappearing (a bubble, a splash), with empty context frames
and Ignore bands on soft edges. Reference predictors of known quality are rendered from the same
analytic shapes, so ``perfect`` scores J = 1 exactly and the others rank predictably.
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import cv2
import numpy as np

from refvps.formats import (ANNOTATION_DIR, CONCEPT_GROUPS, CONCEPTS_FILE, EXPRESSIONS_PER_CLIP,
                            IGNORE_LABEL, JPEG_DIR, META_EXPRESSIONS, REFVPS_ANNO_FPS,
                            REFVPS_ANNO_STRIDE, REFVPS_FOLDER, REFVPS_FORMAT_FILE,
                            REFVPS_FORMAT_ID, REFVPS_FORMAT_TEXT, REFVPS_FPS, SPLITS_DIR,
                            frame_name)
from refvps.masks import write_binary_mask, write_label_mask

SAMPLE_VERSION = "1"
PREDICTORS = ("perfect", "eroded", "shifted", "flicker", "empty")
"""Reference predictors, best first by construction."""

Shape = Callable[[float, np.ndarray, np.ndarray], np.ndarray]


@dataclass(frozen=True)
class Clip:
    clip_id: str
    concept: str
    groups: tuple[str, ...]
    size: tuple[int, int]  # (height, width)
    n_frames: int
    shape: Shape  # (t in [0, 1], yy, xx) -> bool foreground
    colour: tuple[int, int, int]  # BGR of the target in the rendered frames
    expressions: tuple[str, str, str, str]  # annotator 0 (x2), annotator 1 (x2)
    soft_edges: bool = False  # Ignore band along the boundary
    ignore_box: tuple[float, float, float, float] | None = None  # y0, x0, y1, x1 (fractions)


def _ellipse(yy, xx, cy, cx, ry, rx):
    return ((yy - cy) / max(ry, 1e-6)) ** 2 + ((xx - cx) / max(rx, 1e-6)) ** 2 <= 1.0


def _candle(t, yy, xx):
    h, w = yy.shape
    top = 0.25 * h + 0.45 * h * t
    body = (xx >= 0.42 * w) & (xx <= 0.58 * w) & (yy >= top) & (yy <= 0.85 * h)
    puddle = _ellipse(yy, xx, 0.87 * h, 0.5 * w, 0.04 * h + 1, (0.08 + 0.25 * t) * w)
    return body | puddle


def _smoke(t, yy, xx):
    h, w = yy.shape
    cy, cx = (0.8 - 0.5 * t) * h, (0.45 + 0.1 * math.sin(6 * t)) * w
    radius = (0.12 + 0.2 * t) * min(h, w)
    angle = np.arctan2(yy - cy, xx - cx)
    wobble = 1 + 0.2 * np.sin(5 * angle + 9 * t)
    return np.hypot(yy - cy, xx - cx) <= radius * wobble


def _glass(t, yy, xx):
    h, w = yy.shape
    spread = max(0.0, t - 0.4) * 0.5
    out = np.zeros(yy.shape, bool)
    for dy, dx in ((-1, -1), (-1, 1), (1, -1), (1, 1)):
        cy, cx = (0.5 + dy * (0.08 + spread)) * h, (0.5 + dx * (0.08 + spread)) * w
        out |= (np.abs(yy - cy) <= 0.08 * h) & (np.abs(xx - cx) <= 0.08 * w)
    return out


def _wave(t, yy, xx):
    h, w = yy.shape
    level = (0.85 - 0.35 * t) * h + 0.08 * h * np.sin(2 * math.pi * (xx / w * 2 + 3 * t))
    return yy >= level


def _bubble(t, yy, xx):
    h, w = yy.shape
    if t < 0.15 or t > 0.75:  # context frames before it appears and after it pops
        return np.zeros(yy.shape, bool)
    return _ellipse(yy, xx, 0.5 * h, 0.5 * w, (0.05 + 0.5 * (t - 0.15)) * h,
                    (0.05 + 0.5 * (t - 0.15)) * h)


def _flame(t, yy, xx):
    h, w = yy.shape
    height = (0.3 + 0.12 * math.sin(23 * t) + 0.06 * math.sin(41 * t)) * h
    base = 0.8 * h
    rel = np.clip((base - yy) / max(height, 1), 0, 1)
    half = 0.12 * w * np.sqrt(np.clip(1 - rel, 0, 1)) * (yy <= base) * (yy >= base - height)
    return np.abs(xx - 0.5 * w) <= half


def _ice(t, yy, xx):
    h, w = yy.shape
    reach = (0.15 + 0.7 * t) * max(h, w)
    jag = 1 + 0.1 * np.sin(yy * 0.9) * np.cos(xx * 0.7)
    return np.hypot(yy, xx) <= reach * jag  # grows from the top-left corner, touching borders


def _clouds(t, yy, xx):
    h, w = yy.shape
    shift = (1.4 * t - 0.3) * w
    return (_ellipse(yy, xx, 0.3 * h, shift, 0.15 * h, 0.25 * w)
            | _ellipse(yy, xx, 0.4 * h, shift + 0.3 * w, 0.12 * h, 0.18 * w))


def _splash(t, yy, xx):
    h, w = yy.shape
    if t < 0.3:  # before the ball hits the bottle
        return np.zeros(yy.shape, bool)
    s = (t - 0.3) / 0.7
    drops = np.zeros(yy.shape, bool)
    for k in range(5):
        angle = -math.pi / 2 + (k - 2) * 0.5
        cy = 0.55 * h + math.sin(angle) * 0.35 * h * s
        cx = 0.5 * w + math.cos(angle) * 0.35 * w * s
        drops |= _ellipse(yy, xx, cy, cx, 0.05 * h + 1, 0.05 * w + 1)
    return drops


def _lava(t, yy, xx):
    h, w = yy.shape
    front = (0.2 + 0.7 * t) * w
    band = np.abs(yy - (0.6 * h + 0.1 * h * np.sin(xx / w * 6))) <= 0.12 * h
    return band & (xx <= front + 0.05 * w * np.sin(yy / h * 12 + 5 * t))


CLIPS: tuple[Clip, ...] = (
    Clip("vps_0001", "wax_candle_melting", ("temporal_object_changes",), (120, 160), 37, _candle,
         (40, 200, 240), ("the melting wax candle", "the candle slowly melting into a puddle",
                          "the wax that melts down", "the candle and the spreading wax puddle")),
    Clip("vps_0002", "smoke_dispersing", ("pattern_evolution", "motion_patterns"), (97, 131), 41,
         _smoke, (200, 200, 200),
         ("the smoke rising", "the grey smoke drifting up and spreading",
          "the café steam rising", "the cloud of smoke that expands while it floats upwards"),
         soft_edges=True),
    Clip("vps_0003", "glass_shattering", ("interaction_sequences", "temporal_object_changes"),
         (112, 144), 33, _glass, (230, 180, 90),
         ("the shattering glass", "the glass pane breaking into pieces",
          "the glass splitting apart", "the four shards of glass flying away from each other")),
    Clip("vps_0004", "wave_rising", ("dynamic_environmental_changes",), (96, 160), 29, _wave,
         (200, 120, 30), ("the rising wave", "the water rising up the frame",
                          "the wave", "the sea water surging upwards")),
    Clip("vps_0005", "bubble_popping", ("temporal_object_changes",), (100, 100), 45, _bubble,
         (220, 120, 220), ("the popping bubble", "the soap bubble that grows and then pops",
                           "the bubble", "the round bubble in the middle")),
    Clip("vps_0006", "flame_flickering", ("motion_patterns",), (160, 96), 33, _flame,
         (30, 140, 255), ("the flickering flame", "the candle flame moving",
                          "the fire", "the orange flame that flickers up and down"),
         soft_edges=True),
    Clip("vps_0007", "ice_forming", ("pattern_evolution", "temporal_object_changes"), (90, 120),
         25, _ice, (250, 230, 200), ("the ice forming", "the frost spreading from the corner",
                                     "the growing ice", "the ice crystals covering the glass")),
    Clip("vps_0008", "clouds_moving", ("dynamic_environmental_changes",), (108, 192), 37,
         _clouds, (245, 245, 245),
         ("the clouds moving across the sky", "the white clouds",
          "the clouds drifting to the right", "the two clouds passing by"), soft_edges=True),
    Clip("vps_0009", "bottle_broken_by_ball", ("interaction_sequences",), (120, 120), 33,
         _splash, (60, 200, 60),
         ("the liquid splashing", "the green liquid bursting out of the bottle",
          "the splash", "the drops of green liquid that fly out of the bottle after the ball "
          "hits it and breaks the glass into many small pieces which then fall down slowly "
          "to the ground"), ignore_box=(0.45, 0.4, 0.65, 0.6)),
    Clip("vps_0010", "lava_flowing", ("motion_patterns", "dynamic_environmental_changes"),
         (99, 151), 41, _lava, (20, 60, 230),
         ("the lava flowing", "the molten lava moving to the right",
          "the glowing lava stream", "the lava"), soft_edges=True),
)


def _grid(size: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    return np.mgrid[:size[0], :size[1]].astype(np.float64)


def _anno_indices(n_frames: int) -> list[int]:
    return list(range(0, n_frames, REFVPS_ANNO_STRIDE))


def _labels(clip: Clip, fg: np.ndarray) -> np.ndarray:
    labels = fg.astype(np.uint8)
    if clip.soft_edges and fg.any():
        kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (5, 5))
        mask = fg.astype(np.uint8)
        band = (cv2.dilate(mask, kernel) > 0) & ~(cv2.erode(mask, kernel) > 0)
        labels[band] = IGNORE_LABEL
    if clip.ignore_box is not None:
        h, w = fg.shape
        y0, x0, y1, x1 = clip.ignore_box
        labels[int(y0 * h):int(y1 * h), int(x0 * w):int(x1 * w)] = IGNORE_LABEL
    return labels


def _render(clip: Clip, fg: np.ndarray, index: int, rng: np.random.Generator) -> np.ndarray:
    h, w = fg.shape
    yy, xx = _grid((h, w))
    background = np.stack([60 + 40 * yy / h, 70 + 30 * xx / w, 90 + 0 * xx], axis=-1)
    image = background + rng.normal(0, 6, (h, w, 3))
    image[fg] = np.array(clip.colour, np.float64) + rng.normal(0, 10, (int(fg.sum()), 3))
    return np.clip(image, 0, 255).astype(np.uint8)


def _predict(name: str, fg: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    if name == "perfect":
        return fg
    if name == "empty":
        return np.zeros_like(fg)
    if name == "eroded":
        kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (5, 5))
        return cv2.erode(fg.astype(np.uint8), kernel) > 0
    if name == "shifted":
        out = np.zeros_like(fg)
        out[3:, 4:] = fg[:-3, :-4]
        return out
    if name == "flicker":  # right on most frames, empty on a random third of them
        return fg if rng.random() > 0.35 else np.zeros_like(fg)
    raise ValueError(f"unknown predictor {name!r}")


@dataclass(frozen=True)
class Sample:
    root: Path  # the data root (holds ref-vps/)
    dataset: Path  # root / "ref-vps"
    predictions: dict[str, Path]  # predictor -> predictions folder


def concepts_document() -> dict:
    """The sample's ``concepts.json``: all five groups and the sample's concepts."""
    return {
        "groups": [{"id": gid, "name": name, "definition": definition}
                   for gid, name, definition in CONCEPT_GROUPS],
        "concepts": [{"id": c.concept, "name": c.concept.replace("_", " "), "groups": list(c.groups)}
                     for c in CLIPS],
    }


def make_sample(out: str | Path, predictions: bool = True) -> Sample:
    """Write the sample benchmark under ``out`` (``out/ref-vps``) and, optionally, predictions of
    every reference predictor under ``out/predictions/<name>``. Deterministic: same bytes each run.
    """
    out = Path(out)
    dataset = out / REFVPS_FOLDER
    dataset.mkdir(parents=True, exist_ok=True)
    (dataset / REFVPS_FORMAT_FILE).write_text(REFVPS_FORMAT_TEXT + "\n", encoding="utf-8")
    videos = {}
    pred_roots = {name: out / "predictions" / name for name in PREDICTORS} if predictions else {}
    for number, clip in enumerate(CLIPS):
        rng = np.random.default_rng(1000 + number)
        yy, xx = _grid(clip.size)
        frames = [frame_name(i) for i in range(clip.n_frames)]
        anno = _anno_indices(clip.n_frames)
        (dataset / JPEG_DIR / clip.clip_id).mkdir(parents=True, exist_ok=True)
        shapes = [clip.shape(i / (clip.n_frames - 1), yy, xx) for i in range(clip.n_frames)]
        for index, fg in enumerate(shapes):
            cv2.imwrite(str(dataset / JPEG_DIR / clip.clip_id / f"{frames[index]}.jpg"),
                        _render(clip, fg, index, rng), [cv2.IMWRITE_JPEG_QUALITY, 95])
            if index in anno:
                write_label_mask(dataset / ANNOTATION_DIR / clip.clip_id / f"{frames[index]}.png",
                                 _labels(clip, fg))
        expressions = {}
        for k, text in enumerate(clip.expressions):
            expressions[str(k)] = {"exp": text, "obj_id": [1], "annotator": k // 2,
                                   "exp_idx": k % 2}
        assert len(expressions) == EXPRESSIONS_PER_CLIP
        videos[clip.clip_id] = {
            "fps": REFVPS_FPS, "anno_fps": REFVPS_ANNO_FPS, "anno_stride": REFVPS_ANNO_STRIDE,
            "anno_offset": 0, "height": clip.size[0], "width": clip.size[1],
            "frames": frames, "anno_frames": [frames[i] for i in anno],
            "concept": clip.concept, "concept_groups": list(clip.groups),
            "expressions": expressions,
        }
        for name, root in pred_roots.items():
            pred_rng = np.random.default_rng(7 * number + 1)
            masks = [_predict(name, fg, pred_rng) for fg in shapes]
            for exp_id in expressions:
                for frame, mask in zip(frames, masks):
                    write_binary_mask(root / clip.clip_id / exp_id / f"{frame}.png", mask)
    meta = {"format": REFVPS_FORMAT_ID, "sample_version": SAMPLE_VERSION, "videos": videos}
    (dataset / META_EXPRESSIONS).write_text(json.dumps(meta, indent=1, ensure_ascii=False) + "\n",
                                            encoding="utf-8")
    (dataset / CONCEPTS_FILE).write_text(json.dumps(concepts_document(), indent=1) + "\n",
                                         encoding="utf-8")
    (dataset / SPLITS_DIR).mkdir(exist_ok=True)
    (dataset / SPLITS_DIR / "test.txt").write_text("".join(f"{c.clip_id}\n" for c in CLIPS),
                                                   encoding="utf-8")
    return Sample(out, dataset, pred_roots)
