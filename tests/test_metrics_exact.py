"""Fast kernels vs the literal davis2017 transcription: exact equality on random and adversarial frames."""
from __future__ import annotations

import numpy as np
import pytest

import refvps.metrics.boundary as boundary_module
from _scenes import MIX
from literal_davis import literal_f, literal_j, radius_reference
from refvps.metrics import (boundary_of, boundary_radius, contour_accuracy, f_from_boundaries,
                            region_similarity)

COMPILED = boundary_module._compiled_kernel()


@pytest.fixture(autouse=True, params=["compiled", "numpy"])
def kernel(request, monkeypatch):
    """Every test here runs with the compiled F kernel and with the NumPy one."""
    if request.param == "compiled":
        if COMPILED is None:
            pytest.skip("the compiled F kernel is not built here (no C compiler at install)")
        monkeypatch.setattr(boundary_module, "_FASTF", COMPILED)
    else:
        monkeypatch.setattr(boundary_module, "_FASTF", None)
    return request.param


def test_compiled_kernel_is_built_where_a_compiler_exists(kernel):
    import shutil
    import sysconfig

    compiler = (sysconfig.get_config_var("CC") or "cc").split()[0]
    if shutil.which(compiler) is None:
        pytest.skip(f"no C compiler ({compiler}) on this machine")
    assert COMPILED is not None, "pip install should have built refvps/metrics/_fastf.c"


def _rectangles(rng, shape, count):
    mask = np.zeros(shape, bool)
    h, w = shape
    for _ in range(count):
        y0, x0 = rng.integers(0, h), rng.integers(0, w)
        mask[y0:y0 + rng.integers(1, h + 1), x0:x0 + rng.integers(1, w + 1)] = True
    return mask


def _blob(rng, shape):
    h, w = shape
    yy, xx = np.mgrid[:h, :w]
    cy, cx = rng.uniform(-0.2, 1.2) * h, rng.uniform(-0.2, 1.2) * w
    ry, rx = rng.uniform(0.05, 0.6) * h + 0.5, rng.uniform(0.05, 0.6) * w + 0.5
    angle = np.arctan2(yy - cy, xx - cx)
    wobble = 1 + rng.uniform(0, 0.3) * np.sin(rng.integers(1, 7) * angle + rng.uniform(0, 6))
    return ((yy - cy) / ry) ** 2 + ((xx - cx) / rx) ** 2 <= wobble ** 2


def _random_mask(rng, shape):
    kind = rng.integers(0, 7)
    h, w = shape
    if kind == 0:
        return rng.random(shape) < rng.uniform(0, 1)
    if kind == 1:
        return _rectangles(rng, shape, rng.integers(1, 4))
    if kind == 2:
        return _blob(rng, shape)
    if kind == 3:  # 1-px objects
        mask = np.zeros(shape, bool)
        for _ in range(rng.integers(1, 4)):
            mask[rng.integers(0, h), rng.integers(0, w)] = True
        return mask
    if kind == 4:  # touching borders
        mask = np.zeros(shape, bool)
        side = rng.integers(0, 4)
        depth = rng.integers(1, max(2, min(h, w)))
        if side == 0:
            mask[:depth] = True
        elif side == 1:
            mask[-depth:] = True
        elif side == 2:
            mask[:, :depth] = True
        else:
            mask[:, -depth:] = True
        return mask
    if kind == 5:
        return np.zeros(shape, bool)
    return np.ones(shape, bool)


def _related(rng, gt):
    """A prediction near the ground truth: shifted, eroded/dilated, or unrelated."""
    choice = rng.integers(0, 4)
    if choice == 0:
        dy, dx = rng.integers(-3, 4, size=2)
        return np.roll(np.roll(gt, dy, axis=0), dx, axis=1)
    if choice == 1:
        return gt ^ (rng.random(gt.shape) < 0.02)
    if choice == 2:
        return np.zeros_like(gt) if rng.random() < 0.5 else gt.copy()
    return _random_mask(rng, gt.shape)


ODD_SHAPES = [(1, 1), (1, 7), (9, 1), (2, 2), (3, 5), (31, 45), (29, 17), (75, 100), (105, 360),
              (150, 200), (60, 100), (120, 200), (240, 427), (17, 250), (250, 3), (48, 85)]


def _frames(seed: int, count: int):
    rng = np.random.default_rng(seed)
    for index in range(count):
        if index < len(ODD_SHAPES) * 8:
            shape = ODD_SHAPES[index % len(ODD_SHAPES)]
        else:
            shape = (int(rng.integers(1, 90)), int(rng.integers(1, 130)))
        gt = _random_mask(rng, shape)
        pred = _related(rng, gt) if rng.random() < 0.7 else _random_mask(rng, shape)
        void_kind = rng.integers(0, 4)
        if void_kind == 0:
            void = None
        elif void_kind == 1:
            void = rng.random(shape) < 0.1
        elif void_kind == 2:
            void = np.ones(shape, bool)  # all void
        else:
            void = _rectangles(rng, shape, 1)
        bound_th = [0.008, 0.008, 0.008, 0.02, 0.1, 1, 2, 3][rng.integers(0, 8)]
        yield gt, pred, void, bound_th


@pytest.mark.parametrize("seed", range(4))
def test_fast_kernels_equal_literal_reference(seed):
    checked = 0
    for gt, pred, void, bound_th in _frames(seed, 200):
        assert region_similarity(gt, pred, void) == float(literal_j(gt, pred, void))
        fast = contour_accuracy(gt, pred, void, bound_th)
        assert fast == float(literal_f(pred, gt, void, bound_th)), (gt.shape, bound_th)
        # F is symmetric in (gt, prediction)
        assert contour_accuracy(pred, gt, void, bound_th) == fast
        checked += 1
    assert checked == 200


def test_full_resolution_frames_equal_literal_reference():
    rng = np.random.default_rng(11)
    for _ in range(12):
        gt = _blob(rng, (480, 854))
        pred = _related(rng, gt)
        void = _rectangles(rng, (480, 854), 1) if rng.random() < 0.5 else None
        assert contour_accuracy(gt, pred, void) == float(literal_f(pred, gt, void))
        assert region_similarity(gt, pred, void) == float(literal_j(gt, pred, void))


def test_boundary_reuse_gives_identical_scores():
    rng = np.random.default_rng(3)
    shape = (61, 97)
    gt = _blob(rng, shape)
    proposals = [_related(rng, gt) for _ in range(6)]
    radius = boundary_radius(shape)
    gt_boundary = boundary_of(gt)
    for pred in proposals:
        assert f_from_boundaries(gt_boundary, boundary_of(pred), radius) == \
            float(literal_f(pred, gt))


@pytest.mark.parametrize("height", [1, 2, 59, 60, 61, 75, 105, 119, 120, 121, 240, 480, 720, 1080])
@pytest.mark.parametrize("width", [1, 3, 100, 199, 200, 201, 360, 427, 854, 910, 1280, 1920])
def test_radius_matches_float64_definition(height, width):
    assert boundary_radius((height, width)) == radius_reference((height, width))


def test_radius_known_values():
    # Values listed in metrics-spec §1.2 (verified there against the official code).
    known = {(480, 854): 8, (480, 910): 9, (720, 1280): 12, (1080, 1920): 18, (360, 640): 6,
             (240, 427): 4, (120, 200): 2, (60, 100): 1, (105, 360): 3}
    for shape, radius in known.items():
        assert boundary_radius(shape) == radius


@pytest.mark.parametrize("radius", [1, 2, 3, 4, 5, 8, 9, 12, 18, 25, 63, 64, 65, 130])
def test_packed_disk_dilation_equals_skimage_disk_dilation(radius):
    import cv2
    from skimage.morphology import disk

    from refvps.metrics.bits import dilate_canvas, pack_mask, padded_canvas

    rng = np.random.default_rng(radius)
    for shape in ((57, 83), (20, 200), (5, 64), (3, 129)):
        for density in (0.001, 0.01, 0.2):
            image = rng.random(shape) < density
            image[0, 0] = image[-1, -1] = True  # corner pixels test the unclipped extent
            padded = np.zeros((shape[0] + 2 * radius, shape[1] + 2 * radius), np.uint8)
            padded[radius:radius + shape[0], radius:radius + shape[1]] = image
            expected = cv2.dilate(padded, disk(radius).astype(np.uint8))
            packed = pack_mask(image)
            canvas, reach = padded_canvas(1, shape[0], packed.shape[1], radius)
            canvas[0, :, reach:reach + packed.shape[1]] = packed
            bits = dilate_canvas(canvas, radius)[0]  # `radius` more rows on each side
            got = np.unpackbits(bits.astype("<u8").view(np.uint8), axis=1, bitorder="little")
            assert got.shape[0] == shape[0] + 2 * radius
            left = -64 * reach  # column of got's first bit, relative to the image
            assert not got[:, :-radius - left].any() if -radius - left > 0 else True
            window = got[:, -radius - left:-radius - left + shape[1] + 2 * radius]
            assert np.array_equal(window, expected)
            assert got.sum() == expected.sum()  # nothing set outside the disk's reach


@pytest.mark.parametrize("scene", sorted(MIX))
def test_scene_classes_equal_literal_reference(scene):
    """The scene classes of issue 13 at full resolution (480x854, 720x1280) and at random odd
    sizes, with and without Ignore, compared with the literal transcription by ==."""
    rng = np.random.default_rng(sorted(MIX).index(scene))
    shapes = [(480, 854)] * 6 + [(720, 1280)] * 3 + [
        (int(rng.integers(8, 300)), int(rng.integers(8, 400))) for _ in range(40)]
    for shape in shapes:
        gt, pred, void = MIX[scene](rng, shape)
        if void is None and rng.random() < 0.3:
            void = _rectangles(rng, shape, 1)
        bound_th = 0.008 if rng.random() < 0.8 else float(rng.choice([0.02, 2, 5]))
        expected = float(literal_f(pred, gt, void, bound_th))
        assert contour_accuracy(gt, pred, void, bound_th) == expected, (scene, shape, bound_th)
        assert contour_accuracy(pred, gt, void, bound_th) == expected


@pytest.mark.parametrize("radius", [1, 2, 3, 4, 5, 7, 8, 9, 12, 13, 16, 17, 18, 25])
def test_stacked_dilation_counts_equal_skimage_disk_dilation(radius):
    """dilate_stack (overlapped words up to radius 16, carries beyond): the matched-pixel
    counts of every (source, dilated) pair of a stack equal those of cv2.dilate with disk()."""
    import cv2
    from skimage.morphology import disk

    from refvps.metrics.bits import dilate_stack, pack_masks, padded_canvas, popcounts

    rng = np.random.default_rng(100 + radius)
    kernel = disk(radius).astype(np.uint8)
    for shape in ((40, 130), (23, 64), (9, 200), (61, 191)):
        images = [rng.random(shape) < density for density in (0.002, 0.03, 0.3)]
        images[0][0, 0] = images[0][-1, -1] = True  # corners: the dilation reaches the edges
        packed = pack_masks(images)
        canvas, pad = padded_canvas(len(images), shape[0], packed.shape[2], radius)
        canvas[:, :, pad:pad + packed.shape[2]] = packed
        sources, dilated = dilate_stack(canvas, radius)
        for j, image in enumerate(images):
            grown = cv2.dilate(image.astype(np.uint8), kernel,
                               borderType=cv2.BORDER_CONSTANT, borderValue=0).astype(bool)
            expected = [int(np.count_nonzero(other & grown)) for other in images]
            assert popcounts(sources & dilated[j]) == expected, (shape, j)


@pytest.mark.parametrize("radius", [1, 3, 4, 5, 8, 9, 12, 13, 16, 17])
def test_f_at_every_word_edge_equals_literal_reference(radius):
    """Salt-and-pepper and striped frames put boundary pixels at every column, so at every
    edge and guard bit of the overlapped words (radii up to 16) and of the carry layout."""
    rng = np.random.default_rng(radius)
    for shape in ((30, 300), (17, 129), (41, 448), (8, 1000)):
        for density in (0.02, 0.2, 0.5):
            gt = rng.random(shape) < density
            pred = rng.random(shape) < density
            stripes = np.zeros(shape, bool)
            stripes[:, rng.integers(0, shape[1], 8)] = True
            for a, b in ((gt, pred), (gt, stripes), (stripes, pred ^ stripes)):
                expected = float(literal_f(b, a, None, radius))
                assert contour_accuracy(a, b, None, radius) == expected, (shape, density)


def test_compiled_kernel_refuses_inconsistent_arguments(kernel):
    """Shapes, width and radius are checked before the C code reads a word."""
    if kernel != "compiled":
        pytest.skip("the compiled kernel's own checks")
    words = np.zeros((3, 2), np.uint64)
    for args in ((words, np.zeros((3, 1), np.uint64), 70, 2),  # shapes differ
                 (words, words, 200, 2),  # 200 columns need 4 words
                 (words, words, 0, 2), (words, words, 70, -1),
                 (words.astype(np.uint32), words.astype(np.uint32), 70, 2)):
        with pytest.raises(ValueError):
            COMPILED.pair_counts(*args)
    assert COMPILED.pair_counts(words, words, 70, 2) == (0, 0, 0, 0)
