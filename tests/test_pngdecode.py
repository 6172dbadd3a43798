"""The fast PNG decoder against the reference readers, pixel for pixel.

PNGs come from PIL and OpenCV (what prediction writers use) and from a small encoder written
here from the PNG specification (W3C PNG 2nd edition, sections 7 and 9), which lets every row
use any of the five filter types, split the data over several IDAT chunks and set bit depths
and chunks that the libraries' writers never produce. Expected values always come from
``np.array(PIL.Image.open(...))`` (the DAVIS reader) and ``cv2.imdecode(..., IMREAD_GRAYSCALE)``
(the MeViS reader), never from refvps.
"""
from __future__ import annotations

import io
import struct
import zlib

import cv2
import numpy as np
import pytest
from PIL import Image

from refvps.masks import read_mask, read_mask_bytes
from refvps.pngdecode import decode_cv2_gray_foreground, decode_labels
from refvps.predictions import PredictionStore


def _chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def _paeth(a: int, b: int, c: int) -> int:
    p = a + b - c
    pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
    return a if pa <= pb and pa <= pc else (b if pb <= pc else c)


def _filter_row(kind: int, row: bytes, above: bytes) -> bytes:
    out = bytearray()
    for x, value in enumerate(row):
        a = row[x - 1] if x else 0
        b = above[x]
        c = above[x - 1] if x else 0
        predictor = (0, a, b, (a + b) // 2, _paeth(a, b, c))[kind]
        out.append((value - predictor) % 256)
    return bytes(out)


def encode(samples: np.ndarray, depth: int = 8, color: int = 0, filters=None, idat_parts: int = 1,
           palette: int | None = None, trns: bool = False, interlace: int = 0,
           extra: tuple[bytes, ...] = ()) -> bytes:
    """A PNG of ``samples`` (H x W ints < 2**depth), row filters chosen by ``filters(y)``."""
    height, width = samples.shape
    bits = np.unpackbits(samples.astype(np.uint8)[..., None], axis=2)[..., 8 - depth:]
    packed = np.packbits(bits.reshape(height, width * depth), axis=1)
    raw, above = bytearray(), bytes(packed.shape[1])
    for y in range(height):
        row = packed[y].tobytes()
        kind = 0 if filters is None else filters(y)
        raw.append(kind)
        raw += _filter_row(kind, row, above)
        above = row
    data = zlib.compress(bytes(raw), 6)
    out = b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, depth,
                                                               color, 0, 0, interlace))
    for kind in extra:
        out += _chunk(kind, b"refvps test")
    if color == 3:
        n = palette or 2 ** depth
        out += _chunk(b"PLTE", bytes((i * 37 + k * 91) % 256 for i in range(n) for k in range(3)))
    if trns:
        out += _chunk(b"tRNS", b"\x00\x00" if color == 0 else b"\x00" * 2)
    cuts = np.linspace(0, len(data), idat_parts + 1).astype(int)
    for a, b in zip(cuts[:-1], cuts[1:]):
        out += _chunk(b"IDAT", data[a:b])
    return out + _chunk(b"IEND", b"")


def _pil(data: bytes) -> np.ndarray:
    array = np.array(Image.open(io.BytesIO(data)))
    return array.astype(np.uint8) if array.dtype == bool else array


def _cv2_fg(data: bytes) -> np.ndarray:
    return cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_GRAYSCALE) != 0


def _mask_like(rng, shape, levels):
    """Blobs and noise over a few levels: long runs (as in masks) and many transitions."""
    height, width = shape
    yy, xx = np.mgrid[:height, :width]
    out = np.zeros(shape, np.int64)
    for level in rng.integers(1, levels, size=3):
        cy, cx = rng.uniform(0, height), rng.uniform(0, width)
        r = rng.uniform(1, max(height, width))
        out[(yy - cy) ** 2 + (xx - cx) ** 2 <= r * r] = level
    noise = rng.random(shape) < rng.choice([0.0, 0.01, 0.3])
    out[noise] = rng.integers(0, levels, size=int(noise.sum()))
    return out


FILTER_PLANS = {
    "none": lambda y: 0, "sub": lambda y: 1, "up": lambda y: 2, "average": lambda y: 3,
    "paeth": lambda y: 4, "cycle": lambda y: y % 5, "mixed": lambda y: (y * 7 + y // 3) % 5,
    "up-runs": lambda y: 2 if y % 6 else 1,
}
SHAPES = [(1, 1), (1, 9), (7, 1), (2, 3), (5, 7), (13, 17), (31, 33), (64, 65), (40, 127)]


@pytest.mark.parametrize("plan", sorted(FILTER_PLANS))
@pytest.mark.parametrize("color,depth", [(0, 1), (0, 2), (0, 4), (0, 8), (3, 1), (3, 2), (3, 4),
                                         (3, 8)])
def test_every_variant_matches_pil_and_opencv(plan, color, depth):
    rng = np.random.default_rng(hash((plan, color, depth)) % 2 ** 32)
    for shape in SHAPES:
        samples = _mask_like(rng, shape, 2 ** depth)
        data = encode(samples, depth, color, FILTER_PLANS[plan],
                      idat_parts=int(rng.integers(1, 4)))
        assert np.array_equal(decode_labels(data), _pil(data)), (shape, plan)
        fast = decode_cv2_gray_foreground(data)
        if color == 0:
            assert np.array_equal(fast, _cv2_fg(data)), (shape, plan)
        else:
            assert fast is None  # palette -> grey needs libpng's weights: OpenCV decides


@pytest.mark.parametrize("mode", ["L", "P", "1"])
def test_library_written_masks(mode):
    rng = np.random.default_rng(len(mode) + ord(mode))
    for shape in [(480, 854), (37, 53), (1, 300), (300, 1), (720, 1280)]:
        values = _mask_like(rng, shape, 2 if mode == "1" else 256)
        image = Image.fromarray((values > 0) if mode == "1" else values.astype(np.uint8))
        if mode == "P":
            image.putpalette(list(range(256)) * 3)
        buffer = io.BytesIO()
        image.save(buffer, format="PNG")
        for data in (buffer.getvalue(),
                     cv2.imencode(".png", values.astype(np.uint8) * (255 if mode == "1" else 1))[1]
                     .tobytes()):
            assert np.array_equal(decode_labels(data), _pil(data))
            fast = decode_cv2_gray_foreground(data)
            assert fast is None or np.array_equal(fast, _cv2_fg(data))


def test_binary_predictions_with_pil_filters():
    """PIL's adaptive filtering picks Sub, Up and Paeth rows on 0/255 masks."""
    rng = np.random.default_rng(5)
    for _ in range(20):
        mask = _mask_like(rng, (120, 200), 2) > 0
        buffer = io.BytesIO()
        Image.fromarray(mask.astype(np.uint8) * 255).save(buffer, format="PNG")
        data = buffer.getvalue()
        assert np.array_equal(decode_cv2_gray_foreground(data), _cv2_fg(data))


@pytest.mark.parametrize("case", ["interlaced", "trns-gray", "trns-palette", "gamma", "16-bit",
                                  "rgb", "bad-crc", "truncated", "no-iend", "trailing",
                                  "not-png", "bad-filter", "short-data", "split-idat"])
def test_uncovered_pngs_fall_back_to_the_reference_reader(case):
    samples = _mask_like(np.random.default_rng(1), (9, 11), 4)
    if case == "interlaced":
        data = encode(samples, 8, 0, interlace=1)
    elif case == "trns-gray":
        data = encode(samples, 8, 0, trns=True)
        assert np.array_equal(decode_labels(data), _pil(data))  # PIL keeps the values
        assert decode_cv2_gray_foreground(data) is None
        return
    elif case == "trns-palette":
        data = encode(samples, 8, 3, trns=True)
        assert np.array_equal(decode_labels(data), _pil(data))  # indices, transparency aside
        return
    elif case == "gamma":
        data = encode(samples, 8, 0, extra=(b"gAMA",))
    elif case == "16-bit":
        data = encode(samples, 8, 0).replace(b"IHDR", b"IHDR", 1)
        data = cv2.imencode(".png", samples.astype(np.uint16) * 300)[1].tobytes()
    elif case == "rgb":
        data = cv2.imencode(".png", np.dstack([samples.astype(np.uint8)] * 3))[1].tobytes()
    elif case == "bad-crc":
        data = bytearray(encode(samples))
        data[-20] ^= 0xFF
        data = bytes(data)
    elif case == "truncated":
        data = encode(samples)[:-30]
    elif case == "no-iend":
        data = encode(samples)[:-12]
    elif case == "trailing":
        data = encode(samples) + b"junk"
    elif case == "not-png":
        data = b"GIF89a" + bytes(40)
    elif case == "bad-filter":
        raw = b"".join(b"\x07" + bytes(11) for _ in range(9))
        data = (b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", struct.pack(">IIBBBBB", 11, 9, 8, 0, 0, 0, 0))
                + _chunk(b"IDAT", zlib.compress(raw)) + _chunk(b"IEND", b""))
    elif case == "short-data":
        raw = b"".join(b"\x00" + bytes(11) for _ in range(8))
        data = (b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", struct.pack(">IIBBBBB", 11, 9, 8, 0, 0, 0, 0))
                + _chunk(b"IDAT", zlib.compress(raw)) + _chunk(b"IEND", b""))
    else:  # IDAT chunks separated by another chunk
        whole = encode(samples, idat_parts=2)
        first = whole.index(b"IDAT") - 4
        length = struct.unpack(">I", whole[first:first + 4])[0]
        cut = first + 12 + length
        data = whole[:cut] + _chunk(b"tEXt", b"a\x00b") + whole[cut:]
    assert decode_labels(data) is None
    assert decode_cv2_gray_foreground(data) is None


def test_readers_use_the_fast_path_and_agree(tmp_path):
    rng = np.random.default_rng(3)
    labels = _mask_like(rng, (48, 80), 256).astype(np.uint8)
    image = Image.fromarray(labels)
    image.putpalette(list(range(256)) * 3)
    path = tmp_path / "a.png"
    image.save(path)
    assert np.array_equal(read_mask(path), labels)
    assert np.array_equal(read_mask_bytes(path.read_bytes(), "a.png"), labels)
    folder = tmp_path / "preds" / "v" / "0"
    folder.mkdir(parents=True)
    Image.fromarray((labels > 100).astype(np.uint8) * 255).save(folder / "00000.png")
    for reader in ("pil", "cv2-gray"):
        store = PredictionStore(tmp_path / "preds", reader=reader)
        assert np.array_equal(store.read_binary("v/0/00000.png"), labels > 100)
