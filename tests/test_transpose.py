"""The compiled kernel's uint8 transpose (used to put COCO RLE masks in C order without
OpenCV) against NumPy, and scoring workers that never load OpenCV."""
from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

import refvps.metrics.boundary as boundary_module
from refvps.masks import rle_decode, rle_encode

COMPILED = boundary_module._compiled_kernel()
needs_kernel = pytest.mark.skipif(COMPILED is None, reason="the compiled kernel is not built here")

SHAPES = [(0, 0), (0, 7), (7, 0), (1, 1), (1, 40), (40, 1), (15, 15), (16, 16), (17, 17),
          (16, 33), (33, 16), (31, 48), (48, 31), (64, 64), (100, 3), (854, 480), (480, 854),
          (1280, 720), (719, 1279)]


@needs_kernel
@pytest.mark.parametrize("shape", SHAPES)
def test_transpose_u8_equals_numpy(shape):
    rng = np.random.default_rng(shape[0] * 10007 + shape[1])
    for source in (rng.integers(0, 256, shape, dtype=np.uint8),
                   (rng.random(shape) < 0.5).astype(np.uint8)):
        out = np.full(shape[::-1], 7, np.uint8)  # every byte must be overwritten
        assert COMPILED.transpose_u8(source, out) is None
        assert np.array_equal(out, source.T), shape


@needs_kernel
def test_transpose_u8_random_shapes():
    rng = np.random.default_rng(5)
    for _ in range(300):
        shape = tuple(int(v) for v in rng.integers(0, 70, size=2))
        source = rng.integers(0, 256, shape, dtype=np.uint8)
        out = np.empty(shape[::-1], np.uint8)
        COMPILED.transpose_u8(source, out)
        assert np.array_equal(out, source.T), shape


@needs_kernel
def test_transpose_u8_refuses_what_it_cannot_transpose():
    source = np.zeros((4, 6), np.uint8)
    for src, dst in ((source, np.zeros((4, 6), np.uint8)),  # not the shape of src.T
                     (source.astype(np.uint16), np.zeros((6, 4), np.uint16)),
                     (source.view(np.int8), np.zeros((6, 4), np.int8)),
                     (source.ravel(), np.zeros(24, np.uint8)),
                     (source[None], np.zeros((1, 6, 4), np.uint8))):
        with pytest.raises(ValueError):
            COMPILED.transpose_u8(src, dst)
    with pytest.raises((ValueError, BufferError)):  # not C-contiguous
        COMPILED.transpose_u8(np.zeros((4, 12), np.uint8)[:, ::2], np.zeros((6, 4), np.uint8))
    readonly = np.zeros((6, 4), np.uint8)
    readonly.flags.writeable = False
    with pytest.raises((ValueError, BufferError)):
        COMPILED.transpose_u8(source, readonly)


@pytest.mark.parametrize("compiled", [True, False])
def test_rle_decode_is_the_same_with_either_transpose(compiled, monkeypatch):
    if compiled and COMPILED is None:
        pytest.skip("the compiled kernel is not built here")
    monkeypatch.setattr(boundary_module, "_FASTF", COMPILED if compiled else None)
    rng = np.random.default_rng(11)
    for shape in ((1, 1), (3, 4), (17, 33), (480, 854), (37, 16)):
        mask = rng.random(shape) < 0.3
        decoded = rle_decode(rle_encode(mask))
        assert decoded.dtype == bool and decoded.flags.c_contiguous
        assert np.array_equal(decoded, mask)


@needs_kernel
def test_the_compiled_transpose_is_used_only_with_simd(monkeypatch):
    """Without SIMD (ARM builds) the byte-by-byte transpose would be slower than OpenCV's, so
    masks go to OpenCV; on x86-64 the kernel has SSE2."""
    import platform
    from types import SimpleNamespace

    if platform.machine() in ("x86_64", "AMD64"):
        assert COMPILED.transpose_simd == 1

    def refuse(src, dst):
        raise AssertionError("the byte-by-byte transpose was used")

    monkeypatch.setattr(boundary_module, "_FASTF", SimpleNamespace(transpose_simd=0,
                                                                   transpose_u8=refuse))
    mask = np.random.default_rng(3).random((19, 23)) < 0.5
    assert np.array_equal(rle_decode(rle_encode(mask)), mask)


def test_scoring_workers_do_not_load_opencv(tmp_path):
    """A pool worker starts without OpenCV's libraries; should a fallback load them, OpenCV
    gets one thread (OPENCV_FOR_THREADS_NUM), as ``cv2.setNumThreads(1)`` did. A fresh
    interpreter, so that no fork server an earlier test started (with another benchmark's
    module preloaded) answers."""
    code = (
        "from refvps import executors\n"
        "probe = \"('cv2' in __import__('sys').modules, "
        "__import__('os').environ.get('OPENCV_FOR_THREADS_NUM'))\"\n"
        "with executors.process_pool(1, executors._init_worker, (None, None, False)) as pool:\n"
        "    print(pool.submit(eval, probe).result())\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         cwd=tmp_path, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "(False, '1')"
