"""A `refvps viz` video plays in a real browser: headless Debian Chromium via Playwright.

The MP4 is loaded into a ``<video>`` element over HTTP (Chromium refuses media from file URLs
in a page it did not load from disk) and played to the end; the test reads back what the
browser decoded: readyState, duration, size and the number of decoded frames.
"""
from __future__ import annotations

import functools
import http.server
import json
import shutil
import threading

import pytest
from click.testing import CliRunner

from refvps.cli import main

CHROMIUM_FLAGS = ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                  "--disable-background-networking", "--disable-extensions", "--no-first-run",
                  "--disable-sync", "--disable-component-update", "--mute-audio"]
PLAY = """(src) => new Promise(resolve => {
  const video = document.getElementById('v');
  let callbacks = 0;
  const count = () => { callbacks++; video.requestVideoFrameCallback(count); };
  video.requestVideoFrameCallback(count);
  video.onerror = () => resolve({error: video.error ? video.error.message : 'error'});
  video.oncanplay = () => video.play().catch(e => resolve({error: String(e)}));
  video.onended = () => {
    const quality = video.getVideoPlaybackQuality();
    resolve({readyState: video.readyState, duration: video.duration, width: video.videoWidth,
             height: video.videoHeight, decoded: quality.totalVideoFrames,
             dropped: quality.droppedVideoFrames, callbacks});
  };
  video.src = src;
  setTimeout(() => resolve({error: 'timeout', readyState: video.readyState}), 20000);
})"""


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """A static HTTP server over a temporary folder: (folder, base URL)."""
    folder = tmp_path_factory.mktemp("www")
    (folder / "index.html").write_text("<!doctype html><video id=v muted playsinline></video>")

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0),
                                             functools.partial(Quiet, directory=str(folder)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield folder, f"http://127.0.0.1:{server.server_port}/"
    server.shutdown()
    thread.join()


def _play(base: str, name: str) -> dict:
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
    exe = shutil.which("chromium") or shutil.which("chromium-browser")
    if exe is None:
        pytest.skip("no system chromium (apt-get install -y chromium)")
    with sync_api.sync_playwright() as manager:
        browser = manager.chromium.launch(executable_path=exe, headless=True, args=CHROMIUM_FLAGS)
        try:
            page = browser.new_page()
            page.goto(base + "index.html")
            return page.evaluate(PLAY, base + name)
        finally:
            browser.close()


@pytest.mark.parametrize("suffix", [".mp4", ".webm"])
def test_viz_video_plays_in_chromium(sample, served, suffix):
    pytest.importorskip("av", reason="PyAV is not installed (pip install 'refvps[video]')")
    folder, base = served
    meta = json.loads((sample.dataset / "meta_expressions.json").read_text())["videos"]
    clip = sorted(meta)[0]
    n_frames = len(meta[clip]["anno_frames"])
    out = folder / f"clip{suffix}"
    result = CliRunner().invoke(main, ["viz", "--data", str(sample.root), "--clip", clip,
                                       "--exp", "0", "--preds", str(sample.predictions["shifted"]),
                                       "--fps", "6", "--out", str(out)])
    assert result.exit_code == 0, result.output
    if suffix == ".mp4":
        import av
        with av.open(str(out)) as container:
            assert container.streams.video[0].codec_context.name == "h264"
    played = _play(base, out.name)
    assert "error" not in played, played
    assert played["readyState"] == 4                       # HAVE_ENOUGH_DATA: decoded and played
    assert played["duration"] == pytest.approx(n_frames / 6, abs=1e-3)
    # Every frame decoded; a frame the browser presents late on a busy machine counts as
    # dropped, which says nothing about the file (seen once with the suite on two workers).
    assert played["decoded"] == n_frames, played
    assert played["callbacks"] >= 1                          # frames were presented
    assert played["width"] == meta[clip]["width"] + meta[clip]["width"] % 2
