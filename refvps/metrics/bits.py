"""Bit-packed binary images: 64 pixels of a row to a ``uint64`` word, and their disk dilation.

Bit b of word k of a packed row is the pixel at column ``64 * k + b`` (``np.packbits`` with
``bitorder="little"`` read as little-endian words), so a shift by one column is a shift by one
bit with a carry into the neighbouring word. Whole-image operations touch 1/8 of the bytes of a
bool image and run 64 pixels per instruction, which is what makes F cheap where boundaries are
long (thin structures, speckled predictions).

Several images of one shape are processed as one stacked ``(n, rows, words)`` array, so the
fixed cost of each NumPy call is paid once for all of them, and the scratch arrays of the
dilation are reused from call to call (see :class:`_Scratch`).
"""
from __future__ import annotations

import math
import threading
from functools import lru_cache

import numpy as np

WORD = 64
_BYTE_COUNTS = np.array([bin(v).count("1") for v in range(256)], np.uint8)


def popcount(bits: np.ndarray) -> int:
    """Number of set bits of a packed array."""
    if hasattr(np, "bitwise_count"):  # NumPy >= 2.0
        return int(np.bitwise_count(bits).sum())
    return int(_BYTE_COUNTS[np.ascontiguousarray(bits).view(np.uint8)].sum(dtype=np.int64))


def popcounts(bits: np.ndarray) -> list[int]:
    """Set bits of each image of a stacked ``(n, rows, words)`` packed array."""
    if bits.size == 0:
        return [0] * bits.shape[0]
    if hasattr(np, "bitwise_count"):
        return [int(v) for v in np.bitwise_count(bits).sum(axis=(1, 2))]
    return [popcount(image) for image in bits]


def pack_mask(mask: np.ndarray) -> np.ndarray:
    """A bool H x W mask packed into (H, words) uint64; column 64k + b is bit b of word k.

    The words leave room for one spare bit after the last column (the boundary extraction
    replicates the last column there); every bit past the last column is zero.
    """
    return pack_masks([mask])[0]


def pack_masks(masks: list[np.ndarray], clear: np.ndarray | None = None) -> np.ndarray:
    """Bool H x W masks packed as by :func:`pack_mask` into one ``(n, H, words)`` array;
    pixels set in ``clear`` (bool H x W) are cleared in every mask."""
    height, width = masks[0].shape
    words = width // WORD + 1
    buffer = np.zeros((len(masks), height, words * 8), np.uint8)
    used = -(-width // 8)
    for index, mask in enumerate(masks):
        buffer[index, :, :used] = np.packbits(mask, axis=-1, bitorder="little")
    packed = buffer.view("<u8").astype(np.uint64, copy=False)
    if clear is not None:
        keep = np.zeros((height, words * 8), np.uint8)
        keep[:, :used] = np.packbits(clear, axis=-1, bitorder="little")
        keep = keep.view("<u8").astype(np.uint64, copy=False)
        np.invert(keep, out=keep)
        packed &= keep
    return packed


class _Scratch(threading.local):
    """Work arrays reused across calls, one set per thread.

    A fresh array for every intermediate costs more than the arithmetic: arrays past the C
    allocator's mmap threshold (128 KiB by default, a 480p frame's worth of stacked words) are
    mapped, page-faulted and unmapped at every call, which tripled the time of a dilation.
    """

    def __init__(self) -> None:
        self.arrays: dict[str, np.ndarray] = {}

    def get(self, name: str, shape: tuple[int, ...]) -> np.ndarray:
        size = math.prod(shape)
        array = self.arrays.get(name)
        if array is None or array.size < size:
            array = self.arrays[name] = np.empty(max(size, 1 << 12), np.uint64)
        return array[:size].reshape(shape)


_SCRATCH = _Scratch()


def _spread_columns(flat: np.ndarray, step: int, out: np.ndarray, carry: np.ndarray) -> None:
    """``out`` = ``flat`` OR-ed with itself shifted ``step`` columns left and right.

    ``flat`` is a packed image raveled row after row; each row ends in a zero word that stays
    zero, so carries never cross from one row into the next (1 <= step < 64).
    """
    s, back = np.uint64(step), np.uint64(WORD - step)
    np.left_shift(flat, s, out=out)
    np.bitwise_or(out, flat, out=out)
    np.right_shift(flat, s, out=carry)
    np.bitwise_or(out, carry, out=out)
    np.right_shift(flat[:-1], back, out=carry[1:])
    np.bitwise_or(out[1:], carry[1:], out=out[1:])
    np.left_shift(flat[1:], back, out=carry[:-1])
    np.bitwise_or(out[:-1], carry[:-1], out=out[:-1])


@lru_cache(maxsize=64)
def disk_half_widths(radius: int) -> tuple[int, ...]:
    """Half-width of ``skimage.morphology.disk(radius)`` on row offset dy = 0..radius:
    the largest dx with dx^2 + dy^2 <= radius^2 (the disk davis2017 dilates with)."""
    widths = []
    dx = radius
    for dy in range(radius + 1):
        while dx * dx + dy * dy > radius * radius:
            dx -= 1
        widths.append(dx)
    return tuple(widths)


@lru_cache(maxsize=64)
def _plan(radius: int) -> tuple[tuple[tuple[int, ...], tuple[int, ...]], ...]:
    """For each distinct half-width w of the disk (ascending): the column steps that grow the
    previous run-length dilation into the one by [-w, w] (a step s applied to a dilation by
    [-m, m] gives [-(m + s), m + s] without gaps when s <= 2m + 1), and the row offsets dy
    whose disk row is [-w, w]."""
    widths = disk_half_widths(radius)
    plan, width = [], 0
    for target in sorted(set(widths)):
        steps = []
        while width < target:
            step = min(2 * width + 1, target - width, WORD - 1)
            steps.append(step)
            width += step
        offsets = tuple(dy for dy in range(-radius, radius + 1) if widths[abs(dy)] == target)
        plan.append((tuple(steps), offsets))
    return tuple(plan)


@lru_cache(maxsize=64)
def _one_sided_plan(radius: int) -> tuple[tuple[int, tuple[int, ...], tuple[int, ...]], ...]:
    """:func:`_plan` for one-sided runs: for each distinct half-width w (ascending), the
    steps that grow the run of the previous width into ``2w + 1`` columns (a step s <= L
    applied to a run of L columns gives L + s), and the row offsets of w."""
    widths = disk_half_widths(radius)
    plan, length = [], 1
    for target in sorted(set(widths)):
        steps = []
        while length < 2 * target + 1:
            step = min(length, 2 * target + 1 - length)
            steps.append(step)
            length += step
        offsets = tuple(dy for dy in range(-radius, radius + 1) if widths[abs(dy)] == target)
        plan.append((target, tuple(steps), offsets))
    return tuple(plan)


def reach_words(radius: int) -> int:
    """Words a dilation by ``radius`` columns can spill into on each side."""
    return -(-radius // WORD)


def padded_canvas(n: int, rows: int, words: int, radius: int) -> tuple[np.ndarray, int]:
    """A zeroed scratch canvas for :func:`dilate_stack`: ``(n, rows, words + pad)`` and the
    word at which image word 0 goes (``reach_words`` of zeros on the left; on the right those
    and two more: one keeps each row's carries inside the row, one is read by the overlapped
    layout's last word)."""
    reach = reach_words(radius)
    canvas = _SCRATCH.get("canvas", (n, rows, words + 2 * reach + 2))
    canvas.fill(0)
    return canvas, reach


def _guard_bits(radius: int) -> int:
    """Guard bits on each side of an overlapped word for ``radius`` (0: none fits, use the
    carry layout)."""
    guard = 4 * -(-radius // 4)
    return guard if 0 < guard <= 16 else 0


def dilate_stack(canvas: np.ndarray, radius: int) -> tuple[np.ndarray, np.ndarray]:
    """(sources, dilations) of the images of a :func:`padded_canvas`, rows aligned with the
    canvas and words in one common layout, so that ``popcounts(sources[i] & dilations[j])``
    counts the pixels of image i within ``disk(radius)`` of a pixel of image j. Both are
    scratch arrays, valid until the next call on this thread.

    For radii up to 16 (diagonals up to 2,000 pixels; 1080p needs 18) the words are first laid out
    overlapping (:func:`_overlapped`): each word carries ``radius`` or more pixels of its
    neighbours on either side, so the row-run dilations need no carries between words and
    cost half the NumPy calls.
    """
    if radius <= 0:
        return canvas, canvas
    guard = _guard_bits(radius)
    if not guard:
        rows = canvas.shape[1]
        return canvas, dilate_canvas(canvas, radius)[:, radius:radius + rows]
    words = _overlapped(canvas, radius, guard)
    sources = _SCRATCH.get("sources", words.shape)
    np.bitwise_and(words, _payload_mask(guard), out=sources)
    return sources, _dilate_overlapped(words, radius)


def _overlapped(canvas: np.ndarray, radius: int, guard: int) -> np.ndarray:
    """The :func:`padded_canvas` re-laid as overlapping words: word j holds the
    ``64 - 2 * guard`` image columns from ``(64 - 2 * guard) * j`` (its payload, bits
    ``guard`` upwards) and ``guard`` columns either side of them (a scratch array)."""
    n, rows, width = canvas.shape
    payload = WORD - 2 * guard
    count = -(-WORD * (width - 2 * reach_words(radius) - 2) // payload)
    start = WORD * reach_words(radius) - guard  # stream bit of word 0's bit 0
    shape, byte = (n, rows, count), start // 8
    strides = (canvas.strides[0], canvas.strides[1], payload // 8)
    low = np.ndarray(shape, np.uint64, canvas, byte, strides)
    out = _SCRATCH.get("overlapped", shape)
    if start % 8 == 0:
        np.copyto(out, low)
        return out
    high = np.ndarray(shape, np.uint64, canvas, byte + 8, strides)
    shift = np.uint64(start % 8)
    np.right_shift(low, shift, out=out)
    carry = _SCRATCH.get("carry", shape)
    np.left_shift(high, np.uint64(WORD) - shift, out=carry)
    np.bitwise_or(out, carry, out=out)
    return out


def _payload_mask(guard: int) -> np.uint64:
    """The payload bits of an overlapped word."""
    return (np.uint64(1) << np.uint64(WORD - 2 * guard)) - np.uint64(1) << np.uint64(guard)


def _dilate_overlapped(words: np.ndarray, radius: int) -> np.ndarray:
    """:func:`dilate_canvas` of overlapped words, only on the input's rows.

    Within a word the runs grow one-sided (``run | run << s``: two calls a step, no carries)
    into runs of ``2w + 1`` columns ending at each pixel, which a shift by w centres; every
    bit that reaches the payload stays inside the word, as the guards are at least the radius.
    """
    n, rows, count = words.shape
    out = _SCRATCH.get("dilated", (n, rows, count))
    out.fill(0)
    run = words
    spare = [_SCRATCH.get("run-a", words.shape), _SCRATCH.get("run-b", words.shape)]
    centred = _SCRATCH.get("shifted", words.shape)
    for half_width, steps, offsets in _one_sided_plan(radius):
        for step in steps:
            grown = spare[0] if run is not spare[0] else spare[1]
            np.left_shift(run, np.uint64(step), out=grown)
            np.bitwise_or(grown, run, out=grown)
            run = grown
        if half_width:
            np.right_shift(run, np.uint64(half_width), out=centred)
            level = centred
        else:
            level = run
        for dy in offsets:  # output row i gets input row i - dy
            if abs(dy) >= rows:
                continue
            if dy >= 0:
                band, moved = out[:, dy:], level[:, :rows - dy]
            else:
                band, moved = out[:, :rows + dy], level[:, -dy:]
            np.bitwise_or(band, moved, out=band)
    return out


def dilate_canvas(canvas: np.ndarray, radius: int) -> np.ndarray:
    """Each image of a :func:`padded_canvas` dilated by ``disk(radius)``, into a scratch array
    of ``radius`` more rows on each side (row ``radius + i`` is canvas row ``i``; words as in
    the canvas). The result is valid until the next dilation on this thread.

    Row dy of the disk is the run [-w(dy), w(dy)], so the dilation is the union over dy of the
    row-run dilation by w(|dy|) moved by dy rows. The run dilations grow one from another;
    each is OR-ed into the result as soon as it exists, so two work arrays serve all of them.
    """
    n, rows, width = canvas.shape
    out = _SCRATCH.get("dilated", (n, rows + 2 * radius, width))
    out.fill(0)
    run = canvas.reshape(-1)
    spare = [_SCRATCH.get("run-a", run.shape), _SCRATCH.get("run-b", run.shape)]
    carry = _SCRATCH.get("carry", run.shape)
    for steps, offsets in _plan(radius):
        for step in steps:
            grown = spare[0] if run is not spare[0] else spare[1]
            _spread_columns(run, step, grown, carry)
            run = grown
        image = run.reshape(n, rows, width)
        for dy in offsets:
            band = out[:, radius + dy:radius + dy + rows]
            np.bitwise_or(band, image, out=band)
    return out
