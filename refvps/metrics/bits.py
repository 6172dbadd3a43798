"""Bit-packed binary images: 64 pixels of a row to a ``uint64`` word, and their disk dilation.

Bit b of word k of a packed row is the pixel at column ``64 * k + b`` (``np.packbits`` with
``bitorder="little"`` read as little-endian words), so a shift by one column is a shift by one
bit with a carry into the neighbouring word. Whole-image operations touch 1/8 of the bytes of a
bool image and run 64 pixels per instruction, which is what makes F cheap where boundaries are
long (thin structures, speckled predictions).
"""
from __future__ import annotations

from functools import lru_cache

import numpy as np

WORD = 64
_BYTE_COUNTS = np.array([bin(v).count("1") for v in range(256)], np.uint8)


def popcount(bits: np.ndarray) -> int:
    """Number of set bits of a packed array."""
    if hasattr(np, "bitwise_count"):  # NumPy >= 2.0
        return int(np.bitwise_count(bits).sum())
    return int(_BYTE_COUNTS[np.ascontiguousarray(bits).view(np.uint8)].sum(dtype=np.int64))


def pack_mask(mask: np.ndarray) -> np.ndarray:
    """A bool H x W mask packed into (H, words) uint64; column 64k + b is bit b of word k.

    The words leave room for one spare bit after the last column (the boundary extraction
    replicates the last column there); every bit past the last column is zero.
    """
    height, width = mask.shape
    packed = np.packbits(mask, axis=1, bitorder="little")
    words = width // WORD + 1
    buffer = np.zeros((height, words * 8), np.uint8)
    buffer[:, :packed.shape[1]] = packed
    return buffer.view("<u8").astype(np.uint64, copy=False)


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
def _column_steps(radius: int) -> tuple[tuple[int, tuple[int, ...]], ...]:
    """For each distinct half-width w (ascending): the column steps that grow the previous
    run-length dilation into the one by [-w, w]. A step s applied to a dilation by [-m, m]
    gives [-(m + s), m + s] without gaps when s <= 2m + 1."""
    plan, width = [], 0
    for target in sorted(set(disk_half_widths(radius))):
        steps = []
        while width < target:
            step = min(2 * width + 1, target - width, WORD - 1)
            steps.append(step)
            width += step
        plan.append((target, tuple(steps)))
    return tuple(plan)


def dilate_disk(bits: np.ndarray, radius: int) -> tuple[int, int, np.ndarray]:
    """``bits`` dilated by ``disk(radius)``: (row offset, word offset, packed array).

    The result covers ``radius`` more rows on each side and enough words for ``radius`` more
    columns, so nothing is clipped; row dy of the disk is the run [-w(dy), w(dy)], so the
    dilation is the union over dy of the row-run dilation by w(|dy|) moved by dy rows.
    """
    if radius <= 0:
        return 0, 0, bits
    rows, words = bits.shape
    reach = -(-radius // WORD)
    width = words + 2 * reach + 1  # the extra word keeps each row's carries inside the row
    run = np.zeros((rows, width), np.uint64)
    run[:, reach:reach + words] = bits
    run = run.ravel()
    carry = np.empty_like(run)
    by_width = {}
    for half_width, steps in _column_steps(radius):
        for step in steps:
            grown = np.empty_like(run)
            _spread_columns(run, step, grown, carry)
            run = grown
        by_width[half_width] = run.reshape(rows, width)
    out = np.zeros((rows + 2 * radius, width), np.uint64)
    half_widths = disk_half_widths(radius)
    for dy in range(-radius, radius + 1):
        band = out[radius + dy:radius + dy + rows]
        np.bitwise_or(band, by_width[half_widths[abs(dy)]], out=band)
    return -radius, -reach, out
