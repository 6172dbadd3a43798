"""Backends: OpenCV quality on a synthetic clip; SAM2 (random weights, CPU) mechanics."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from refvps.annotate.backends.opencv import OpenCVBackend
from tests.annotate.conftest import truth_for


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    return np.logical_and(a, b).sum() / np.logical_or(a, b).sum()


def _anno_paths(ws_dir: Path, info: dict) -> list[Path]:
    return [ws_dir / "frames" / f"{f}.jpg" for f in info["anno_frames"]]


def test_opencv_click_and_propagation_quality(workspace):
    ws_dir, info = workspace
    truth = truth_for(info)
    backend = OpenCVBackend()
    backend.open(_anno_paths(ws_dir, info))
    x, y = 16 + 14, 36 + 14  # the square's centre at t = 0
    mask = backend.click(0, np.array([[x, y], [110, 10]]), np.array([1, 0]))
    assert mask.shape == (96, 128) and mask.dtype == bool
    assert _iou(mask, truth(0)) > 0.9
    forward = list(backend.propagate(0, reverse=False, steps=11))
    assert [k for k, _ in forward] == list(range(1, 12))
    ious = [_iou(m, truth(k)) for k, m in forward]
    assert min(ious) > 0.8 and np.mean(ious) > 0.88
    backend.set_mask(11, truth(11))
    backward = list(backend.propagate(11, reverse=True, steps=3))
    assert [k for k, _ in backward] == [10, 9, 8]
    assert min(_iou(m, truth(k)) for k, m in backward) > 0.85
    box = backend.click(5, np.zeros((0, 2)), np.zeros(0), box=np.array([18, 36, 68, 74]))
    assert _iou(box, truth(5)) > 0.8


def test_sam2_random_weights_shapes_order_and_correction(sam2_backend_factory, workspace):
    ws_dir, info = workspace
    backend = sam2_backend_factory
    paths = _anno_paths(ws_dir, info)[:5]
    backend.open(paths)
    try:
        mask = backend.click(0, np.array([[30, 50], [110, 10]]), np.array([1, 0]))
        assert mask.shape == (96, 128) and mask.dtype == bool
        box = backend.click(2, np.zeros((0, 2)), np.zeros(0), box=np.array([16, 36, 44, 64]))
        assert box.shape == (96, 128)
        backend.clear(2)
        forward = list(backend.propagate(0, reverse=False, steps=4))
        assert [k for k, _ in forward] == [1, 2, 3, 4]
        assert all(m.shape == (96, 128) and m.dtype == bool for _, m in forward)
        # a correction on an already tracked frame, then reverse propagation from it: the
        # bf16/fp32 crash of sam2 1.1.0 on CPU and the missing clear-memory method both hit here
        correction = np.zeros((96, 128), bool)
        correction[40:70, 40:70] = True
        backend.set_mask(4, correction)
        backward = list(backend.propagate(4, reverse=True, steps=4))
        assert [k for k, _ in backward] == [3, 2, 1, 0]
        partial = list(backend.propagate(1, reverse=False, steps=2))
        assert [k for k, _ in partial] == [2, 3]
        described = backend.describe()
        assert described["backend"] == "sam2" and "++model.add_all_frames_to_correct_as_cond=true" \
            in described["overrides"]
    finally:
        backend.close()


def test_sam2_needs_a_checkpoint(monkeypatch, tmp_path):
    from refvps.annotate.backends.sam2_backend import Sam2Backend, config_for_checkpoint

    monkeypatch.delenv("REFVPS_SAM2_CHECKPOINT", raising=False)
    with pytest.raises(ValueError, match="--sam2-checkpoint"):
        Sam2Backend()
    assert config_for_checkpoint("/x/sam2.1_hiera_base_plus.pt") == "configs/sam2.1/sam2.1_hiera_b+.yaml"
    with pytest.raises(ValueError, match="--sam2-config"):
        config_for_checkpoint("model.pt")
