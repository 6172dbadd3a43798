"""Format constants shared by loaders, writers, the sample generator and the annotator.

Each on-disk convention is defined here once; every other module imports it from here.
"""
from __future__ import annotations

import numpy as np

# --- masks -------------------------------------------------------------------------------
IGNORE_LABEL = 255
"""Label value of Ignore (Ref-VPS) / void (DAVIS) pixels in palette annotation PNGs."""

MASK_EXT = ".png"
FRAME_EXT = ".jpg"


def frame_name(index: int) -> str:
    """Frame file stem used by DAVIS, MeViS, Ref-YouTube-VOS and Ref-VPS: ``%05d``."""
    return f"{index:05d}"


def voc_palette() -> np.ndarray:
    """The PASCAL VOC colour map (256 x 3, uint8) used by DAVIS-style palette PNGs."""
    palette = np.zeros((256, 3), dtype=np.uint8)
    for index in range(256):
        red = green = blue = 0
        value = index
        for bit in range(8):
            red |= ((value >> 0) & 1) << (7 - bit)
            green |= ((value >> 1) & 1) << (7 - bit)
            blue |= ((value >> 2) & 1) << (7 - bit)
            value >>= 3
        palette[index] = (red, green, blue)
    return palette


# --- Ref-VPS (refvps-format 0.1, a proposal until the official release) --------------------
REFVPS_FOLDER = "ref-vps"
REFVPS_FORMAT_FILE = "FORMAT"
REFVPS_FORMAT_TEXT = "refvps-format 0.1 (proposal)"
REFVPS_FORMAT_ID = "refvps-0.1"
REFVPS_FPS = 24
REFVPS_ANNO_FPS = 6
REFVPS_ANNO_STRIDE = REFVPS_FPS // REFVPS_ANNO_FPS
META_EXPRESSIONS = "meta_expressions.json"
CONCEPTS_FILE = "concepts.json"
SPLITS_DIR = "splits"
JPEG_DIR = "JPEGImages"
ANNOTATION_DIR = "Annotations"
EXPRESSIONS_PER_CLIP = 4

CONCEPT_GROUPS: tuple[tuple[str, str, str], ...] = (
    ("temporal_object_changes", "Temporal Object Changes",
     "An object's state or shape evolves over time (deformation, melting)."),
    ("motion_patterns", "Motion Patterns",
     "Motion in amorphous or non-rigid regions (water ripples, flickering flames)."),
    ("dynamic_environmental_changes", "Dynamic Environmental Changes",
     "Environmental transformations affecting spatial regions over time (clouds, rising waves)."),
    ("interaction_sequences", "Interaction Sequences",
     "Events defined by interactions between objects (a bullet hitting glass, collisions)."),
    ("pattern_evolution", "Pattern Evolution",
     "Progressive changes of patterns or textures (smoke dispersing, fluctuating light)."),
)
"""The five Ref-VPS concept groups: (id, display name, definition)."""

# --- annotation workspaces (refvps annotate) -------------------------------------------------
WORKSPACE_FORMAT = 1
WORKSPACE_INFO = "workspace.json"
"""Written once at ingest: the source, its timestamps, the resampling picks, frame names."""
WORKSPACE_STATE = "state.json"
"""Rewritten atomically after every edit: per-frame pointers, prompts, flags, history, metadata."""
WORKSPACE_FRAMES = "frames"
WORKSPACE_LAYERS = "layers"
ANNOTATE_JPEG_QUALITY = 95
PROVENANCE_DIR = "provenance"
"""``<dataset>/provenance/<clip_id>.json``: how an exported clip was made (refvps annotate)."""
