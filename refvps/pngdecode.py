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
    filters, rows = rows[:, 0].copy(), rows[:, 1:]
    if filters.max() > 4:
        return None
    if filters[0] == 2:  # the row above the first one is zeros: Up adds nothing
        filters[0] = 0
    out = rows.copy()
    # None and Sub rows do not depend on the row above: all of them at once.
    sub = np.flatnonzero(filters == 1)
    if sub.size:
        out[sub] = _row_prefix_sums(np.ascontiguousarray(rows[sub]))
    done = filters <= 1
    # Up runs need their first row's row above; Paeth / Average rows need the row above.
    # Resolve whatever is ready, all Up runs at once, until every row is done (a few rounds).
    up = filters == 2
    later = np.flatnonzero(filters >= 3).tolist()
    while not done.all():
        ready = [row for row in later if row == 0 or done[row - 1]]
        paeth = np.asarray([row for row in ready if filters[row] == 4], np.int64)
        if paeth.size:
            above = np.where((paeth > 0)[:, None], out[np.maximum(paeth - 1, 0)], 0)
            out[paeth] = _paeth_rows(rows[paeth], above.astype(np.uint8))
        for row in ready:
            if filters[row] == 3:
                above = out[row - 1] if row else np.zeros(stride, np.uint8)
                out[row] = _average_row(rows[row], above)
            done[row] = True
        later = [row for row in later if not done[row]]
        _undo_up_runs(out, up, done)
    return out


def _row_prefix_sums(rows: np.ndarray) -> np.ndarray:
    """Prefix sums along each row, mod 256 (how Sub rows are undone).

    Sub-filtered mask rows are zero except where the value changes, so the sums are computed
    only at the non-zero bytes (and row starts) and each value is repeated up to the next one:
    the cost follows the number of changes, not the number of pixels.
    """
    n_rows, stride = rows.shape
    flat = np.ascontiguousarray(rows).ravel()
    marks = flat != 0
    marks[::stride] = True  # every row start is a point
    points = np.flatnonzero(marks)
    sums = np.cumsum(flat[points], dtype=np.int64)
    first = np.searchsorted(points, np.arange(n_rows, dtype=np.int64) * stride)
    before_row = sums[first] - flat[points[first]]  # sum of all earlier rows
    values = ((sums - before_row[points // stride]) % 256).astype(np.uint8)
    lengths = np.diff(points, append=n_rows * stride)
    return np.repeat(values, lengths).reshape(n_rows, stride)


def _undo_up_runs(out: np.ndarray, up: np.ndarray, done: np.ndarray) -> None:
    """Finish every run of Up rows whose row above the run is done.

    Row y of a run below the finished row b is out[b] + rows[b+1..y] summed down the columns:
    a prefix sum over each run, taken for all runs at once by doubling (after the step of size
    k, each row holds the sum of the k rows ending at it, within its run).
    """
    pending = up & ~done
    if not pending.any():
        return
    rows = np.arange(len(up))
    base = np.maximum.accumulate(np.where(up, 0, rows))  # last non-Up row at or above
    index = np.flatnonzero(pending & done[base])
    if index.size == 0:
        return
    depth = index - base[index]
    step = 1
    while True:
        reach = depth >= step
        if not reach.any():
            break
        at = index[reach]
        out[at] += out[at - step]
        step *= 2
    done[index] = True


def _paeth_rows(raw: np.ndarray, above: np.ndarray) -> np.ndarray:
    """Undo Paeth on rows whose rows above are known (``raw``, ``above``: k x stride uint8).

    Where the pixels above and above-left are equal the predictor is the left pixel, so a row
    is a prefix sum (as for Sub) between the positions where the row above changes; those
    positions, few in a mask, take the full rule, the j-th of every row at the same time.
    """
    n_rows, stride = raw.shape
    b = above.astype(np.int64)
    c = np.zeros_like(b)
    c[:, 1:] = b[:, :-1]
    special = b != c
    prefix = np.cumsum(raw, axis=1, dtype=np.int64)
    counts = special.sum(axis=1)
    rows_of, xs = np.nonzero(special)  # row-major: each row's positions in order
    n_max = int(counts.max(initial=0))
    bases = np.zeros((n_rows, n_max + 1), np.int64)  # base 0 before a row's first position
    if n_max:
        order = np.arange(rows_of.size) - np.repeat(np.cumsum(counts) - counts, counts)
        grid = np.full((n_rows, n_max), -1, np.int64)
        grid[rows_of, order] = xs
        value = np.zeros(n_rows, np.int64)  # at the last special position of each row
        prefix_there = np.zeros(n_rows, np.int64)
        every = np.arange(n_rows)
        for j in range(n_max):
            x = grid[:, j]
            live = x >= 0
            x_safe = np.where(live, x, 0)
            before = np.where(x_safe > 0, prefix[every, x_safe - 1], 0)
            left = np.where(x_safe > 0, (value + before - prefix_there) % 256, 0)
            up, up_left = b[every, x_safe], c[every, x_safe]
            p = left + up - up_left
            pa, pb, pc = np.abs(p - left), np.abs(p - up), np.abs(p - up_left)
            predictor = np.where((pa <= pb) & (pa <= pc), left, np.where(pb <= pc, up, up_left))
            new_value = (raw[every, x_safe].astype(np.int64) + predictor) % 256
            value = np.where(live, new_value, value)
            prefix_there = np.where(live, prefix[every, x_safe], prefix_there)
            bases[:, j + 1] = np.where(live, value - prefix_there, 0)
    run = np.cumsum(special, axis=1)  # how many special positions up to x
    return ((np.take_along_axis(bases, run, axis=1) + prefix) % 256).astype(np.uint8)


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
