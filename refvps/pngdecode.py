"""A fast, exact decoder for the PNG masks benchmarks use: single-channel, 1/2/4/8-bit.

Decoding a mask PNG is mostly inflating its data (a few KB that expand to one byte per pixel)
and undoing the per-row filters. Here the data is inflated with zlib-ng when it is installed (a
drop-in zlib built for speed: about 10x faster than the standard library's zlib on mask PNGs;
wheels for every major platform, maintained with python-isal) and the filters are undone for all
rows at once with numpy and OpenCV prefix sums instead of row by row in C:

* ``None`` and ``Sub`` rows do not depend on the row above: Sub is a prefix sum along the row
  (mod 256), taken for all Sub rows at once from ``cv2.integral``;
* ``Up`` rows add the row above, so a run of them below a known row is a prefix sum down the
  columns, taken for all runs at once;
* ``Paeth`` predicts the left neighbour wherever the two pixels above it are equal (almost
  everywhere in a mask), so a Paeth row is a prefix sum between the few other pixels; ``Average``
  rows (rare in masks) are undone pixel by pixel.

Only what can be reproduced exactly is decoded: a greyscale or palette PNG, 1/2/4/8-bit, not
interlaced, with well-formed chunks and checksums. For anything else the functions return None
and the caller uses the reference reader (PIL or OpenCV), which also reports the errors.
"""
from __future__ import annotations

import struct
import zlib

import cv2
import numpy as np

try:  # optional: the standard library's zlib decodes the same bytes, only slower
    from zlib_ng import zlib_ng as _inflater
except ImportError:  # pragma: no cover - exercised where zlib-ng is not installed
    _inflater = zlib

SIGNATURE = b"\x89PNG\r\n\x1a\n"
GRAY, PALETTE = 0, 3
_SKIPPED = frozenset({b"tEXt", b"zTXt", b"iTXt", b"tIME", b"pHYs"})
"""Ancillary chunks that change nothing in the pixels either reader returns."""
_PIL_GRAY_SCALE = {1: 1, 2: 85, 4: 17, 8: 1}
"""PIL returns 1-bit greyscale as 0/1 (mode '1'), 2- and 4-bit scaled to 0..255 (mode 'L')."""


class _Png:
    """Header fields and the concatenated IDAT data of a PNG this module can decode."""

    __slots__ = ("width", "height", "depth", "color", "has_trns", "data")

    def __init__(self, width: int, height: int, depth: int, color: int, has_trns: bool,
                 data: bytes):
        self.width, self.height, self.depth, self.color = width, height, depth, color
        self.has_trns, self.data = has_trns, data


def _parse(data: bytes) -> _Png | None:
    """The chunks of ``data``, or None when it is anything but a plain single-channel PNG."""
    if not data.startswith(SIGNATURE):
        return None
    pos, end = len(SIGNATURE), len(data)
    header = None
    idat: list[bytes] = []
    has_trns = seen_iend = False
    last = b""
    while pos + 12 <= end:
        length, kind = struct.unpack_from(">I4s", data, pos)
        body_end = pos + 8 + length
        if body_end + 4 > end:
            return None
        if zlib.crc32(data[pos + 4:body_end]) != struct.unpack_from(">I", data, body_end)[0]:
            return None
        body = data[pos + 8:body_end]
        if header is None:
            if kind != b"IHDR" or length != 13:
                return None
            header = struct.unpack(">IIBBBBB", body)
        elif kind == b"IDAT":
            if idat and last != b"IDAT":  # IDAT chunks must be consecutive
                return None
            idat.append(body)
        elif kind == b"IEND":
            seen_iend = True
            pos = body_end + 4
            break
        elif kind == b"tRNS":
            has_trns = True
        elif kind not in _SKIPPED and not (kind == b"PLTE" and header[3] == PALETTE):
            return None
        last = kind
        pos = body_end + 4
    if header is None or not idat or not seen_iend or pos != end:
        return None
    width, height, depth, color, compression, filtering, interlace = header
    if (color not in (GRAY, PALETTE) or depth not in (1, 2, 4, 8) or compression or filtering
            or interlace or width == 0 or height == 0):
        return None
    return _Png(width, height, depth, color, has_trns, b"".join(idat))


def _unfilter(png: _Png) -> np.ndarray | None:
    """The raw scanlines (height x bytes per row, uint8) with the row filters undone."""
    stride = (png.width * png.depth + 7) // 8
    try:
        raw = _inflater.decompress(png.data)
    except zlib.error:
        return None
    if len(raw) != png.height * (stride + 1):
        return None
    rows = np.frombuffer(raw, np.uint8).reshape(png.height, stride + 1)
    filters, rows = rows[:, 0], rows[:, 1:]
    if filters.max() > 4:
        return None
    out = np.empty_like(rows)
    # Rows of Paeth / Average depend on the finished row above: undo the blocks between them
    # vectorised, those rows one at a time.
    sequential = np.flatnonzero(filters >= 3)
    start = 0
    for row in [*sequential.tolist(), png.height]:
        if row > start:
            _unfilter_block(rows[start:row], filters[start:row], out[start:row],
                            out[start - 1] if start else None)
        if row < png.height:
            above = out[row - 1] if row else np.zeros(stride, np.uint8)
            if filters[row] == 4:
                out[row] = _paeth_row(rows[row], above)
            else:
                out[row] = _average_row(rows[row], above)
        start = row + 1
    return out


def _row_prefix_sums(rows: np.ndarray) -> np.ndarray:
    """Prefix sums along each row mod 256 (uint8), from the 2-D integral: I[y + 1] - I[y]."""
    if rows.size * 255 < 2 ** 31:
        integral = cv2.integral(rows, sdepth=cv2.CV_32S)
        return (integral[1:, 1:] - integral[:-1, 1:]).astype(np.uint8)  # int32 wraps mod 256
    integral = cv2.integral(rows, sdepth=cv2.CV_64F)  # exact up to 2**53
    return (integral[1:, 1:] - integral[:-1, 1:]).astype(np.int64).astype(np.uint8)


def _unfilter_block(rows: np.ndarray, filters: np.ndarray, out: np.ndarray,
                    above: np.ndarray | None) -> None:
    """Undo None / Sub / Up on consecutive rows; ``above`` = the finished row before them."""
    out[:] = rows
    sub = filters == 1
    if sub.any():
        index = np.flatnonzero(sub)
        out[index] = _row_prefix_sums(np.ascontiguousarray(rows[index]))
    up = filters == 2
    if up[0]:  # the first row adds the finished row above it (zeros at the image's top)
        if above is not None:
            out[0] += above
        up = up.copy()
        up[0] = False
    if not up.any():
        return
    # Row y of a run of Up rows under the finished row b is out[b] + rows[b+1..y] summed down
    # the columns: a prefix sum over each run, taken for all runs at once by doubling (after
    # the step of size k, each row holds the sum of the k rows ending at it, within its run).
    index = np.flatnonzero(up)
    depth = index - np.maximum.accumulate(np.where(up, 0, np.arange(len(filters))))[index]
    step = 1
    while True:
        reach = depth >= step
        if not reach.any():
            break
        rows_at = index[reach]
        out[rows_at] += out[rows_at - step]
        step *= 2


def _paeth_row(raw: np.ndarray, above: np.ndarray) -> np.ndarray:
    """Undo Paeth on one row: where the pixels above and above-left are equal the predictor
    is the left pixel, so only the other positions need the full rule."""
    b = above.astype(np.int32)
    c = np.concatenate(([0], b[:-1]))
    special = np.flatnonzero(b != c)
    prefix = np.cumsum(raw, dtype=np.int64)
    out = np.empty(raw.shape[0], np.int64)
    value = 0  # reconstructed value at the previous position
    previous = -1  # the last position whose value is known
    starts, bases = [0], [0]
    for x in special.tolist():
        if x > 0:  # left neighbour = value at previous + the Sub-like run up to x - 1
            left = (value + int(prefix[x - 1]) - (int(prefix[previous]) if previous >= 0 else 0)) % 256
        else:
            left = 0
        up, up_left = int(b[x]), int(c[x])
        p = left + up - up_left
        pa, pb, pc = abs(p - left), abs(p - up), abs(p - up_left)
        predictor = left if pa <= pb and pa <= pc else (up if pb <= pc else up_left)
        value = (int(raw[x]) + predictor) % 256
        previous = x
        starts.append(x)
        bases.append(value - int(prefix[x]))
    # Between special positions: value[x] = base + prefix[x], where base is fixed per run.
    run = np.searchsorted(np.asarray(starts[1:], np.int64), np.arange(raw.shape[0]), "right")
    out[:] = np.asarray(bases, np.int64)[run] + prefix
    return (out % 256).astype(np.uint8)


def _average_row(raw: np.ndarray, above: np.ndarray) -> np.ndarray:
    """Undo Average on one row (rare in masks): pixel by pixel."""
    out = bytearray(raw.shape[0])
    left = 0
    for x, (value, up) in enumerate(zip(raw.tolist(), above.tolist())):
        left = out[x] = (value + ((left + up) >> 1)) & 0xFF
    return np.frombuffer(bytes(out), np.uint8)


def _samples(png: _Png, scanlines: np.ndarray) -> np.ndarray:
    """One uint8 sample per pixel (1/2/4-bit samples unpacked, most significant bits first)."""
    if png.depth == 8:
        return scanlines
    bits = np.unpackbits(scanlines, axis=1)
    if png.depth == 1:
        return bits[:, :png.width]
    per = png.depth
    groups = bits[:, :png.width * per].reshape(png.height, png.width, per)
    weights = (1 << np.arange(per - 1, -1, -1)).astype(np.uint8)
    return (groups * weights).sum(axis=2, dtype=np.uint8)


def decode_labels(data: bytes) -> np.ndarray | None:
    """``np.array(PIL.Image.open(png))`` as refvps reads label masks (palette indices, grey
    values, 1-bit as 0/1; uint8 H x W), or None when this PNG needs the reference reader."""
    png = _parse(data)
    if png is None:
        return None
    scanlines = _unfilter(png)
    if scanlines is None:
        return None
    samples = _samples(png, scanlines)
    if png.color == GRAY and png.depth in (2, 4):
        samples = samples * np.uint8(_PIL_GRAY_SCALE[png.depth])
    return np.ascontiguousarray(samples)


def decode_cv2_gray_foreground(data: bytes) -> np.ndarray | None:
    """``cv2.imdecode(png, IMREAD_GRAYSCALE) != 0`` for a greyscale PNG without transparency
    (bool H x W), or None when this PNG needs OpenCV (palette colours are converted to grey
    with libpng's weights, which only OpenCV reproduces)."""
    png = _parse(data)
    if png is None or png.color != GRAY or png.has_trns:
        return None
    scanlines = _unfilter(png)
    if scanlines is None:
        return None
    return _samples(png, scanlines) != 0
