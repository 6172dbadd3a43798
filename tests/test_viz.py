import json

import cv2
import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from refvps.cli import main
from refvps.errors import RefvpsError
from refvps.loaders import load_benchmark
from refvps.report.viz import (FILL_ALPHA, GT_COLOUR, IGNORE_COLOUR, PRED_COLOUR, caption,
                               overlay, render_video)


def test_overlay_colours_by_hand():
    image = np.full((8, 8, 3), 100, np.uint8)
    fg = np.zeros((8, 8), bool)
    fg[0:4, 0:4] = True
    void = np.zeros((8, 8), bool)
    void[6, 6] = True
    pred = np.zeros((8, 8), bool)
    pred[2:7, 2:7] = True
    out = overlay(image, fg, void, pred).astype(int)
    blend = lambda base, colour: np.round((1 - FILL_ALPHA) * base + FILL_ALPHA *  # noqa: E731
                                          np.array(colour)).astype(int)
    assert list(out[1, 1]) == list(blend(100, GT_COLOUR))      # GT only: pink
    assert list(out[7, 7]) == [100, 100, 100]                   # untouched
    assert list(out[4, 4]) == list(blend(100, PRED_COLOUR))    # prediction interior
    assert list(out[2, 2]) == list(PRED_COLOUR)                # prediction outline
    gt_only = overlay(image, fg, void, None).astype(int)
    assert list(gt_only[6, 6]) == list(blend(100, IGNORE_COLOUR))  # Ignore: yellow


def test_caption_adds_a_text_band():
    frame = np.zeros((40, 200, 3), np.uint8)
    out = caption(frame, ["the melting wax candle", "second line"])
    assert out.shape[1] == 200 and out.shape[0] > 40 + 2 * 14
    assert np.array_equal(out[:40], frame)
    assert out[40:].max() == 255  # white text drawn on the black band


def test_gif_and_mp4(sample, tmp_path):
    bench = load_benchmark("ref-vps", sample.root)
    meta = json.loads((sample.dataset / "meta_expressions.json").read_text())["videos"]
    clip = sorted(meta)[0]
    n_frames = len(meta[clip]["anno_frames"])
    gif = render_video(bench, clip, "0", tmp_path / "a.gif", sample.predictions["shifted"])
    with Image.open(gif) as image:
        assert image.n_frames == n_frames
        image.seek(0)
        first = np.asarray(image.convert("RGB"))
    height, width = meta[clip]["height"], meta[clip]["width"]
    assert first.shape[0] > height and first.shape[1] == width + width % 2
    # the GIF frame differs from the JPEG inside GT or prediction, and hardly anywhere else
    frame = meta[clip]["anno_frames"][0]
    raw = np.asarray(Image.open(sample.dataset / "JPEGImages" / clip / f"{frame}.jpg")
                     .convert("RGB")).astype(int)
    labels = np.asarray(Image.open(sample.dataset / "Annotations" / clip / f"{frame}.png"))
    pred = np.asarray(Image.open(sample.predictions["shifted"] / clip / "0" / f"{frame}.png")) > 0
    changed = np.abs(first[:height, :width].astype(int) - raw).sum(axis=2)
    marked = (labels > 0) | pred
    assert labels.any() and changed[labels == 1].mean() > 60
    near = cv2.dilate(marked.astype(np.uint8), np.ones((5, 5), np.uint8)) > 0
    assert changed[~near].mean() < 15

    mp4 = render_video(bench, clip, "0", tmp_path / "a.mp4", sample.predictions["shifted"],
                       fps=6)
    capture = cv2.VideoCapture(str(mp4))
    count = 0
    while capture.read()[0]:
        count += 1
    assert count == n_frames
    assert capture.get(cv2.CAP_PROP_FPS) == pytest.approx(6)
    capture.release()


def test_viz_errors_and_cli(sample, tmp_path):
    bench = load_benchmark("ref-vps", sample.root)
    clip = bench.tasks()[0].video
    with pytest.raises(RefvpsError, match="queries of .*0, 1, 2, 3"):
        render_video(bench, clip, "9", tmp_path / "x.gif")
    with pytest.raises(RefvpsError, match="unsupported output"):
        render_video(bench, clip, "0", tmp_path / "x.avi")
    result = CliRunner().invoke(main, ["viz", "--data", str(sample.root), "--clip", clip,
                                       "--exp", "1", "--out", str(tmp_path / "c.gif")])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "c.gif").stat().st_size > 1000
