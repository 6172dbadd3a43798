"""Format constants shared by loaders, writers, the sample generator and the annotator.

Each on-disk convention is defined here once; every other module imports it from here.
"""
from __future__ import annotations

import re

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
CLIP_ID_PATTERN = r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}"
"""Clip ids refvps writes (``refvps annotate export``): a letter or digit, then up to 127
letters, digits, ``.``, ``_`` or ``-``, and no ``..``; so an id is always one plain folder name,
never a path, a hidden file or a parent folder."""


def clip_id_problem(clip: object) -> str | None:
    """Why ``clip`` is not a safe clip id (see ``CLIP_ID_PATTERN``), or None when it is."""
    if not isinstance(clip, str) or not re.fullmatch(CLIP_ID_PATTERN, clip):
        return (f"clip id {clip!r} is not allowed: use 1-128 letters, digits, '.', '_' or '-', "
                "starting with a letter or digit")
    if ".." in clip:
        return f"clip id {clip!r} is not allowed: it contains '..'"
    return None

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

# --- predictions written by `refvps predict` ---------------------------------------------
PRED_DONE_FILE = ".done.json"
"""Completion marker of one query, inside its predictions folder (written after every PNG)."""
PRED_RUN_FILE = "run.json"
PRED_RUNTIME_FILE = "runtime.csv"
PRED_FAILURES_FILE = "failures.json"

# --- BURST (TAO frames, BURST annotation JSON; REM's referring protocol) --------------------
BURST_FOLDER = "burst"
BURST_ANNOTATIONS_DIR = "annotations_burst"
BURST_FRAMES_DIR = "frames"  # TAO: frames/<split>/<dataset>/<seq_name>/<image>
BURST_ANNOTATION_FILE = "all_classes.json"
BURST_NAMES_SPLIT = "val"
"""Category id -> name comes from ``<val>/all_classes.json`` for every split (REM's rule)."""
BURST_REM_WRAPPER = "burst_valtest"
BURST_REM_PRED_DIR = "pred"

# --- VSPW (and REM's "stuff" referring protocol) --------------------------------------------
VSPW_FOLDER = "vspw"
VSPW_DATA_DIR = "data"
VSPW_MASK_DIR = "mask"
VSPW_ORIGIN_DIR = "origin"
VSPW_LABEL_FILE = "label_num_dic_final.json"
VSPW_REM_WRAPPER = "vspw_val"
VSPW_REM_PRED_DIR = "pred"
VSPW_STUFF_CLASSES: tuple[tuple[int, str], ...] = (
    (0, "wall"), (1, "ceiling"), (3, "stair"), (5, "escalator"), (6, "Playground_slide"),
    (7, "handrail_or_fence"), (9, "rail"), (11, "pillar"), (12, "pole"), (13, "floor"),
    (14, "ground"), (15, "grass"), (16, "sand"), (17, "athletic_field"), (18, "road"),
    (19, "path"), (20, "crosswalk"), (21, "building"), (22, "house"), (23, "bridge"),
    (24, "tower"), (25, "windmill"), (26, "well_or_well_lid"), (27, "other_construction"),
    (28, "sky"), (29, "mountain"), (30, "stone"), (31, "wood"), (32, "ice"), (33, "snowfield"),
    (34, "grandstand"), (35, "sea"), (36, "river"), (37, "lake"), (38, "waterfall"),
    (39, "water"), (40, "billboard_or_Bulletin_Board"), (42, "pipeline"),
    (45, "cushion_or_carpet"), (53, "wheeled_machine"), (57, "tyre"), (58, "traffic_light"),
    (59, "lamp"), (66, "tree"), (67, "flower"), (68, "other_plant"), (69, "toy"),
    (70, "ball_net"), (71, "backboard"), (73, "bat"),
    (75, "cupboard_or_showcase_or_storage_rack"), (80, "trash_can"), (81, "cage"),
    (93, "shelf"), (94, "bathtub"), (98, "other_machine"), (103, "curtain"), (104, "textiles"),
    (105, "clothes"), (110, "book"), (111, "tool"), (112, "blackboard"), (113, "tissue"),
    (119, "other_electronic_product"), (120, "fruit"), (121, "food"),
)
"""REM's 66 VSPW stuff classes: (0-based VSPW class id, raw VSPW name). The raw mask value of a
class is its id + 1 (raw 0 = "others", 255 = void; both are plain background in this protocol)."""


def class_phrase(name: str) -> str:
    """Readable query text for a dataset class name: underscores -> spaces, lower case.

    ``bow_(weapon)`` -> ``bow (weapon)``; ``handrail_or_fence`` -> ``handrail or fence``;
    ``Playground_slide`` -> ``playground slide``. The raw name stays the class key.
    """
    return " ".join(name.replace("_", " ").split()).lower()


def clean_expression(text: object) -> str:
    """Expression text as the MeViS / Ref-YouTube-VOS loaders use it: lower case, single spaces."""
    return " ".join(str(text).lower().split())


# --- MeViS -----------------------------------------------------------------------------------
MEVIS_FOLDER = "mevis"
MASK_DICT = "mask_dict.json"
"""MeViS per-split file: anno_id (string) -> one COCO RLE or null per frame of its video."""

# --- Ref-YouTube-VOS -------------------------------------------------------------------------
REFYTVOS_FOLDER = "ref-youtube-vos"
REFYTVOS_META_DIR = "meta_expressions"
"""``meta_expressions/<split>/meta_expressions.json`` (valid = valid meta minus test meta)."""
YTVOS_META = "meta.json"
"""``train/meta.json``: per video, per object id, its category."""
SUBMISSION_ANNOTATIONS = "Annotations"
"""Top folder of a Ref-YouTube-VOS server zip."""


# --- Ref-DAVIS17 (DAVIS-2017 unsupervised annotations + Khoreva et al. expressions) --------
REFDAVIS_FOLDER = "ref-davis"
DAVIS_FOLDER = "DAVIS"
DAVIS_RESOLUTION = "480p"
DAVIS_UNSUPERVISED_DIR = "Annotations_unsupervised"
DAVIS_IMAGESETS_DIR = "ImageSets/2017"
DAVIS_SEMANTICS = "davis_semantics.json"
DAVIS_MAX_PROPOSALS = 20
"""The davis2017 unsupervised evaluator refuses sequences with more proposal ids than this."""
DAVIS_SEMI_FOLDER = "davis-2017"  # DAVIS-2017 semi-supervised VOS (Annotations/480p)
DAVIS_TEXT_DIR = "davis_text_annotations"
REFDAVIS_CONVERTED_SPLITS = {"val": "valid", "train": "train"}
"""DAVIS split name -> folder name in the ReferFormer-converted (YouTube-VOS style) tree."""
REFDAVIS_META_DIR = "meta_expressions"
REFDAVIS_RUNS: tuple[tuple[str, str, int, str], ...] = (
    ("Davis17_annot1.txt", "utf-8", 1, "first-frame"),
    ("Davis17_annot1_full_video.txt", "utf-8", 1, "full-video"),
    ("Davis17_annot2.txt", "latin-1", 2, "first-frame"),
    ("Davis17_annot2_full_video.txt", "latin-1", 2, "full-video"),
)
"""Annotator run ``anno_<k>`` = entry k: (text file, its encoding, annotator, expression kind)."""
REFDAVIS_NAME_FIXES = {"clasic-car": "classic-car", "dog-scale": "dogs-scale",
                       "motor-bike": "motorbike"}
"""Video-name typos in the Khoreva et al. text files, mapped as ReferFormer's converter does."""


def refdavis_run_dir(run: int) -> str:
    """Predictions folder of annotator run ``run`` (0..3): ``anno_<run>``."""
    return f"anno_{run}"


# --- annotation workspaces (refvps annotate) -------------------------------------------------
WORKSPACE_FORMAT = 1
WORKSPACE_INFO = "workspace.json"
"""Written once at ingest: the source, its timestamps, the resampling picks, frame names."""
WORKSPACE_STATE = "state.json"
"""Rewritten atomically after every edit: per-frame pointers, prompts, flags, history, metadata."""
WORKSPACE_FRAMES = "frames"
WORKSPACE_LAYERS = "layers"
WORKSPACE_LOCK = "server.lock"
"""Held (an OS file lock) by the one annotation server allowed on a workspace; names its pid."""
ANNOTATE_JPEG_QUALITY = 95
PROVENANCE_DIR = "provenance"
"""``<dataset>/provenance/<clip_id>.json``: how an exported clip was made (refvps annotate)."""

# --- A2D-Sentences / JHMDB-Sentences (the COCO-format GT of MTTR's conversion scripts) -------
A2D_FOLDER = "a2d-sentences"
A2D_GT_FILE = "a2d_sentences_test_annotations_in_coco_format.json"
A2D_SAMPLES_FILE = "a2d_sentences_single_frame_test_annotations.json"
JHMDB_FOLDER = "jhmdb-sentences"
JHMDB_GT_FILE = "jhmdb_sentences_gt_annotations_in_coco_format.json"
JHMDB_SAMPLES_FILE = "jhmdb_sentences_samples_metadata.json"
