"""Regenerate the screenshots of docs/annotation.md in headless Chromium (system chromium).

A synthetic 1280x720 clip (the one of annotate_latency.py), the OpenCV backend, real clicks,
strokes and a propagation through the page. Run from the repository root:

    python benchmarks/annotate_screenshots.py [--out docs/img]
"""
from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from annotate_latency import CENTRE, H, W, make_workspace  # noqa: E402

from refvps.annotate.backends.opencv import OpenCVBackend  # noqa: E402
from refvps.annotate.server import AnnotateServer  # noqa: E402
from refvps.annotate.session import Session  # noqa: E402
from refvps.annotate.workspace import Workspace  # noqa: E402

EXPRESSIONS = ["the red disc", "the oval sliding to the right", "the red blob",
               "the ellipse drifting across the texture"]


class _SlowOpenCV(OpenCVBackend):
    """OpenCV, with a pause per propagated frame so the live strip can be photographed."""

    def propagate(self, start, reverse, steps):
        import time

        for item in super().propagate(start, reverse, steps):
            time.sleep(0.4)
            yield item


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="docs/img", help="folder for the PNG files")
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    from playwright.sync_api import sync_playwright

    root = Path(tempfile.mkdtemp(prefix="refvps-shots-"))
    try:
        ws, info = make_workspace(root)
        session = Session(Workspace(ws), _SlowOpenCV())
        session.click("00024", CENTRE[0] + 12 * 24 + 40, CENTRE[1] + 48, True)  # a locked frame
        server = AnnotateServer(session, port=0, export_to=root / "data").start()
        try:
            with sync_playwright() as p:
                browser = p.chromium.launch(executable_path=shutil.which("chromium"),
                                            args=["--headless=new", "--no-sandbox",
                                                  "--disable-gpu"])
                page = browser.new_page(viewport={"width": 1400, "height": 940})
                page.goto(server.url)
                page.wait_for_selector("body[data-ready='1']", timeout=30000)
                box = page.get_by_test_id("canvas").bounding_box()

                def at(x, y):
                    return box["x"] + x * box["width"] / W, box["y"] + y * box["height"] / H

                page.mouse.click(*at(*CENTRE))
                page.mouse.click(*at(80, 80), button="right")
                page.wait_for_function("window.refvpsMetrics.maskMs.length === 2", timeout=30000)
                for i, text in enumerate(EXPRESSIONS):
                    page.get_by_test_id(f"exp-{i}").fill(text)
                page.get_by_test_id("concept").fill("object sliding")
                page.get_by_test_id("group-motion_patterns").check()
                page.get_by_test_id("propagate-forward").hover()
                page.wait_for_timeout(300)
                page.screenshot(path=str(out / "annotate.jpg"), type="jpeg", quality=85)
                page.get_by_test_id("propagate-forward").click()
                page.wait_for_function("Number(document.querySelector('[data-testid=progress]')"
                                       ".value) >= 3", timeout=60000)
                page.screenshot(path=str(out / "annotate-propagating.jpg"), type="jpeg",
                                quality=85)
                page.wait_for_selector("[data-testid='job'][data-state='done']", timeout=60000)
                page.keyboard.press("ArrowRight")
                page.keyboard.press("ArrowRight")
                page.wait_for_timeout(500)
                page.select_option("[data-testid=mode]", "outline")
                page.keyboard.press("b")
                canvas = page.get_by_test_id("canvas").bounding_box()
                page.mouse.move(canvas["x"] + 0.45 * canvas["width"],
                                canvas["y"] + 0.55 * canvas["height"])
                for _ in range(3):
                    page.mouse.wheel(0, -200)
                    page.wait_for_timeout(100)
                page.mouse.move(canvas["x"] + 0.5 * canvas["width"],
                                canvas["y"] + 0.5 * canvas["height"])
                page.wait_for_timeout(300)
                page.screenshot(path=str(out / "annotate-zoom.jpg"), type="jpeg", quality=85)
                browser.close()
        finally:
            server.stop()
    finally:
        shutil.rmtree(root, ignore_errors=True)
    print(f"wrote {out}/annotate.jpg, annotate-propagating.jpg, annotate-zoom.jpg")


if __name__ == "__main__":
    main()
