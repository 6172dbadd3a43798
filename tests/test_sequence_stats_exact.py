"""The per-unit statistics' fast paths give NumPy's own values bit for bit: ``_nanmean`` against
``np.nanmean`` and ``sequence_recall`` against ``np.mean(values > threshold)``, on hundreds of
random and adversarial arrays (lengths across NumPy's pairwise-summation blocks, NaN densities,
signed zeros, infinities, subnormals, huge magnitudes, strided and reversed views)."""
from __future__ import annotations

import warnings

import numpy as np
import pytest

from refvps.metrics.sequence import _nanmean, sequence_decay, sequence_recall

LENGTHS = (1, 2, 3, 7, 8, 9, 15, 16, 17, 127, 128, 129, 255, 256, 257, 1023, 1024, 1025,
           8191, 8192, 8193, 20001)
"""Around the 8-wide unrolled and 128-element blocks of NumPy's pairwise sum."""


def _bits(value: float) -> bytes:
    """The float's bit pattern, every NaN alike (NumPy and refvps may return different NaNs)."""
    return b"nan" if np.isnan(value) else np.float64(value).tobytes()


def _numpy_nanmean(values: np.ndarray) -> float:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # "Mean of empty slice"
        return float(np.nanmean(values))


def _values(rng: np.random.Generator, n: int, kind: str) -> np.ndarray:
    if kind == "unit":
        return rng.random(n)
    if kind == "scores":  # what J and F look like: many exact 0s and 1s
        return rng.choice([0.0, 1.0, rng.random()], size=n)
    if kind == "magnitudes":
        return rng.choice([-1, 1], size=n) * 10.0 ** rng.uniform(-320, 300, size=n)
    if kind == "special":
        return rng.choice([0.0, -0.0, np.inf, -np.inf, 5e-324, -5e-324, 1e308, -1e308, 0.5], size=n)
    if kind == "cancelling":
        big = rng.uniform(1e15, 1e16, size=n)
        return np.where(rng.random(n) < 0.5, big, -big) + rng.random(n)
    raise ValueError(kind)


CASES = [(seed, n, kind, nan_rate)
         for seed, (n, kind, nan_rate) in enumerate(
             (n, kind, nan_rate) for n in LENGTHS
             for kind in ("unit", "scores", "magnitudes", "special", "cancelling")
             for nan_rate in (0.0, 0.3, 0.97))]


# inf - inf and sums past 1.8e308 warn as they do in np.nanmean itself
@pytest.mark.filterwarnings("ignore:invalid value encountered", "ignore:overflow encountered")
@pytest.mark.parametrize("seed,n,kind,nan_rate", CASES)
def test_nanmean_equals_numpy_bit_for_bit(seed, n, kind, nan_rate):
    rng = np.random.default_rng(seed)
    values = _values(rng, n, kind)
    values[rng.random(n) < nan_rate] = np.nan
    for view in (values, values[::2], values[::-1], values[1:]):
        assert _bits(_nanmean(view)) == _bits(_numpy_nanmean(view)), (n, kind, nan_rate)


def test_nanmean_of_no_numbers_is_nan_without_a_warning():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for values in (np.array([]), np.full(5, np.nan), np.full(9000, np.nan)):
            assert np.isnan(_nanmean(values))


def test_nanmean_hand_computed():
    assert _nanmean(np.array([1.0, np.nan, 0.0, 0.5])) == 0.5
    assert _nanmean(np.array([np.nan, 0.25])) == 0.25
    assert _bits(_nanmean(np.array([-0.0, np.nan, -0.0]))) == _bits(0.0)  # the NaN became +0
    with np.errstate(invalid="ignore"):
        assert np.isnan(_nanmean(np.array([np.inf, -np.inf])))


@pytest.mark.parametrize("seed", range(200))
def test_recall_equals_numpy_mean(seed):
    rng = np.random.default_rng(1000 + seed)
    n = int(rng.choice([1, 2, 3, 100, 257, 8193, 20001]))
    values = _values(rng, n, str(rng.choice(["unit", "scores", "special"])))
    values[rng.random(n) < rng.choice([0.0, 0.5, 1.0])] = np.nan
    threshold = float(rng.choice([0.5, 0.0, 1.0, 0.25, -np.inf]))
    with np.errstate(invalid="ignore"):
        expected = float(np.mean(values > threshold))
    assert _bits(sequence_recall(values, threshold)) == _bits(expected)


def test_recall_hand_computed():
    assert sequence_recall([0.2, 0.6, np.nan, 0.51]) == 0.5
    assert sequence_recall([0.5, 0.5]) == 0.0  # strictly above
    assert np.isnan(sequence_recall([]))


@pytest.mark.parametrize("mode", ["davis2017", "davis2017-numpy1", "fixed"])
def test_decay_is_the_same_when_its_bins_come_from_the_cache(mode):
    rng = np.random.default_rng(7)
    for n in (1, 2, 5, 40, 255, 256, 300, 600):
        values = rng.random(n)
        first, again = sequence_decay(values, mode), sequence_decay(values.copy(), mode)
        assert _bits(first) == _bits(again)
    # Hand-computed: 8 frames give the ids 0, 2, 4, 5, 7, so the bins [0, 3) ... [5, 8).
    assert sequence_decay([1, 1, 1, 0, 0, 0, 0, 0], mode) == 1.0 - 0.0
