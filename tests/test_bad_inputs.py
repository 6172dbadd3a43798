"""The bad-input corpus: every input refvps cannot use is a named problem, all at once, exit 2.

Each case copies a small valid dataset and predictions of one benchmark (built once per module
from the benchmarks' own fixtures), breaks one file in one way, and also plants an independent
*control* problem elsewhere. The evaluation must raise one ValidationError (exit 2 in the CLI)
that lists the broken file with the reason and the control problem too: one bad input neither
crashes the run nor hides the others. A subset runs through the real CLI in a subprocess.
"""
from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import pytest

import _bad_inputs as bad
import refvps
import _mevis_data as mevis_fx
import _ytvos_data as ytvos_fx
import refdavis_fixture as davis_fx
import refvps_fixture as vps_fx
from refvps.errors import ValidationError
from refvps.evaluation import evaluate
from test_burst import build_burst, write_predictions as burst_predictions
from test_davis17 import box_labels as davis17_labels, make_davis, write_preds
from test_vspw import build_vspw, write_png, write_predictions as vspw_predictions

MEVIS_B, MEVIS_A = "5f4e3d2c1b0a", "9e8d7c6b5a4f"
BURST_VAL = "annotations_burst/val/all_classes.json"
BURST_TEST = "annotations_burst/test/all_classes.json"
BURST_PRED = "burst_valtest/YFCC100M/v_0123456789abcdef/pred/805_baby/frame0001.png"
VSPW_A, VSPW_B = "127_-hIVCYO4C90", "1002_3nW_Y_u1S08"


@dataclass(frozen=True)
class Bench:
    """Where things live in a copied tree (``data``, ``preds``) and the control problems."""

    name: str
    data: str                      # dataset folder, relative to the tree root
    split: str | None
    data_control: Callable[[Path], None]
    data_control_text: str
    preds_control: Callable[[Path], None]
    preds_control_text: str


BENCHES = {
    "ref-vps": Bench(
        "ref-vps", "data/ref-vps", None,
        lambda d: (d / "FORMAT").unlink(), "FORMAT: missing",
        lambda p: (p / "vps_0002/3/00004.png").unlink(), "missing 1 required frame(s): 00004"),
    "mevis": Bench(
        "mevis", "data/mevis", "valid_u",
        lambda d: bad.edit_json(d / "valid_u/meta_expressions.json",
                                bad.put(("videos", MEVIS_A, "expressions", "1", "exp"), " ")),
        f"videos.{MEVIS_A}.expressions.1.exp: must be a non-empty text",
        lambda p: (p / f"{MEVIS_A}/1/00002.png").unlink(), "missing 1 required frame(s): 00002"),
    "burst": Bench(
        "burst", "TAO", None,
        lambda d: bad.edit_json(d / BURST_TEST, bad.put(("sequences", 1, "track_category_ids",
                                                         "7"), 999)),
        "track 7: category 999 has no name",
        lambda p: (p / "burst_valtest/HACS/Kayaking_v__A-EdoCW8dA_scene_0_967-2279/pred/"
                       "136_bow_(weapon)/frame0031.png").unlink(),
        "missing 1 required frame(s): frame0031"),
    "vspw": Bench(
        "vspw", "VSPW_480p", None,
        lambda d: bad.resized(d / f"data/{VSPW_B}/mask/00001174.png"),
        "00001174.png: size 17x32 (WxH) differs from the video's 17x29",
        lambda p: (p / f"vspw_val/{VSPW_B}/wall/pred/00001174.png").unlink(),
        "missing 1 required frame(s): 00001174"),
    "ref-davis": Bench(
        "ref-davis", "ref-davis", None,
        lambda d: (d / "davis_text_annotations/Davis17_annot1.txt").open("a").write("lonely\n"),
        "Davis17_annot1.txt:5: expected '<video> <obj_id>",
        lambda p: (p / "anno_3/dogs-scale/00002.png").unlink(), "missing 1 required frame"),
    "ref-ytvos": Bench(
        "ref-ytvos", "ref-youtube-vos", "train",
        lambda d: bad.edit_json(d / "meta_expressions/train/meta_expressions.json",
                                bad.put(("videos", "0a1b2c3d4e", "expressions", "1", "obj_id"),
                                        "one")),
        "expressions.1.obj_id: must be an integer string",
        lambda p: (p / "1b2c3d4e5f/0/00005.png").unlink(), "missing 1 required frame(s): 00005"),
    "davis17": Bench(
        "davis17", "davis-2017/DAVIS", None,
        lambda d: bad.resized(d / "Annotations/480p/cat/00002.png"),
        "cat/00002.png: size 40x33 (WxH) differs from the first frame's 40x30",
        lambda p: (p / "cat/00003.png").unlink(), "missing 1 required frame(s): 00003"),
    "vspw-semantic": Bench(
        "vspw-semantic", "VSPW_480p", None,
        lambda d: (d / "label_num_dic_final.json").write_text("[]"),
        "label_num_dic_final.json: expected a JSON object at the top, got a list",
        lambda p: (p / f"{VSPW_B}/00000101.png").unlink(),
        "missing 1 required frame(s): 00000101"),
}


def _build(bench: str, root: Path) -> None:
    """The valid tree of ``bench`` under ``root``: ``root/<data>`` and ``root/preds``."""
    if bench == "ref-vps":
        vps_fx.build_refvps(root / "data")
        vps_fx.write_predictions(root / "preds")
    elif bench == "mevis":
        mevis_fx.build_mevis(root / "data")
        mevis_fx.write_predictions(root / "preds", "valid_u")
    elif bench == "burst":
        build_burst(root)
        burst_predictions(root / "preds", lambda gt, rng: gt)
    elif bench == "vspw":
        build_vspw(root)
        vspw_predictions(root / "preds", lambda gt, rng: gt)
    elif bench == "ref-davis":
        davis_fx.make_raw(root)
        davis_fx.make_hand_predictions(root)
    elif bench == "ref-ytvos":
        ytvos_fx.build_ytvos(root)
        ytvos_fx.write_train_predictions(root / "preds")
    elif bench == "davis17":
        frames = [davis17_labels(t) for t in range(6)]
        make_davis(root, {"bear": frames, "cat": frames})
        for seq in ("bear", "cat"):
            write_preds(root / "preds", seq, frames)
    elif bench == "vspw-semantic":
        for video in (VSPW_A, VSPW_B):
            for t in range(4):
                labels = np.full((18, 22), 1 + t, np.uint8)
                labels[5:9, 3:7] = 29
                write_png(root / f"VSPW_480p/data/{video}/mask/{t + 100:08d}.png", labels)
                write_png(root / f"preds/{video}/{t + 100:08d}.png", labels - 1)
        (root / "VSPW_480p/val.txt").write_text(f"{VSPW_A}\n{VSPW_B}\n")


@pytest.fixture(scope="module")
def trees(tmp_path_factory) -> Callable[[str], Path]:
    """Valid trees, built once per module and per benchmark, on first use."""
    built: dict[str, Path] = {}

    def get(bench: str) -> Path:
        if bench not in built:
            built[bench] = tmp_path_factory.mktemp(bench)
            _build(bench, built[bench])
        return built[bench]
    return get


@dataclass(frozen=True)
class Case:
    """One class of bad input: ``plant(data, preds)`` breaks the copy (it may return another
    predictions path, e.g. a zip); one problem must contain every string of ``expect``."""

    id: str
    bench: str
    phase: str  # "data": a dataset problem; "preds": a predictions problem
    plant: Callable[[Path, Path], Path | None]
    expect: tuple[str, ...]
    cli: bool = False
    control: bool = True  # False: the case breaks the file the control lives in


def D(path: str, how: Callable[[Path], None]) -> Callable[[Path, Path], None]:
    """Break the dataset file ``path`` (relative to the dataset folder) with ``how``."""
    return lambda data, preds: how(data / path)


def P(path: str, how: Callable[[Path], None]) -> Callable[[Path, Path], None]:
    """Break the prediction file ``path`` with ``how``."""
    return lambda data, preds: how(preds / path)


def J(path: str, edit) -> Callable[[Path, Path], None]:
    """Edit the dataset JSON file ``path``."""
    return lambda data, preds: bad.edit_json(data / path, edit)


def T(path: str, text: str | bytes) -> Callable[[Path, Path], None]:
    """Replace the dataset text file ``path``."""
    def plant(data: Path, preds: Path) -> None:
        target = data / path
        target.write_bytes(text if isinstance(text, bytes) else text.encode())
    return plant


NAN = float("nan")
VPS_META = "meta_expressions.json"
VPS_PRED = "vps_0001/0/00004.png"
V2 = ("videos", "vps_0002")
E0 = (*V2, "expressions", "0")
MEVIS_META = "valid_u/meta_expressions.json"
MEVIS_MASKS = "valid_u/mask_dict.json"
MB = ("videos", MEVIS_B)
MB0 = (*MB, "expressions", "0")
MEVIS_PRED = f"{MEVIS_B}/1/00001.png"
DAVIS_PRED = "anno_0/blackswan/00001.png"
DAVIS_GT = "DAVIS/Annotations_unsupervised/480p/blackswan/00001.png"
YT_META = "meta_expressions/train/meta_expressions.json"
YT_PRED = "0a1b2c3d4e/0/00005.png"
VSPW_MASK = f"data/{VSPW_A}/mask/00000167.png"
VSPW_PRED = f"vspw_val/{VSPW_A}/wall/pred/00000167.png"
SEQ0 = ("sequences", 0)


def _zip(data: Path, preds: Path, **kwargs) -> Path:
    return bad.zip_folder(preds, preds.with_suffix(".zip"), **kwargs)


def _zip_then(patch: Callable[[Path], None], **kwargs) -> Callable[[Path, Path], Path]:
    def plant(data: Path, preds: Path) -> Path:
        archive = _zip(data, preds, **kwargs)
        patch(archive)
        return archive
    return plant


def _zip_bad_crc(data: Path, preds: Path) -> Path:
    member = (preds / VPS_PRED).read_bytes()
    archive = _zip(data, preds)
    bad.flip_stored_byte(archive, member)
    return archive


def _zip_symlink(data: Path, preds: Path) -> Path:
    (preds / VPS_PRED).unlink()
    archive = _zip(data, preds)
    bad.symlink_member(archive, VPS_PRED, "../../vps_0001/0/00000.png")
    return archive


def _zip_duplicate(data: Path, preds: Path) -> Path:
    return _zip(data, preds, extra={VPS_PRED: (preds / VPS_PRED).read_bytes()})


def _zip_member(how: Callable[[Path], None]) -> Callable[[Path, Path], Path]:
    def plant(data: Path, preds: Path) -> Path:
        how(preds / VPS_PRED)
        return _zip(data, preds, compression=zipfile.ZIP_DEFLATED)
    return plant


def _vanishing(data: Path, preds: Path) -> None:
    """Remove the file right after the presence check listed it (see the test below)."""
    raise AssertionError("planted by test_frame_vanishing_after_listing")


CASES = [
    # --- Ref-VPS dataset ----------------------------------------------------------------------
    Case("vps-anno-frames-empty", "ref-vps", "data", J(VPS_META, bad.put((*V2, "anno_frames"), [])),
         ("videos.vps_0002.anno_frames", "non-empty list"), cli=True),
    Case("vps-split-lists-clip-twice", "ref-vps", "data",
         T("splits/test.txt", "vps_0001\nvps_0002\nvps_0001\n"),
         ("splits/test.txt:3", "'vps_0001' is listed 2 times"), cli=True),
    Case("vps-anno-frames-duplicate", "ref-vps", "data",
         J(VPS_META, bad.put((*V2, "anno_frames"), ["00000", "00004", "00004"])),
         ("videos.vps_0002.anno_frames", 'duplicate annotated frame names: "00004"')),
    Case("vps-frames-null", "ref-vps", "data", J(VPS_META, bad.put((*V2, "frames"), None)),
         ("videos.vps_0002.frames", "got null")),
    Case("vps-frames-duplicate", "ref-vps", "data",
         J(VPS_META, bad.put((*V2, "frames"), ["00000"] * 2 + [f"0000{i}" for i in range(1, 6)])),
         ("videos.vps_0002.frames", "duplicate frame names")),
    Case("vps-anno-frames-int", "ref-vps", "data", J(VPS_META, bad.put((*V2, "anno_frames"), 5)),
         ("videos.vps_0002.anno_frames", "got 5")),
    Case("vps-anno-frame-not-in-frames", "ref-vps", "data",
         J(VPS_META, bad.put((*V2, "anno_frames"), ["00000", "00099"])),
         ("videos.vps_0002.anno_frames", "'00099' is not in 'frames'")),
    Case("vps-anno-frames-out-of-order", "ref-vps", "data",
         J(VPS_META, bad.put((*V2, "anno_frames"), ["00004", "00000"])),
         ("videos.vps_0002.anno_frames", "order of 'frames'")),
    Case("vps-obj-id-float", "ref-vps", "data", J(VPS_META, bad.put((*E0, "obj_id"), [1.7])),
         ("expressions.0.obj_id", "[1.7]")),
    Case("vps-obj-id-nan", "ref-vps", "data", J(VPS_META, bad.put((*E0, "obj_id"), [NAN])),
         ("expressions.0.obj_id", "[NaN]"), cli=True),
    Case("vps-obj-id-string", "ref-vps", "data", J(VPS_META, bad.put((*E0, "obj_id"), ["a"])),
         ("expressions.0.obj_id", '["a"]')),
    Case("vps-obj-id-bare-int", "ref-vps", "data", J(VPS_META, bad.put((*E0, "obj_id"), 1)),
         ("expressions.0.obj_id", "got 1")),
    Case("vps-obj-id-empty", "ref-vps", "data", J(VPS_META, bad.put((*E0, "obj_id"), [])),
         ("expressions.0.obj_id", "got []")),
    Case("vps-obj-id-ignore-label", "ref-vps", "data",
         J(VPS_META, bad.put((*E0, "obj_id"), [255])), ("expressions.0.obj_id", "1..254")),
    Case("vps-obj-id-bool", "ref-vps", "data", J(VPS_META, bad.put((*E0, "obj_id"), [True])),
         ("expressions.0.obj_id", "[true]")),
    Case("vps-obj-id-duplicate", "ref-vps", "data",
         J(VPS_META, bad.put((*E0, "obj_id"), [1, 1])), ("expressions.0.obj_id", "duplicate")),
    Case("vps-height-nan", "ref-vps", "data", J(VPS_META, bad.put((*V2, "height"), NAN)),
         ("videos.vps_0002.height", "got NaN"), cli=True),
    Case("vps-width-string", "ref-vps", "data", J(VPS_META, bad.put((*V2, "width"), "17")),
         ("videos.vps_0002.width", 'got "17"')),
    Case("vps-height-zero", "ref-vps", "data", J(VPS_META, bad.put((*V2, "height"), 0)),
         ("videos.vps_0002.height", ">= 1")),
    Case("vps-expressions-empty", "ref-vps", "data",
         J(VPS_META, bad.put((*V2, "expressions"), {})), ("videos.vps_0002.expressions",
                                                          "non-empty object")),
    Case("vps-expression-text-null", "ref-vps", "data", J(VPS_META, bad.put((*E0, "exp"), None)),
         ("expressions.0.exp", "non-empty text")),
    Case("vps-expression-not-object", "ref-vps", "data", J(VPS_META, bad.put(E0, "the ice")),
         ("videos.vps_0002.expressions.0", "must be an object")),
    Case("vps-record-not-object", "ref-vps", "data", J(VPS_META, bad.put(V2, 5)),
         ("videos.vps_0002", "must be an object, got 5")),
    Case("vps-record-missing-key", "ref-vps", "data", J(VPS_META, bad.drop((*V2, "anno_frames"))),
         ("videos.vps_0002", "missing key(s) 'anno_frames'")),
    Case("vps-unknown-concept", "ref-vps", "data",
         J(VPS_META, bad.put((*V2, "concept"), "ice_melting")),
         ("videos.vps_0002.concept", "unknown concept id 'ice_melting'")),
    Case("vps-concept-not-string", "ref-vps", "data", J(VPS_META, bad.put((*V2, "concept"), 3)),
         ("videos.vps_0002.concept", "got 3")),
    Case("vps-unknown-concept-group", "ref-vps", "data",
         J(VPS_META, bad.put((*V2, "concept_groups"), ["weather"])),
         ("videos.vps_0002.concept_groups", "unknown concept group 'weather'")),
    Case("vps-concept-groups-string", "ref-vps", "data",
         J(VPS_META, bad.put((*V2, "concept_groups"), "pattern_evolution")),
         ("videos.vps_0002.concept_groups", "list of concept group ids")),
    Case("vps-split-names-unknown-clip", "ref-vps", "data",
         T("splits/test.txt", "vps_0001\nvps_0002\nvps_0404\n"),
         ("splits/test.txt", "clip 'vps_0404' is not in meta_expressions.json")),
    Case("vps-split-not-utf8", "ref-vps", "data", T("splits/test.txt", b"vps_0001\n\xff\xfe\n"),
         ("splits/test.txt", "not UTF-8")),
    Case("vps-split-is-directory", "ref-vps", "data", D("splits/test.txt", bad.to_dir),
         ("splits/test.txt", "is a directory")),
    Case("vps-meta-malformed", "ref-vps", "data", T(VPS_META, '{"videos": {'),
         (VPS_META, "malformed JSON")),
    Case("vps-meta-empty-file", "ref-vps", "data", T(VPS_META, ""), (VPS_META, "malformed JSON")),
    Case("vps-meta-top-level-list", "ref-vps", "data", T(VPS_META, "[]"),
         (VPS_META, "expected a JSON object at the top, got a list")),
    Case("vps-meta-videos-list", "ref-vps", "data", J(VPS_META, bad.put(("videos",), [])),
         (f"{VPS_META}: videos", "must be an object")),
    Case("vps-meta-is-fifo", "ref-vps", "data", D(VPS_META, bad.to_fifo),
         (VPS_META, "is a FIFO")),
    Case("vps-concepts-duplicate-id", "ref-vps", "data",
         J("concepts.json", lambda c: c["concepts"].append(dict(c["concepts"][0]))),
         ("concepts.json: concepts.2.id", "duplicate concept id 'wax_candle_melting'")),
    Case("vps-concepts-groups-not-list", "ref-vps", "data",
         J("concepts.json", bad.put(("groups",), "all")), ("concepts.json: groups",
                                                          "must be a list")),
    Case("vps-gt-missing", "ref-vps", "data", D("Annotations/vps_0002/00004.png", bad.remove),
         ("Annotations/vps_0002/00004.png", "has no annotation PNG")),
    Case("vps-gt-jpeg", "ref-vps", "data", D("Annotations/vps_0002/00004.png", bad.as_jpeg),
         ("Annotations/vps_0002/00004.png", "a JPEG image, not a PNG")),
    Case("vps-gt-directory", "ref-vps", "data", D("Annotations/vps_0002/00004.png", bad.to_dir),
         ("Annotations/vps_0002/00004.png", "is a directory")),
    Case("vps-gt-fifo", "ref-vps", "data", D("Annotations/vps_0002/00004.png", bad.to_fifo),
         ("Annotations/vps_0002/00004.png", "is a FIFO"), cli=True),
    Case("vps-gt-dangling-symlink", "ref-vps", "data",
         D("Annotations/vps_0002/00004.png", bad.dangling),
         ("Annotations/vps_0002/00004.png", "dangling symbolic link")),
    Case("vps-gt-symlink-loop", "ref-vps", "data",
         D("Annotations/vps_0002/00004.png", bad.loop),
         ("Annotations/vps_0002/00004.png", "symbolic link loop")),
    Case("vps-gt-rgb", "ref-vps", "data", D("Annotations/vps_0002/00004.png", bad.as_rgb),
         ("Annotations/vps_0002/00004.png", "is an RGB image")),
    Case("vps-gt-wrong-size", "ref-vps", "data", D("Annotations/vps_0002/00004.png", bad.resized),
         ("Annotations/vps_0002/00004.png", "meta says 17x29")),
    Case("vps-gt-pixel-bomb", "ref-vps", "data",
         D("Annotations/vps_0002/00004.png", bad.pixel_bomb),
         ("Annotations/vps_0002/00004.png", "decompression-bomb limit")),
    # --- Ref-VPS predictions (the PIL reader) ----------------------------------------------
    Case("pred-jpeg-named-png", "ref-vps", "preds", P(VPS_PRED, bad.as_jpeg),
         (VPS_PRED, "a JPEG image, not a PNG"), cli=True),
    Case("pred-gif-named-png", "ref-vps", "preds", P(VPS_PRED, bad.as_gif),
         (VPS_PRED, "a GIF image, not a PNG")),
    Case("pred-empty-file", "ref-vps", "preds", P(VPS_PRED, bad.empty),
         (VPS_PRED, "empty file (0 bytes)")),
    Case("pred-not-an-image", "ref-vps", "preds", P(VPS_PRED, bad.garbage),
         (VPS_PRED, "no PNG signature")),
    Case("pred-truncated-header", "ref-vps", "preds", P(VPS_PRED, bad.truncated),
         (VPS_PRED, "no IHDR header")),
    Case("pred-corrupt-data", "ref-vps", "preds", P(VPS_PRED, bad.corrupt_body),
         (VPS_PRED, "unreadable image")),
    Case("pred-pixel-bomb", "ref-vps", "preds", P(VPS_PRED, bad.pixel_bomb),
         (VPS_PRED, "decompression-bomb limit")),
    Case("pred-larger-than-limit", "ref-vps", "preds", P(VPS_PRED, bad.sparse_huge),
         (VPS_PRED, "larger than the 128 MiB")),
    Case("pred-rgb", "ref-vps", "preds", P(VPS_PRED, bad.as_rgb), (VPS_PRED, "is an RGB image")),
    Case("pred-rgba", "ref-vps", "preds", P(VPS_PRED, bad.as_rgba),
         (VPS_PRED, "is an RGBA image")),
    Case("pred-16-bit", "ref-vps", "preds", P(VPS_PRED, bad.as_16bit),
         (VPS_PRED, "16-bit")),
    Case("pred-wrong-size", "ref-vps", "preds", P(VPS_PRED, bad.resized),
         (VPS_PRED, "expected 45x31")),
    Case("pred-directory", "ref-vps", "preds", P(VPS_PRED, bad.to_dir),
         (VPS_PRED, "is a directory")),
    Case("pred-fifo", "ref-vps", "preds", P(VPS_PRED, bad.to_fifo),
         (VPS_PRED, "is a FIFO"), cli=True),
    Case("pred-dangling-symlink", "ref-vps", "preds", P(VPS_PRED, bad.dangling),
         (VPS_PRED, "dangling symbolic link"), cli=True),
    Case("pred-symlink-loop", "ref-vps", "preds", P(VPS_PRED, bad.loop),
         (VPS_PRED, "symbolic link loop")),
    Case("pred-unknown-folder", "ref-vps", "preds",
         lambda data, preds: shutil.copytree(preds / "vps_0001", preds / "vps_0009") and None,
         ("vps_0009", "unknown folder")),
    # --- the zip store ----------------------------------------------------------------------------
    Case("zip-bad-crc", "ref-vps", "preds", _zip_bad_crc, (f"zip:{VPS_PRED}", "Bad CRC-32"),
         cli=True),
    Case("zip-encrypted-flag", "ref-vps", "preds",
         _zip_then(lambda z: bad.patch_member(z, VPS_PRED, flags=0x1)),
         (f"zip:{VPS_PRED}", "is encrypted")),
    Case("zip-unsupported-compression", "ref-vps", "preds",
         _zip_then(lambda z: bad.patch_member(z, VPS_PRED, method=9)),  # deflate64
         (f"zip:{VPS_PRED}", "cannot be extracted")),
    Case("zip-member-declared-too-large", "ref-vps", "preds",
         _zip_then(lambda z: bad.patch_member(z, VPS_PRED, size=0x7FFFFFFF)),
         (f"zip:{VPS_PRED}", "larger than the 128 MiB")),
    Case("zip-duplicate-member", "ref-vps", "preds", _zip_duplicate,
         (f"zip:{VPS_PRED}", "appears 2 times in the archive")),
    Case("zip-symlink-member", "ref-vps", "preds", _zip_symlink,
         (f"zip:{VPS_PRED}", "symbolic link stored in the archive")),
    Case("zip-member-jpeg", "ref-vps", "preds", _zip_member(bad.as_jpeg),
         (f"zip:{VPS_PRED}", "a JPEG image, not a PNG")),
    Case("zip-member-empty", "ref-vps", "preds", _zip_member(bad.empty),
         (f"zip:{VPS_PRED}", "empty file (0 bytes)")),
    Case("zip-member-pixel-bomb", "ref-vps", "preds", _zip_member(bad.pixel_bomb),
         (f"zip:{VPS_PRED}", "decompression-bomb limit")),
    # --- MeViS dataset --------------------------------------------------------------------------
    Case("mevis-frames-null", "mevis", "data", J(MEVIS_META, bad.put((*MB, "frames"), None)),
         (f"videos.{MEVIS_B}.frames", "got null")),
    Case("mevis-frames-duplicate", "mevis", "data",
         J(MEVIS_META, bad.put((*MB, "frames"), ["00000", "00001", "00002", "00002"])),
         (f"videos.{MEVIS_B}.frames", 'duplicate frame names: "00002"')),
    Case("mevis-expressions-empty", "mevis", "data",
         J(MEVIS_META, bad.put((*MB, "expressions"), {})),
         (f"videos.{MEVIS_B}.expressions", "non-empty object")),
    Case("mevis-expression-text-number", "mevis", "data", J(MEVIS_META, bad.put((*MB0, "exp"), 7)),
         (f"videos.{MEVIS_B}.expressions.0.exp", "got 7")),
    Case("mevis-anno-id-string", "mevis", "data",
         J(MEVIS_META, bad.put((*MB0, "anno_id"), "none")),
         (f"{MEVIS_B}.expressions.0.anno_id", 'got "none"')),
    Case("mevis-anno-id-float", "mevis", "data", J(MEVIS_META, bad.put((*MB0, "anno_id"), [0.5])),
         (f"{MEVIS_B}.expressions.0.anno_id", "[0.5]")),
    Case("mevis-anno-id-duplicate", "mevis", "data",
         J(MEVIS_META, bad.put((*MB0, "anno_id"), [0, 0])),
         (f"{MEVIS_B}.expressions.0.anno_id", "duplicate")),
    Case("mevis-obj-id-nan", "mevis", "data", J(MEVIS_META, bad.put((*MB0, "obj_id"), [NAN])),
         (f"{MEVIS_B}.expressions.0.obj_id", "[NaN]")),
    Case("mevis-anno-id-not-in-mask-dict", "mevis", "data",
         J(MEVIS_META, bad.put((*MB0, "anno_id"), [77])),
         (f"{MEVIS_MASKS}: 77", "anno_id 77")),
    Case("mevis-mask-entries-wrong-length", "mevis", "data",
         J(MEVIS_MASKS, lambda m: m["0"].pop()), (f"{MEVIS_MASKS}: 0", "expected a list of 4")),
    Case("mevis-rle-size-nan", "mevis", "data",
         J(MEVIS_MASKS, bad.put(("0", 0, "size"), [NAN, 17])),
         (f"{MEVIS_MASKS}: 0.0", "neither null nor an RLE object")),
    Case("mevis-mask-dict-list", "mevis", "data", T(MEVIS_MASKS, "[]"),
         (MEVIS_MASKS, "expected a JSON object at the top")),
    Case("mevis-mask-dict-directory", "mevis", "data", D(MEVIS_MASKS, bad.to_dir),
         (MEVIS_MASKS, "is a directory")),
    Case("mevis-meta-malformed", "mevis", "data", T(MEVIS_META, "{"),
         (MEVIS_META, "malformed JSON"), control=False),
    Case("mevis-meta-videos-string", "mevis", "data", J(MEVIS_META, bad.put(("videos",), "x")),
         (f"{MEVIS_META}: videos", 'must be an object, got "x"'), control=False),
    Case("mevis-jpeg-frame-empty", "mevis", "data",
         D(f"valid_u/JPEGImages/{MEVIS_A}/00000.jpg", bad.empty),
         (f"JPEGImages/{MEVIS_A}/00000.jpg", "empty file (0 bytes)"), cli=True),
    Case("mevis-jpeg-frame-corrupt", "mevis", "data",
         D(f"valid_u/JPEGImages/{MEVIS_A}/00000.jpg", bad.garbage),
         (f"JPEGImages/{MEVIS_A}/00000.jpg", "unreadable image")),
    Case("mevis-jpeg-frame-directory", "mevis", "data",
         D(f"valid_u/JPEGImages/{MEVIS_A}/00000.jpg", bad.to_dir),
         (f"JPEGImages/{MEVIS_A}/00000.jpg", "is a directory")),
    # --- MeViS predictions (OpenCV grayscale reader, strict mode) -----------------------------
    Case("mevis-pred-rgb-dark-foreground", "mevis", "preds",
         P(MEVIS_PRED, lambda p: bad.as_rgb(p, (1, 0, 0))), (MEVIS_PRED, "is a RGB PNG"),
         cli=True),
    Case("mevis-pred-rgba", "mevis", "preds", P(MEVIS_PRED, bad.as_rgba),
         (MEVIS_PRED, "is a RGBA PNG")),
    Case("mevis-pred-gray-alpha", "mevis", "preds", P(MEVIS_PRED, bad.as_gray_alpha),
         (MEVIS_PRED, "grayscale + alpha")),
    Case("mevis-pred-16-bit", "mevis", "preds", P(MEVIS_PRED, bad.as_16bit),
         (MEVIS_PRED, "16-bit PNG")),
    Case("mevis-pred-empty", "mevis", "preds", P(MEVIS_PRED, bad.empty),
         (MEVIS_PRED, "empty file (0 bytes)")),
    Case("mevis-pred-corrupt", "mevis", "preds", P(MEVIS_PRED, bad.corrupt_body),
         (MEVIS_PRED, "unreadable image")),
    Case("mevis-pred-jpeg-named-png", "mevis", "preds", P(MEVIS_PRED, bad.as_jpeg),
         (MEVIS_PRED, "a JPEG image, not a PNG")),
    Case("mevis-pred-dangling-symlink", "mevis", "preds", P(MEVIS_PRED, bad.dangling),
         (MEVIS_PRED, "dangling symbolic link")),
    # --- BURST -------------------------------------------------------------------------------------
    Case("burst-height-nan", "burst", "data", J(BURST_VAL, bad.put((*SEQ0, "height"), NAN)),
         ("YFCC100M/v_0123456789abcdef", "height/width must be positive integers"), cli=True),
    Case("burst-width-bool", "burst", "data", J(BURST_VAL, bad.put((*SEQ0, "width"), True)),
         ("YFCC100M/v_0123456789abcdef", "got 31/True")),
    Case("burst-seq-name-null", "burst", "data", J(BURST_VAL, bad.put((*SEQ0, "seq_name"), None)),
         (f"{BURST_VAL}: sequences.0.seq_name", "non-empty text")),
    Case("burst-paths-null", "burst", "data",
         J(BURST_VAL, bad.put((*SEQ0, "annotated_image_paths"), None)),
         ("v_0123456789abcdef", "must be lists")),
    Case("burst-paths-share-stem", "burst", "data",
         J(BURST_VAL, bad.put((*SEQ0, "annotated_image_paths"), ["frame0001.jpg",
                                                                 "frame0001.png"])),
         ("v_0123456789abcdef", "share the file stem 'frame0001'")),
    Case("burst-track-category-float", "burst", "data",
         J(BURST_VAL, bad.put((*SEQ0, "track_category_ids", "3"), 708.5)),
         ("v_0123456789abcdef", "track 3: category 708.5")),
    Case("burst-category-id-string", "burst", "data",
         J(BURST_VAL, bad.put(("categories", 0, "id"), "a")),
         (f"{BURST_VAL}: categories.0.id", 'got "a"')),
    Case("burst-category-id-conflict", "burst", "data",
         J(BURST_VAL, lambda d: d["categories"].append({"id": 805, "name": "adult"})),
         (f"{BURST_VAL}: categories.5.id", "listed twice")),
    Case("burst-sequence-twice", "burst", "data",
         J(BURST_VAL, lambda d: d["sequences"].append(dict(d["sequences"][0]))),
         ("v_0123456789abcdef", "duplicate sequence")),
    Case("burst-segmentation-unknown-track", "burst", "data",
         J(BURST_VAL, lambda d: d["sequences"][0]["segmentations"][0].update(
             {"9": {"rle": "0"}})), ("segmentations[0]: track 9", "not in track_category_ids")),
    Case("burst-rle-not-string", "burst", "data",
         J(BURST_VAL, lambda d: d["sequences"][0]["segmentations"][0]["1"].update(rle=[1, 2])),
         ("segmentations[0]: track 1", "no 'rle' string")),
    Case("burst-sequences-not-list", "burst", "data", J(BURST_VAL, bad.put(("sequences",), {})),
         (f"{BURST_VAL}: sequences", "list of sequence records")),
    Case("burst-annotations-malformed", "burst", "data", T(BURST_VAL, "{]"),
         (BURST_VAL, "malformed JSON")),
    Case("burst-rle-undecodable", "burst", "preds",
         lambda data, preds: bad.edit_json(data / BURST_VAL, lambda d: d["sequences"][0][
             "segmentations"][0]["1"].update(rle="!!")),
         ("frame 0, track 1", "undecodable RLE")),
    Case("burst-pred-jpeg", "burst", "preds", P(BURST_PRED, bad.as_jpeg),
         ("805_baby/frame0001.png", "a JPEG image, not a PNG")),
    Case("burst-pred-fifo", "burst", "preds", P(BURST_PRED, bad.to_fifo),
         ("805_baby/frame0001.png", "is a FIFO")),
    # --- VSPW ------------------------------------------------------------------------------------
    Case("vspw-label-file-list", "vspw", "data", T("label_num_dic_final.json", "[]"),
         ("label_num_dic_final.json", "expected a JSON object at the top, got a list"),
         cli=True),
    Case("vspw-label-id-wrong", "vspw", "data",
         J("label_num_dic_final.json", bad.put(("sky",), 7)),
         ("label_num_dic_final.json: sky", "should have raw id 29")),
    Case("vspw-split-lists-video-twice", "vspw", "data",
         T("val.txt", f"{VSPW_A}\n{VSPW_B}\n{VSPW_A}\n"),
         ("val.txt:3", f"'{VSPW_A}' is listed 2 times")),
    Case("vspw-mask-directory", "vspw", "data", D(VSPW_MASK, bad.to_dir),
         ("00000167.png", "is a directory")),
    Case("vspw-mask-fifo", "vspw", "data", D(VSPW_MASK, bad.to_fifo),
         ("00000167.png", "is a FIFO")),
    Case("vspw-mask-empty", "vspw", "data", D(VSPW_MASK, bad.empty),
         ("00000167.png", "empty file (0 bytes)")),
    Case("vspw-mask-jpeg", "vspw", "data", D(VSPW_MASK, bad.as_jpeg),
         ("00000167.png", "a JPEG image, not a PNG")),
    Case("vspw-mask-wrong-size", "vspw", "data", D(VSPW_MASK, bad.resized),
         ("00000167.png", "differs from the video's")),
    Case("vspw-pred-rgb", "vspw", "preds", P(VSPW_PRED, bad.as_rgb),
         ("wall/pred/00000167.png", "is an RGB image")),
    Case("vspw-pred-symlink-loop", "vspw", "preds", P(VSPW_PRED, bad.loop),
         ("wall/pred/00000167.png", "symbolic link loop")),
    # --- Ref-DAVIS -------------------------------------------------------------------------------
    Case("davis-split-lists-sequence-twice", "ref-davis", "data",
         T("DAVIS/ImageSets/2017/val.txt", "blackswan\ndogs-scale\nblackswan"),
         ("val.txt:3", "'blackswan' is listed 2 times")),
    Case("davis-gt-jpeg", "ref-davis", "data", D(DAVIS_GT, bad.as_jpeg),
         ("blackswan/00001.png", "a JPEG image, not a PNG")),
    Case("davis-gt-directory", "ref-davis", "data", D(DAVIS_GT, bad.to_dir),
         ("blackswan/00001.png", "is a directory")),
    Case("davis-gt-fifo", "ref-davis", "data", D(DAVIS_GT, bad.to_fifo),
         ("blackswan/00001.png", "is a FIFO"), cli=True),
    Case("davis-gt-rgb", "ref-davis", "data", D(DAVIS_GT, bad.as_rgb),
         ("blackswan/00001.png", "8-bit RGB PNG")),
    Case("davis-gt-wrong-size", "ref-davis", "data", D(DAVIS_GT, bad.resized),
         ("blackswan/00001.png", "differs from the first frame's")),
    Case("davis-gt-pixel-bomb", "ref-davis", "data", D(DAVIS_GT, bad.pixel_bomb),
         ("blackswan/00001.png", "decompression-bomb limit")),
    Case("davis-semantics-list", "ref-davis", "data", T("DAVIS/davis_semantics.json", "[]"),
         ("davis_semantics.json", "expected a JSON object")),
    Case("davis-semantics-malformed", "ref-davis", "data",
         T("DAVIS/davis_semantics.json", "{'a': 1}"), ("davis_semantics.json", "malformed JSON")),
    Case("davis-text-not-utf8", "ref-davis", "data",
         T("davis_text_annotations/Davis17_annot1_full_video.txt", b'blackswan 1 "\xff"\n'),
         ("Davis17_annot1_full_video.txt", "not valid utf-8 text")),
    Case("davis-pred-jpeg", "ref-davis", "preds", P(DAVIS_PRED, bad.as_jpeg),
         (DAVIS_PRED, "a JPEG image, not a PNG")),
    Case("davis-pred-dangling-symlink", "ref-davis", "preds", P(DAVIS_PRED, bad.dangling),
         (DAVIS_PRED, "dangling symbolic link")),
    Case("davis-pred-per-object-folder-misnamed", "ref-davis", "preds",
         lambda data, preds: (preds / "anno_2/dogs-scale/4").rename(
             preds / "anno_2/dogs-scale/obj4") and None,
         ("anno_2/dogs-scale", "must be named 1..4")),
    # --- DAVIS-2017 semi-supervised and VSPW semantic ---------------------------------------
    Case("davis17-split-lists-sequence-twice", "davis17", "data",
         T("ImageSets/2017/val.txt", "bear\ncat\nbear\n"), ("val.txt:3", "'bear' is listed 2")),
    Case("davis17-gt-jpeg", "davis17", "data", D("Annotations/480p/bear/00002.png", bad.as_jpeg),
         ("bear/00002.png", "a JPEG image, not a PNG")),
    Case("davis17-gt-fifo", "davis17", "data", D("Annotations/480p/bear/00002.png", bad.to_fifo),
         ("bear/00002.png", "is a FIFO"), cli=True),
    Case("davis17-gt-16-bit", "davis17", "data",
         D("Annotations/480p/bear/00002.png", bad.as_16bit), ("bear/00002.png", "16-bit")),
    Case("davis17-pred-dangling-symlink", "davis17", "preds", P("bear/00002.png", bad.dangling),
         ("preds/bear/00002.png", "dangling symbolic link")),
    Case("davis17-pred-directory", "davis17", "preds", P("bear/00002.png", bad.to_dir),
         ("preds/bear/00002.png", "is a directory")),
    Case("vspw-semantic-split-lists-video-twice", "vspw-semantic", "data",
         T("val.txt", f"{VSPW_A}\n{VSPW_A}\n{VSPW_B}\n"), ("val.txt:2", "listed 2 times")),
    Case("vspw-semantic-gt-fifo", "vspw-semantic", "preds",
         lambda data, preds: bad.to_fifo(data / f"data/{VSPW_A}/mask/00000102.png"),
         ("mask/00000102.png", "is a FIFO")),
    Case("vspw-semantic-pred-fifo", "vspw-semantic", "preds",
         P(f"{VSPW_A}/00000102.png", bad.to_fifo), (f"{VSPW_A}/00000102.png", "is a FIFO")),
    Case("vspw-semantic-pred-jpeg", "vspw-semantic", "preds",
         P(f"{VSPW_A}/00000102.png", bad.as_jpeg),
         (f"{VSPW_A}/00000102.png", "a JPEG image, not a PNG")),
    Case("vspw-semantic-pred-symlink-loop", "vspw-semantic", "preds",
         P(f"{VSPW_A}/00000102.png", bad.loop), (f"{VSPW_A}/00000102.png", "symbolic link loop")),
    # --- Ref-YouTube-VOS (train, scored locally) ---------------------------------------------
    Case("ytvos-obj-id-float-string", "ref-ytvos", "data",
         J(YT_META, bad.put(("videos", "1b2c3d4e5f", "expressions", "0", "obj_id"), "1.7")),
         ("1b2c3d4e5f.expressions.0.obj_id", 'got "1.7"')),
    Case("ytvos-frames-duplicate", "ref-ytvos", "data",
         J(YT_META, bad.put(("videos", "1b2c3d4e5f", "frames"), ["00000", "00000"])),
         ("videos.1b2c3d4e5f.frames", "duplicate frame names")),
    Case("ytvos-expression-text-null", "ref-ytvos", "data",
         J(YT_META, bad.put(("videos", "1b2c3d4e5f", "expressions", "0", "exp"), None)),
         ("1b2c3d4e5f.expressions.0.exp", "non-empty text")),
    Case("ytvos-meta-json-videos-list", "ref-ytvos", "data",
         J("train/meta.json", bad.put(("videos",), [])), ("meta.json: videos",
                                                         "must be an object")),
    Case("ytvos-gt-missing", "ref-ytvos", "data",
         D("train/Annotations/1b2c3d4e5f/00005.png", bad.remove),
         ("Annotations/1b2c3d4e5f", "have no annotation PNG")),
    Case("ytvos-pred-rgb", "ref-ytvos", "preds", P(YT_PRED, bad.as_rgb),
         (YT_PRED, "is an RGB image"), cli=True),
    Case("ytvos-pred-directory", "ref-ytvos", "preds", P(YT_PRED, bad.to_dir),
         (YT_PRED, "is a directory")),
]


def _prepare(case: Case, trees, tmp_path: Path) -> tuple[Bench, Path, Path, Path]:
    """Copy the valid tree, plant the control problem and the case; (bench, root, data, preds)."""
    bench = BENCHES[case.bench]
    root = tmp_path / "tree"
    shutil.copytree(trees(case.bench), root, symlinks=True)
    data, preds = root / bench.data, root / "preds"
    if case.phase == "data":
        bench.data_control(data)
    else:
        bench.preds_control(preds)
    preds = case.plant(data, preds) or preds
    return bench, root, data, preds


def _problems(case: Case, bench: Bench, data: Path, preds: Path) -> list[str]:
    def hung(*_args):
        raise AssertionError(f"{case.id}: evaluation hung")

    previous = signal.signal(signal.SIGALRM, hung)
    signal.alarm(60)
    try:
        with pytest.raises(ValidationError) as info:
            evaluate(preds, bench.name, data, bench.split, workers=1, progress=False)
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)
    return [str(p) for p in info.value.problems]


def _assert_reported(case: Case, bench: Bench, lines: list[str]) -> None:
    control = bench.data_control_text if case.phase == "data" else bench.preds_control_text
    hits = [line for line in lines if all(text in line for text in case.expect)]
    assert hits, (case.id, case.expect, lines)
    if case.control:
        assert any(control in line for line in lines), (case.id, "control not reported", lines)
    assert not any(control in line for line in hits), (case.id, "same problem as the control")


def test_corpus_is_large_and_distinct():
    ids = [case.id for case in CASES]
    assert len(ids) == len(set(ids))
    assert len(ids) >= 80
    assert {case.bench for case in CASES} == set(BENCHES)


@pytest.mark.parametrize("case", CASES, ids=lambda case: case.id)
def test_bad_input_is_a_named_problem_with_the_others(case, trees, tmp_path):
    bench, _root, data, preds = _prepare(case, trees, tmp_path)
    _assert_reported(case, bench, _problems(case, bench, data, preds))


CLI_CASES = [case for case in CASES if case.cli]


def _env() -> dict[str, str]:
    """The environment of a CLI subprocess: this checkout's refvps first on the import path."""
    repo = str(Path(refvps.__file__).resolve().parents[1])
    return {**os.environ, "PYTHONPATH": os.pathsep.join(
        [repo, *filter(None, [os.environ.get("PYTHONPATH")])])}


@pytest.mark.parametrize("case", CLI_CASES, ids=lambda case: case.id)
def test_bad_input_through_the_cli_exits_2(case, trees, tmp_path):
    bench, root, data, preds = _prepare(case, trees, tmp_path)
    command = [sys.executable, "-m", "refvps", "eval", "--benchmark", bench.name,
               "--data", str(data), "--preds", str(preds), "--no-progress", "--no-record",
               "-j", "1"] + (["--split", bench.split] if bench.split else [])
    run = subprocess.run(command, capture_output=True, text=True, timeout=120, cwd=root,
                         env=_env())
    assert run.returncode == 2, run.stdout + run.stderr
    assert "Traceback" not in run.stderr, run.stderr
    lines = [line.strip()[2:] for line in run.stderr.splitlines() if line.strip().startswith("- ")]
    _assert_reported(case, bench, lines)


def test_frame_vanishing_after_listing_is_a_problem_not_a_skip(pooled, trees, tmp_path, monkeypatch):
    """A scored frame the presence check saw, gone when the scorer reads it: a problem."""
    import refvps.evaluation as evaluation

    root = tmp_path / "tree"
    shutil.copytree(trees("ref-vps"), root)
    preds = root / "preds"
    real = evaluation.check_presence

    def check_then_remove(store, required, **kwargs):
        presence = real(store, required, **kwargs)
        (preds / VPS_PRED).unlink()
        return presence

    monkeypatch.setattr(evaluation, "check_presence", check_then_remove)
    with pytest.raises(ValidationError) as info:
        evaluate(preds, "ref-vps", root / "data", workers=2, progress=False)
    lines = [str(p) for p in info.value.problems]
    assert len(lines) == 1 and VPS_PRED in lines[0], lines
    assert "disappeared between the listing and the read" in lines[0]


def test_macos_entries_and_backslash_names_are_read_and_noted(trees, tmp_path):
    """A zip made on macOS (``__MACOSX/``, ``._`` files) with Windows backslash names scores
    exactly like the folder; what was ignored or normalised is named in the notes."""
    root = tmp_path / "tree"
    shutil.copytree(trees("ref-vps"), root)
    preds = root / "preds"
    archive = bad.zip_folder(preds, tmp_path / "mac.zip", name=lambda n: n.replace("/", "\\"),
                             extra={"__MACOSX/vps_0001/0/._00004.png": b"\x00\x05\x16\x07",
                                    "vps_0001/0/._00004.png": b"\x00\x05\x16\x07"})
    folder = evaluate(preds, "ref-vps", root / "data", workers=1, progress=False)
    zipped = evaluate(archive, "ref-vps", root / "data", workers=1, progress=False)
    assert zipped.metrics == folder.metrics
    assert (zipped.frames[["unit", "frame", "J", "F"]]
            .equals(folder.frames[["unit", "frame", "J", "F"]]))
    notes = "\n".join(zipped.summary["notes"])
    assert "ignored 2 macOS metadata entries" in notes and "__MACOSX/" in notes
    assert "use backslashes as folder separators" in notes


def test_mevis_official_mode_reads_rgb_as_the_official_script(trees, tmp_path):
    """--missing official keeps OpenCV's grayscale read of an RGB PNG (what eval_mevis.py does);
    strict mode refuses the same file (the corpus case mevis-pred-rgb-dark-foreground)."""
    root = tmp_path / "tree"
    shutil.copytree(trees("mevis"), root)
    preds, data = root / "preds", root / "data"
    clean = evaluate(preds, "mevis", data, "valid_u", workers=1, progress=False,
                     missing="official")
    bad.as_rgb(preds / MEVIS_PRED)  # white foreground: OpenCV's gray value 255
    rgb = evaluate(preds, "mevis", data, "valid_u", workers=1, progress=False,
                   missing="official")
    assert rgb.metrics == clean.metrics
    with pytest.raises(ValidationError, match="is a RGB PNG"):
        evaluate(preds, "mevis", data, "valid_u", workers=1, progress=False)


def test_unknown_split_and_non_positive_workers_are_usage_errors(trees, tmp_path):
    root = trees("ref-vps")
    base = [sys.executable, "-m", "refvps", "eval", "--data", str(root / "data"), "--preds",
            str(root / "preds"), "--no-progress", "--no-record"]
    run = subprocess.run(base + ["--split", "nosuch"], capture_output=True, text=True,
                         timeout=120, cwd=tmp_path, env=_env())
    assert run.returncode == 2 and "Traceback" not in run.stderr, run.stderr
    assert "unknown split 'nosuch'; choose one of test" in run.stderr
    for workers in ("-1", "0"):
        run = subprocess.run(base + ["-j", workers], capture_output=True, text=True,
                             timeout=120, cwd=tmp_path, env=_env())
        assert run.returncode == 2 and "Traceback" not in run.stderr, run.stderr
        assert "Invalid value for '--workers' / '-j'" in run.stderr



def test_folder_that_cannot_be_listed_is_a_problem(trees, tmp_path, monkeypatch):
    """A predictions sub-folder os.scandir refuses (e.g. EACCES; root ignores permissions, so
    the refusal is injected) is named, not silently skipped as an empty folder."""
    import refvps.predictions as predictions

    root = tmp_path / "tree"
    shutil.copytree(trees("ref-vps"), root)
    real = os.scandir

    def scandir(path):
        if str(path).endswith("vps_0002"):
            raise PermissionError(13, "Permission denied", str(path))
        return real(path)

    monkeypatch.setattr(predictions.os, "scandir", scandir)
    with pytest.raises(ValidationError) as info:
        evaluate(root / "preds", "ref-vps", root / "data", workers=1, progress=False)
    lines = [str(p) for p in info.value.problems]
    assert any("preds/vps_0002: folder cannot be listed (Permission denied)" in line
               for line in lines), lines
