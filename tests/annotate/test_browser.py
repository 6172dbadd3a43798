"""End to end in headless Chromium: click, propagate, paint Ignore, undo/redo, type the
expressions, export from the page, then score the exported clip with refvps eval."""
from __future__ import annotations

import json

import numpy as np
import pytest

from refvps.annotate.backends.scripted import ScriptedBackend
from refvps.annotate.server import AnnotateServer
from refvps.annotate.session import Session
from refvps.annotate.workspace import Workspace
from refvps.masks import write_binary_mask
from tests.annotate.conftest import truth_for

EXPRESSIONS = ["the red square", "the square sliding to the right",
               "the red tile", "the small block moving across"]


def _page_xy(page, x, y, size):
    box = page.get_by_test_id("canvas").bounding_box()
    return box["x"] + (x + 0.5) * box["width"] / size[1], box["y"] + (y + 0.5) * box["height"] / size[0]


def test_annotate_in_the_browser_then_score(chromium, workspace, tmp_path):
    ws_dir, info = workspace
    truth = truth_for(info)
    session = Session(Workspace(ws_dir), ScriptedBackend(truth=truth))
    server = AnnotateServer(session, port=0, export_to=tmp_path / "data").start()
    page = chromium.new_page(viewport={"width": 1280, "height": 860})
    errors = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    try:
        page.goto(server.url)
        page.wait_for_selector("body[data-ready='1']", timeout=15000)
        size = session.ws.size
        # 1. a positive click on the square on frame 0 -> the backend's mask
        page.mouse.click(*_page_xy(page, 30, 50, size))
        page.wait_for_selector("[data-testid='strip-00000'].st-model", timeout=10000)
        assert np.array_equal(session.ws.layers("00000").model, truth(0))
        # 2. propagate forward with the shortcut; wait for the job to finish
        page.keyboard.press("p")
        page.wait_for_selector("[data-testid='job'][data-state='done']", timeout=15000)
        assert all(session.ws.status(f) == "model" for f in info["anno_frames"])
        # 3. go to frame 00020 (5 x right arrow) and paint Ignore across the square
        for _ in range(5):
            page.keyboard.press("ArrowRight")
        page.wait_for_function("document.querySelector('[data-testid=frame-label]')"
                               ".textContent.startsWith('00020')")
        page.keyboard.press("i")
        page.mouse.move(*_page_xy(page, 30, 55, size))
        page.mouse.down()
        for x in range(34, 74, 4):
            page.mouse.move(*_page_xy(page, x, 55, size))
        page.mouse.up()
        page.wait_for_selector("[data-testid='strip-00020'].st-edited", timeout=10000)
        ignore = session.ws.layers("00020").ignore
        assert ignore[55, 31:70].all() and not ignore[40].any() and not ignore[70].any()
        # 4. undo and redo from the keyboard
        page.keyboard.press("Control+z")
        page.wait_for_selector("[data-testid='strip-00020'].st-model", timeout=10000)
        page.keyboard.press("Control+Shift+z")
        page.wait_for_selector("[data-testid='strip-00020'].st-edited", timeout=10000)
        # 5. expressions, concept and a concept group
        for i, text in enumerate(EXPRESSIONS):
            page.get_by_test_id(f"exp-{i}").fill(text)
        page.get_by_test_id("concept").fill("square sliding")
        page.get_by_test_id("group-motion_patterns").check()
        page.wait_for_function("document.querySelector('[data-testid=saved]').textContent === 'saved'")
        page.get_by_test_id("shortcuts").wait_for()
        # 6. export from the page
        page.get_by_test_id("export").click()
        page.wait_for_function("document.querySelector('[data-testid=message]')"
                               ".textContent.startsWith('exported')", timeout=15000)
        assert errors == []
    finally:
        page.close()
        server.stop()

    dataset = tmp_path / "data" / "ref-vps"
    meta = json.loads((dataset / "meta_expressions.json").read_text())["videos"]["vps_square"]
    assert [e["exp"] for e in meta["expressions"].values()] == EXPRESSIONS
    assert meta["concept_groups"] == ["motion_patterns"]

    from refvps.evaluation import evaluate

    # predictions: the true square on every annotation frame; on 00020 the Ignore band is also
    # predicted as foreground (must not count) in "perfect", and nothing at all in "miss20"
    for name in ("perfect", "miss20"):
        for k, frame in enumerate(info["anno_frames"]):
            mask = truth(k)
            if frame == "00020":
                mask = mask | ignore if name == "perfect" else np.zeros_like(mask)
            for exp_id in meta["expressions"]:
                write_binary_mask(tmp_path / name / "vps_square" / exp_id / f"{frame}.png", mask)
    perfect = evaluate(tmp_path / "perfect", "ref-vps", tmp_path / "data", workers=1, progress=False)
    assert perfect.metrics["J"] == 1.0 and perfect.summary["counts"]["queries"] == 4
    miss = evaluate(tmp_path / "miss20", "ref-vps", tmp_path / "data", workers=1, progress=False)
    assert miss.metrics["J"] == pytest.approx(11 / 12)  # one of 12 frames scores 0
