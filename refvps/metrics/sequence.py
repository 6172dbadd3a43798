"""Per-sequence statistics: mean, recall, decay (davis2017 ``db_statistics``) and temporal consistency."""
from __future__ import annotations

import warnings
from functools import lru_cache
from typing import Sequence

import numpy as np

from refvps.metrics.modes import DECAY_MODES, DecayMode


def _nanmean(values: np.ndarray) -> float:
    """``np.nanmean`` of a float64 array, NaN (without a warning) when it holds no number.

    The same arithmetic as NumPy's: NaNs replaced by 0 in a contiguous array, its pairwise
    ``np.add.reduce``, divided by the count of numbers; without ``np.nanmean``'s per-call
    overhead (~20 us), which per-unit statistics pay a few thousand times.
    """
    nan = np.isnan(values)
    numbers = values.size - int(np.count_nonzero(nan))
    if numbers == 0:
        return float("nan")
    contiguous = np.where(nan, 0.0, values) if numbers < values.size else \
        np.ascontiguousarray(values)
    return float(np.add.reduce(contiguous) / numbers)


def sequence_mean(values: Sequence[float]) -> float:
    """Mean over frames ignoring NaN (``np.nanmean``); NaN for no values."""
    return _nanmean(np.asarray(values, dtype=np.float64))


def sequence_recall(values: Sequence[float], threshold: float = 0.5) -> float:
    """Fraction of frames scoring strictly above ``threshold`` (NaN counts as below)."""
    values = np.asarray(values, dtype=np.float64)
    if values.size == 0:
        return float("nan")
    with np.errstate(invalid="ignore"):
        above = np.count_nonzero(values > threshold)
    return above / values.size  # np.mean's value: its float64 sum of 0s and 1s is exact


@lru_cache(maxsize=4096)  # a benchmark's units have a few hundred lengths at most
def _decay_bins(n: int, mode: str) -> tuple[tuple[int, int], ...]:
    ids = np.round(np.linspace(1, n, 5) + 1e-10) - 1
    bins = []
    for k in range(4):
        start, end = int(ids[k]), int(ids[k + 1])
        if mode == "fixed":
            bins.append((start, end + 1))
        elif mode == "davis2017-numpy1":  # indices wrap through uint8, the +1 does not
            bins.append((start % 256, end % 256 + 1))
        elif mode == "davis2017":  # uint8 wrap and, under NumPy >= 2, uint8 overflow of the +1
            bins.append((start % 256, (end % 256 + 1) % 256))
        else:
            raise ValueError(f"unknown decay mode {mode!r}; choose one of {DECAY_MODES}")
    return tuple(bins)


def sequence_decay(values: Sequence[float], mode: DecayMode = "davis2017") -> float:
    """Mean of the first quarter minus mean of the last quarter (four overlapping bins).

    ``davis2017`` reproduces the official code under NumPy >= 2, including its uint8 index
    bug for sequences of 256 frames or more; ``davis2017-numpy1`` the same under NumPy 1.x;
    ``fixed`` uses exact indices. All three agree below 256 frames.
    """
    values = np.asarray(values, dtype=np.float64)
    if values.size == 0:
        return float("nan")
    bins = [values[a:b] for a, b in _decay_bins(values.size, mode)]
    return _nanmean(bins[0]) - _nanmean(bins[3])


def decay_with_check(values: Sequence[float], mode: DecayMode = "davis2017",
                     label: str = "") -> float:
    """:func:`sequence_decay` in ``mode``, warning when it differs from the ``fixed`` value."""
    value = sequence_decay(values, mode)
    if mode != "fixed" and len(values) >= 256:
        fixed = sequence_decay(values, "fixed")
        if not (value == fixed or (np.isnan(value) and np.isnan(fixed))):
            warnings.warn(
                f"decay{(' of ' + label) if label else ''}: {len(values)} frames, the official "
                f"{mode!r} value ({value}) differs from the fixed one ({fixed}) because of the "
                "uint8 index bug in davis2017 db_statistics", RuntimeWarning, stacklevel=2)
    return value


def temporal_consistency(values: Sequence[float]) -> float:
    """Mean absolute change of a per-frame score between consecutive scored frames.

    refvps-defined (no official implementation exists): ``mean_t |J(t+1) - J(t)|`` over the
    frames a benchmark scores, in their order. NaN for fewer than two frames (undefined, so such
    queries are excluded from dataset means rather than counted as perfectly consistent).
    Lower is better; an all-empty prediction on empty ground truth scores 0.
    """
    values = np.asarray(values, dtype=np.float64)
    if values.size < 2:
        return float("nan")
    return _nanmean(np.abs(np.diff(values)))
