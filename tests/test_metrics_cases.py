"""Hand-computed cases: the edge-case table of metrics-spec §10.2, sequence statistics, TC."""
from __future__ import annotations

import math
import warnings

import numpy as np
import pytest

from literal_davis import literal_statistics
from refvps.metrics import (contour_accuracy, decay_with_check, region_similarity, sequence_decay,
                            sequence_mean, sequence_recall, temporal_consistency)

H, W = 480, 854


def _box(y0, y1, x0, x1, shape=(H, W)):
    mask = np.zeros(shape, bool)
    mask[y0:y1, x0:x1] = True
    return mask


EMPTY = np.zeros((H, W), bool)
FULL = np.ones((H, W), bool)
OBJECT = _box(100, 200, 300, 500)  # 100 x 200 = 20,000 px


@pytest.mark.parametrize("gt, pred, void, j, f", [
    (EMPTY, EMPTY, None, 1.0, 1.0),                       # GT empty, pred empty
    (EMPTY, OBJECT, None, 0.0, 0.0),                      # GT empty, pred non-empty (P=0, R=1)
    (OBJECT, EMPTY, None, 0.0, 0.0),                      # GT non-empty, pred empty (P=1, R=0)
    (OBJECT, OBJECT, None, 1.0, 1.0),                     # pred = GT
    (FULL, FULL, None, 1.0, 1.0),                         # both whole frame: no boundary at all
    (OBJECT, FULL, None, 20000 / (H * W), 0.0),           # pred whole frame, GT partial
    (OBJECT, OBJECT, FULL, 1.0, 1.0),                     # everything void
    (OBJECT, OBJECT | _box(0, 10, 0, 10), _box(0, 300, 0, 854), 1.0, 1.0),  # all inside void
    (OBJECT, _box(250, 300, 300, 500), _box(0, 240, 0, 854), 0.0, 0.0),  # GT in void, pred out
])
def test_edge_case_table(gt, pred, void, j, f):
    assert region_similarity(gt, pred, void) == j
    assert contour_accuracy(gt, pred, void) == f


def test_disjoint_one_pixel_objects_closer_than_radius():
    gt = np.zeros((H, W), bool)
    pred = np.zeros((H, W), bool)
    gt[200, 300] = True
    pred[200, 303] = True  # 3 px apart, radius 8
    assert region_similarity(gt, pred) == 0.0
    assert contour_accuracy(gt, pred) == 1.0


def test_any_nonzero_value_is_foreground():
    labels = np.zeros((20, 30), np.uint8)
    labels[5:10, 5:15] = 255
    ones = (labels > 0).astype(np.uint8)
    sevens = ones * 7
    pred = np.zeros((20, 30), np.uint8)
    pred[5:10, 8:15] = 1
    for gt in (labels, ones, sevens):
        assert region_similarity(gt, pred) == 35 / 50
        assert contour_accuracy(gt, pred) == contour_accuracy(ones, pred)


def test_shapes_differ_is_an_error():
    with pytest.raises(ValueError, match="shape mismatch"):
        region_similarity(np.zeros((4, 5)), np.zeros((5, 4)))
    with pytest.raises(ValueError, match="shape mismatch"):
        contour_accuracy(np.zeros((4, 5)), np.zeros((5, 4)))
    with pytest.raises(ValueError, match="void"):
        region_similarity(np.zeros((4, 5)), np.zeros((4, 5)), np.zeros((4, 4)))


def test_j_returns_float_for_empty_union():
    value = region_similarity(np.zeros((3, 3)), np.zeros((3, 3)))
    assert type(value) is float and value == 1.0


def test_hand_computed_shifted_rectangle():
    # GT 4x5 = 20 px, prediction shifted by one column: I = 16, U = 24.
    gt = _box(2, 6, 2, 7, (10, 12))
    pred = _box(2, 6, 3, 8, (10, 12))
    assert region_similarity(gt, pred) == 16 / 24


def test_boundary_sits_towards_origin_and_border_is_not_boundary():
    # A mask filling columns >= 40 has its boundary in column 39; the frame border is never
    # a boundary, so a prediction filling the frame has no boundary pixels at all.
    gt = np.zeros((50, 80), bool)
    gt[:, 40:] = True
    pred_same_edge = np.zeros((50, 80), bool)
    pred_same_edge[:, 45:] = True  # 5 px away; radius ceil(0.008 * 94.3) = 1 -> no match
    assert contour_accuracy(gt, pred_same_edge) == 0.0
    pred_close = np.zeros((50, 80), bool)
    pred_close[:, 41:] = True  # boundary column 40, 1 px from column 39 -> matched
    assert contour_accuracy(gt, pred_close) == 1.0


# --- sequence statistics ---------------------------------------------------------------------
def test_mean_and_recall_by_hand():
    values = [1.0, 0.5, 0.75, float("nan"), 0.25]
    assert sequence_mean(values) == 2.5 / 4
    assert sequence_recall(values) == 2 / 5  # strictly greater than 0.5; NaN counts as below


def test_decay_small_sequences_by_hand():
    # N = 5: indices round(linspace(1, 5, 5)) - 1 = 0..4, bins [0:2], [1:3], [2:4], [3:5].
    values = [1.0, 0.8, 0.6, 0.4, 0.2]
    assert sequence_decay(values) == pytest.approx((1.0 + 0.8) / 2 - (0.4 + 0.2) / 2, abs=0)
    assert sequence_decay([0.7]) == 0.0  # one frame: every bin is that frame
    assert sequence_decay([1.0, 0.0]) == 1.0  # N = 2: bins [0:1], [0:2], [1:2], [1:2]


@pytest.mark.parametrize("n", [1, 2, 3, 7, 100, 255, 256, 257, 300, 700, 1000])
def test_decay_davis2017_mode_matches_literal_official_code(n):
    values = np.random.default_rng(n).random(n)
    expected = literal_statistics(values)[2]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        got = sequence_decay(values, "davis2017")
    assert got == expected or (math.isnan(got) and math.isnan(expected))


def test_decay_modes_at_256_and_257_frames():
    values = np.linspace(1.0, 0.0, 256)
    # indices 0, 64, 128, 191, 255: last bin [191:256] exact; NumPy 2 wraps 255 + 1 to 0.
    fixed = np.mean(values[0:65]) - np.mean(values[191:256])
    assert sequence_decay(values, "fixed") == fixed
    assert sequence_decay(values, "davis2017-numpy1") == fixed
    assert math.isnan(sequence_decay(values, "davis2017"))
    values = np.linspace(1.0, 0.0, 257)
    # indices 0, 64, 128, 192, 256 -> 256 wraps to 0: last bin [192:1] is empty in both modes.
    assert sequence_decay(values, "fixed") == np.mean(values[0:65]) - np.mean(values[192:257])
    assert math.isnan(sequence_decay(values, "davis2017-numpy1"))
    with pytest.warns(RuntimeWarning, match="uint8"):
        decay_with_check(values, "davis2017", label="long")


def test_temporal_consistency_by_hand():
    assert temporal_consistency([1.0, 0.5, 0.5, 0.0]) == pytest.approx(1 / 3, abs=1e-15)
    assert temporal_consistency([0.2, 0.2]) == 0.0
    assert math.isnan(temporal_consistency([0.9]))  # one frame: undefined, excluded later
    assert temporal_consistency([1.0, 1.0, 1.0]) == 0.0  # both-empty frames count as J = 1
