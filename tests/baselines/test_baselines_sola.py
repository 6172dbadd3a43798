"""SOLA's track generation, checked by hand against upstream's rules (cvlab-kaist/SOLA@4b0adf8,
track_generation/generate_prompts_grid.py and generate_tokens_grid.py), and its SAM2 driving
code run through the real sam2 package with a tiny random-weight model."""
from __future__ import annotations

import numpy as np
import pytest

from refvps.baselines.models.sola import (Prompt, drop_part_masks, grid_tracks, keyframes, mask_iou,
                                          sola_union, sorted_prompts)


def _box(shape, rows, cols):
    mask = np.zeros(shape, bool)
    mask[rows[0]:rows[1], cols[0]:cols[1]] = True
    return mask


def test_keyframes_are_upstreams_frame_slices():
    # generate_prompts_grid.py: frames[::bin_size], bin_size 0 -> n_frames // 2
    assert keyframes(9, 0) == [0, 4, 8]  # odd length: a third keyframe, as frames[::4]
    assert keyframes(8, 0) == [0, 4]
    assert keyframes(10, 4) == [0, 4, 8]
    assert keyframes(1, 0) == [0]  # upstream would crash on frames[::0]


def test_part_masks_dropped_and_empty_masks_kept():
    big = _box((4, 4), (0, 4), (0, 3))
    part = _box((4, 4), (0, 2), (0, 2))  # 4 of 4 pixels inside big
    other = _box((4, 4), (0, 4), (3, 4))
    empty = np.zeros((4, 4), bool)  # 0 / 0 = nan is never > 0.7 upstream: kept
    assert drop_part_masks([part, big, other, empty]) == [1, 2, 3]
    half = _box((4, 4), (0, 1), (2, 4))  # 1 of 2 pixels inside big: 0.5, not a part
    assert drop_part_masks([big, half]) == [0, 1]


def test_prompts_of_all_keyframes_sorted_by_area():
    small0, large4, mid0 = _box((8, 8), (0, 1), (0, 2)), _box((8, 8), (0, 6), (0, 6)), _box((8, 8), (4, 8), (4, 8))
    prompts = sorted_prompts({0: [small0, mid0], 4: [large4]})
    assert [(p.frame_idx, p.area) for p in prompts] == [(4, 36), (0, 16), (0, 2)]


def _fake_track(log, cover=None):
    """Masklets that are each prompt mask on every frame (plus ``cover`` on frame 0)."""
    def track(frame_idx, masks):
        log.append((frame_idx, [int(m.sum()) for m in masks]))
        out = []
        for mask in masks:
            masklet = np.repeat(mask[None], 10, 0)
            if cover is not None:
                masklet[0] |= cover
            out.append((masklet, np.full((10, 3), float(mask.sum()), np.float32)))
        return out
    return track


def test_track_cap_goes_to_the_largest_prompts_of_any_keyframe():
    shape = (20, 20)
    frame0 = [Prompt(0, _box(shape, (i, i + 1), (0, 2)), 2) for i in range(6)]  # six small ones
    big = Prompt(5, _box(shape, (5, 15), (5, 15)), 100)
    prompts = sorted([*frame0, big], key=lambda p: -p.area)
    log = []
    found = grid_tracks(prompts, _fake_track(log), 10, batch_size=4, max_tracks=3)
    # by hand: batch 1 = the frame-5 prompt alone (next prompts are on frame 0); batch 2 =
    # two frame-0 prompts (3 tracks reached); a keyframe-by-keyframe order would have spent the
    # cap on three frame-0 prompts and never tracked the largest object
    assert log == [(5, [100]), (0, [2, 2])]
    assert [index for index, _, _ in found] == [0, 1, 2]
    assert found[0][1].shape == (10, 20, 20) and found[0][2][0, 0] == 100


def test_prompts_covered_by_a_new_track_are_filtered_after_each_batch():
    shape = (20, 20)
    a = Prompt(0, _box(shape, (0, 10), (0, 10)), 100)
    b = Prompt(0, _box(shape, (10, 20), (10, 20)), 100)
    tight = Prompt(0, _box(shape, (0, 10), (0, 9)), 90)  # IoU with a's masklet: 90 / 100
    loose = Prompt(0, _box(shape, (0, 10), (0, 6)), 60)  # 60 / 100: not > 0.7, tracked
    free = Prompt(0, _box(shape, (12, 14), (0, 2)), 4)
    log = []
    found = grid_tracks([a, b, tight, loose, free], _fake_track(log), 10, batch_size=2)
    assert log == [(0, [100, 100]), (0, [60, 4])]
    assert [index for index, _, _ in found] == [0, 1, 3, 4]
    log = []  # a cover that makes a's masklet larger: IoU 90 / 190, so `tight` stays
    grid_tracks([a, tight], _fake_track(log, cover=_box(shape, (10, 20), (0, 9))), 10, batch_size=1)
    assert log == [(0, [100]), (0, [90])]


def test_long_videos_track_two_prompts_at_a_time():
    shape = (20, 20)
    prompts = [Prompt(0, _box(shape, (i, i + 1), (0, 5)), 5) for i in range(0, 20, 2)][:5]
    log = []
    grid_tracks(prompts, _fake_track(log), 201, batch_size=4)
    assert [len(sizes) for _, sizes in log] == [2, 2, 1]


def test_iou_and_union_rules():
    assert mask_iou(np.zeros((2, 2), bool), np.zeros((2, 2), bool)) == 1.0  # seg_utils: empty = 1
    masklets = np.stack([np.stack([_box((4, 4), (0, 4), (0, 3))] * 2),
                         np.stack([_box((4, 4), (0, 4), (3, 4))] * 2)])
    assert sola_union(masklets, np.array([0.9, 0.7]), 0.5).all()
    assert not sola_union(masklets, np.array([0.1, 0.5]), 0.5).any()  # 0.5 is not > 0.5


def test_upstream_grid_iou_on_the_540_by_960_grid():
    pytest.importorskip("torch", reason="needs torch")
    from refvps.baselines.models.sola import upstream_grid_iou

    left = _box((6, 8), (0, 6), (0, 4))
    assert upstream_grid_iou(left, left) == 1.0
    assert upstream_grid_iou(left, ~left) == 0.0
    # landscape 6 x 8 -> 540 x 960: the left half is 480 columns both ways; a 3-column mask
    # against it is 360 / 480 = 0.75
    assert upstream_grid_iou(left, _box((6, 8), (0, 6), (0, 3))) == pytest.approx(0.75, abs=0.01)


def test_selector_checkpoint_problems_by_hand(tmp_path):
    torch = pytest.importorskip("torch", reason="needs torch")
    from refvps.baselines.models.sola import selector_checkpoint_problem

    module = torch.nn.Sequential(torch.nn.Linear(4, 3))
    torch.save(module.state_dict(), tmp_path / "good.pth")
    assert selector_checkpoint_problem(module, str(tmp_path / "good.pth")) == ""
    torch.save({"0.weight": torch.zeros(3, 5)}, tmp_path / "shapes.pth")
    problem = selector_checkpoint_problem(module, str(tmp_path / "shapes.pth"))
    assert "1 missing keys (e.g. 0.bias)" in problem and "0.weight: (3, 5) vs (3, 4)" in problem
    torch.save({"model": module.state_dict(), "epoch": 3}, tmp_path / "wrapped.pth")
    assert "not a state_dict of tensors" in selector_checkpoint_problem(module, str(tmp_path / "wrapped.pth"))
    (tmp_path / "text.pth").write_text("not a checkpoint")
    assert "torch.load failed" in selector_checkpoint_problem(module, str(tmp_path / "text.pth"))


def test_tracks_through_the_real_sam2_video_predictor(tmp_path):
    """SOLA._propagate against sam2's own SAM2VideoPredictor (tiny random weights, CPU): the
    per-object outputs it reads (output_dict_per_obj) exist and give one token per frame."""
    torch = pytest.importorskip("torch", reason="needs torch")
    pytest.importorskip("sam2", reason="needs sam2 (scripts/test installs sam2==1.1.0)")
    from PIL import Image
    from sam2.build_sam import build_sam2_video_predictor

    from refvps.baselines import create
    from refvps.baselines.contract.sola import SAM2_CONFIG, SAM2_OVERRIDES, SELECTOR

    torch.manual_seed(0)
    model = create("sola", device="cpu")
    model.predictor = build_sam2_video_predictor(SAM2_CONFIG, None, device="cpu",
                                                 hydra_overrides_extra=list(SAM2_OVERRIDES))
    for t in range(3):
        frame = np.full((48, 64, 3), 100, np.uint8)
        frame[10:30, 10 + 4 * t:40 + 4 * t] = (220, 30, 30)
        Image.fromarray(frame).save(tmp_path / f"{t:05d}.jpg", quality=100)
    prompt = _box((48, 64), (10, 30), (14, 44))
    with torch.inference_mode():
        state = model.predictor.init_state(video_path=str(tmp_path), offload_video_to_cpu=True,
                                           offload_state_to_cpu=True)
        (masklet, tokens), = model._propagate(state, 1, [prompt], 3)
    assert masklet.shape == (3, 48, 64) and masklet.dtype == bool
    assert tokens.shape == (3, SELECTOR["object_token_dim"]) and np.isfinite(tokens).all()
    assert mask_iou(masklet[1], prompt) > 0.9  # the prompt frame keeps the prompt mask
