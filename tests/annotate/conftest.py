"""Shared fixtures of the annotation tests, and the rule that under CI=true they never skip."""
from __future__ import annotations

import os
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest

from tests.annotate import synthetic

# OpenCV's worker threads do not survive fork: once this process has run a parallel cv2 call
# (GrabCut, optical flow, remap), a process pool forked later in the same pytest worker
# (refvps.executors) deadlocks in cv2.setNumThreads. Keep cv2 single-threaded here.
cv2.setNumThreads(1)

HERE = Path(__file__).resolve().parent
CHROMIUM_FLAGS = ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                  "--disable-background-networking", "--disable-extensions", "--no-first-run",
                  "--disable-sync", "--disable-component-update", "--mute-audio"]


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """Under CI=true a skipped annotation test is a failure: CI must have chromium, torch, sam2."""
    outcome = yield
    report = outcome.get_result()
    if (report.skipped and os.environ.get("CI", "").lower() == "true"
            and HERE in Path(str(item.fspath)).resolve().parents):
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
        report.outcome = "failed"
        report.longrepr = f"skipped under CI=true, which must run every annotation test: {reason}"


@pytest.fixture(scope="session")
def clip24(tmp_path_factory) -> Path:
    """A 2 s, 24 fps mp4 of a textured square moving over a textured background."""
    return synthetic.write_video(tmp_path_factory.mktemp("clip") / "square.mp4", 24)


def truth_for(info: dict):
    """Frame k of the annotation frames -> the true mask (from the resampling picks)."""
    def truth(k: int) -> np.ndarray:
        out_index = int(info["anno_frames"][k])
        return synthetic.truth_at(info["picks"][out_index] / info["source_fps"])
    return truth


@pytest.fixture
def workspace(tmp_path, clip24):
    from refvps.annotate.ingest import ingest

    info = ingest(clip24, tmp_path / "ws", clip_id="vps_square")
    return tmp_path / "ws", info


@pytest.fixture(scope="module")
def chromium():
    """A headless system Chromium (never downloads a browser)."""
    playwright = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
    exe = shutil.which("chromium") or shutil.which("chromium-browser")
    if exe is None:
        pytest.skip("no system chromium (apt-get install -y chromium)")
    manager = playwright.sync_playwright().start()
    browser = manager.chromium.launch(executable_path=exe, headless=True, args=CHROMIUM_FLAGS)
    yield browser
    browser.close()
    manager.stop()


@pytest.fixture(scope="session")
def sam2_backend_factory():
    """Build SAM2 backends with random weights at a tiny image size (one model per session)."""
    pytest.importorskip("torch", reason="torch is not installed")
    pytest.importorskip("sam2.build_sam", reason="sam2 is not installed (pip install --no-deps)")
    import torch

    torch.manual_seed(0)
    from refvps.annotate.backends.sam2_backend import Sam2Backend

    backend = Sam2Backend(random_weights=True, device="cpu", image_size=256)
    backend._build()
    return backend
