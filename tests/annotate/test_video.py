"""Ingest: resampling to 24 fps by timestamps, 6 fps annotation frames, JPEG workspace."""
from __future__ import annotations

import json

import cv2
import pytest

from refvps.annotate.ingest import ingest
from refvps.video import VideoError, probe, resample_picks
from tests.annotate import synthetic


def test_picks_by_hand():
    # 30 fps -> 24 fps: output k shows source round(1.25 k), ties (x.5) to the earlier frame
    stamps = [i / 30 for i in range(60)]
    assert resample_picks(stamps, 2.0, 24)[:12] == [0, 1, 2, 4, 5, 6, 7, 9, 10, 11, 12, 14]
    # 12 fps -> 24 fps duplicates: round(k / 2), ties earlier
    assert resample_picks([i / 12 for i in range(6)], 0.5, 24) == [0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5]
    assert resample_picks([i / 24 for i in range(5)], 5 / 24, 24) == [0, 1, 2, 3, 4]


@pytest.mark.parametrize("fps,fourcc,suffix", [(24, "mp4v", ".mp4"), (30, "mp4v", ".mov"),
                                               (60, "mp4v", ".mp4"), (25, "VP90", ".webm")])
def test_ingest_video_resamples_by_timestamp(tmp_path, fps, fourcc, suffix):
    clip = synthetic.write_video(tmp_path / f"clip{suffix}", fps, fourcc=fourcc)
    info = ingest(clip, tmp_path / "ws")
    assert info["fps"] == 24 and len(info["frames"]) == 48
    assert info["frames"][0] == "00000" and info["frames"][-1] == "00047"
    assert info["anno_frames"] == [f"{i:05d}" for i in range(0, 48, 4)]
    assert info["source_frames"] == round(2 * fps)
    for k, (name, pick) in enumerate(zip(info["frames"], info["picks"])):
        assert abs(pick / fps - k / 24) <= 0.5 / fps + 2e-3  # nearest source frame
        image = cv2.imread(str(tmp_path / "ws" / "frames" / f"{name}.jpg"))
        assert image.shape == (synthetic.HEIGHT, synthetic.WIDTH, 3)
        assert synthetic.decode_index(image) == pick  # the frame shown is the frame picked
    assert json.loads((tmp_path / "ws" / "workspace.json").read_text())["clip_id"] == "clip"


def test_ingest_frames_folder_and_reopen(tmp_path):
    folder = synthetic.write_frames(tmp_path / "shots", fps=12, seconds=1.0)
    info = ingest(folder, tmp_path / "ws", frames_fps=12)
    assert info["source_kind"] == "frames" and info["upsampled"] is True
    assert info["picks"] == [k // 2 for k in range(24)]  # img_0, img_0, img_1, ... (natural order)
    stamp = (tmp_path / "ws" / "workspace.json").stat().st_mtime_ns
    assert ingest(folder, tmp_path / "ws") == info  # reopening never re-ingests
    assert (tmp_path / "ws" / "workspace.json").stat().st_mtime_ns == stamp


def test_unreadable_sources_name_the_file(tmp_path):
    bad = tmp_path / "broken.mp4"
    bad.write_bytes(b"not a video")
    with pytest.raises(VideoError, match="broken.mp4"):
        probe(bad)
    (tmp_path / "empty").mkdir()
    with pytest.raises(VideoError, match="no image files"):
        probe(tmp_path / "empty")
