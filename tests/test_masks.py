"""Mask I/O: palette / grayscale PNGs, binary writing, RLE, and clear errors for bad files."""
from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from refvps.errors import MaskError
from refvps.formats import voc_palette
from refvps.masks import (read_mask, read_mask_bytes, rle_decode, rle_encode, write_binary_mask,
                          write_label_mask)


def test_palette_png_reads_indices(tmp_path):
    labels = np.array([[0, 1, 2], [255, 1, 0]], np.uint8)
    write_label_mask(tmp_path / "m.png", labels)
    with Image.open(tmp_path / "m.png") as image:
        assert image.mode == "P"
        assert image.getpalette()[3:6] == [128, 0, 0]  # VOC colour of index 1
    assert np.array_equal(read_mask(tmp_path / "m.png"), labels)


@pytest.mark.parametrize("values", [(0, 1), (0, 255)])
def test_grayscale_png_reads_values(tmp_path, values):
    array = np.array([[values[0], values[1]], [values[1], values[0]]], np.uint8)
    Image.fromarray(array).save(tmp_path / "g.png")
    assert np.array_equal(read_mask(tmp_path / "g.png"), array)


def test_binary_writer_uses_0_255(tmp_path):
    write_binary_mask(tmp_path / "b.png", np.array([[True, False]]))
    with Image.open(tmp_path / "b.png") as image:
        assert image.mode == "L"
        assert np.array_equal(np.array(image), [[255, 0]])


def test_bilevel_png(tmp_path):
    Image.fromarray(np.array([[True, False]])).save(tmp_path / "one.png")
    assert np.array_equal(read_mask(tmp_path / "one.png"), [[1, 0]])


@pytest.mark.parametrize("mode, match", [("RGB", "RGB"), ("RGBA", "RGBA"), ("I;16", "16-bit")])
def test_wrong_modes_are_errors_naming_the_file(tmp_path, mode, match):
    path = tmp_path / f"bad_{mode.replace(';', '')}.png"
    if mode == "I;16":
        Image.fromarray(np.array([[0, 1]], np.uint16)).save(path)
    else:
        Image.new(mode, (3, 2)).save(path)
    with pytest.raises(MaskError, match=match) as info:
        read_mask(path)
    assert str(path) in str(info.value)


def test_unreadable_and_missing_files(tmp_path):
    (tmp_path / "junk.png").write_bytes(b"definitely not a png")
    with pytest.raises(MaskError, match="unreadable") as info:
        read_mask(tmp_path / "junk.png")
    assert "junk.png" in str(info.value)
    with pytest.raises(MaskError, match="not found"):
        read_mask(tmp_path / "absent.png")
    with pytest.raises(MaskError, match="in.zip:x.png"):
        read_mask_bytes(b"\x89PNG truncated", "in.zip:x.png")


def test_rle_known_strings():
    # Hand-derived in dataset-formats §0.3: all-zero and all-one 4 x 6 masks.
    assert rle_encode(np.zeros((4, 6)))["counts"] == "h0"
    assert rle_encode(np.ones((4, 6)))["counts"] == "0h0"
    assert rle_encode(np.ones((4, 6)))["size"] == [4, 6]


def test_rle_round_trip_and_column_major_order():
    mask = np.zeros((3, 4), bool)
    mask[0, 1] = True  # column-major position 3: runs [3, 1, 8]
    rle = rle_encode(mask)
    assert rle["counts"] == "318"  # runs 3, 1, 8; each below 16 -> one character chr(48 + x)
    assert np.array_equal(rle_decode(rle), mask)
    assert np.array_equal(rle_decode(rle["counts"], size=(3, 4)), mask)
    rng = np.random.default_rng(0)
    for _ in range(50):
        shape = tuple(int(v) for v in rng.integers(1, 40, size=2))
        random_mask = rng.random(shape) < rng.random()
        assert np.array_equal(rle_decode(rle_encode(random_mask)), random_mask)


def test_voc_palette_known_colours():
    palette = voc_palette()
    assert palette[0].tolist() == [0, 0, 0]
    assert palette[1].tolist() == [128, 0, 0]
    assert palette[2].tolist() == [0, 128, 0]
    assert palette[3].tolist() == [128, 128, 0]
    assert palette[4].tolist() == [0, 0, 128]
    assert palette[255].tolist() == [224, 224, 192]
