"""The page in headless Chromium: no action dropped, live propagation, locked frames kept,
confirmations, zoom, view state restored on reload, field errors, reconnect after a restart."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from refvps.annotate.backends.scripted import ScriptedBackend
from refvps.annotate.server import AnnotateServer
from refvps.annotate.session import Session
from refvps.annotate.workspace import Workspace
from tests.annotate.conftest import truth_for
from tests.annotate.test_browser import _page_xy


@pytest.fixture
def served(chromium, workspace, tmp_path):
    """Start a server on the workspace with a scripted backend; yields a function opening it."""
    made = []

    def start(**backend_options):
        ws_dir, info = workspace
        session = Session(Workspace(ws_dir), ScriptedBackend(truth=truth_for(info),
                                                             **backend_options))
        server = AnnotateServer(session, port=0, export_to=tmp_path / "data").start()
        page = chromium.new_page(viewport={"width": 1280, "height": 900})
        errors = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        made.append((server, page, errors))
        page.goto(server.url)
        page.wait_for_selector("body[data-ready='1']", timeout=15000)
        return session, page

    yield start
    for server, page, errors in made:
        page.close()
        server.stop()
        assert errors == []


def _xy(page, session, x, y):
    return _page_xy(page, x, y, session.ws.size)


def _pixel(page, x, y):
    return page.evaluate(f"[...document.querySelector('#view').getContext('2d')"
                         f".getImageData({x}, {y}, 1, 1).data]")


def _frame(page, name):
    page.wait_for_function(f"document.querySelector('[data-testid=frame-label]')"
                           f".textContent.startsWith('{name}')")


def test_clicks_queue_in_order_with_markers_drawn_at_once(served):
    session, page = served(click_delay=0.6)
    page.mouse.click(*_xy(page, session, 30, 50))
    page.mouse.click(*_xy(page, session, 100, 20), button="right")
    page.keyboard.press("p")  # propagate, queued behind both clicks
    page.wait_for_function("window.refvpsMetrics.markerMs.length === 2")
    metrics = page.evaluate("window.refvpsMetrics")
    assert metrics["answerMs"] == []  # both markers are on screen before the first answer
    red = _pixel(page, 100, 20)
    assert red[0] > red[1] + 40 and red[0] > red[2] + 40, red  # the negative click's (pending)
    # marker, red over the green background
    assert "queued" in page.get_by_test_id("message").text_content()
    page.wait_for_selector("[data-testid='job'][data-state='done']", timeout=20000)
    points = session.ws.record("00000")["points"]
    assert [p[2] for p in points] == [1, 0]
    assert np.allclose([p[:2] for p in points], [[30.5, 50.5], [100.5, 20.5]], atol=1)
    calls = [c[:3] for c in session.backend.calls if c[0] in ("click", "propagate")]
    # the two clicks in order (1 then 2 points), then the run (which re-prompts its start frame)
    assert calls[:2] == [("click", 0, 1), ("click", 0, 2)] and calls[-1][0] == "propagate"
    assert all(session.ws.status(f) == "model" for f in session.ws.anno_frames)


def test_live_strip_plan_and_locked_frames_never_overwritten(served):
    session, page = served(delay=0.3)
    s = session
    s.click("00000", 30, 50, True)
    s.stroke("00024", "add", [[100, 10]], 2)  # edited: locked
    s.clear_frame("00036")  # no target: locked
    locked = {f: s.ws.record(f)["rev"] for f in ("00024", "00036")}
    page.reload()
    page.wait_for_selector("body[data-ready='1']")
    _frame(page, "00000")
    assert "locked" in page.get_by_test_id("strip-00024").get_attribute("class")
    assert "no-target" in page.get_by_test_id("strip-00036").get_attribute("class")
    page.get_by_test_id("propagate-forward").hover()
    targets = page.eval_on_selector_all("#strip button.target", "els => els.map(e => e.dataset.name)")
    assert targets == ["00004", "00008", "00012", "00016", "00020"]
    assert "stops before locked 00024" in page.get_by_test_id("message").text_content()
    page.get_by_test_id("propagate-forward").click()
    page.wait_for_function("document.querySelector('[data-testid=strip-00004]').classList"
                           ".contains('st-model') && document.querySelector('[data-testid=job]')"
                           ".dataset.state === 'running'", timeout=10000)
    page.wait_for_function("/s left/.test(document.querySelector('[data-testid=job]').textContent)")
    page.wait_for_selector("[data-testid='job'][data-state='done']", timeout=20000)
    assert "5 of 5 frames" in page.get_by_test_id("message").text_content()
    for _ in range(6):
        page.keyboard.press("ArrowRight")
    _frame(page, "00024")
    page.keyboard.press("p")  # from the edited frame: 00028, 00032, then the no-target frame
    page.wait_for_function("/from 00024: done, 2 of 2 frames/.test(document.querySelector("
                           "'[data-testid=message]').textContent)", timeout=20000)
    assert s.ws.status("00032") == "model"
    assert {f: s.ws.record(f)["rev"] for f in locked} == locked  # never overwritten
    assert s.ws.record("00036")["no_target"] and not s.ws.layers("00036").model.any()


def test_confirmations_before_discarding_work_then_undo(served):
    session, page = served()
    s = session
    s.click("00000", 30, 50, True)
    job = s.propagate("00000", "forward")
    s.wait()
    assert job.state == "done"
    mask = s.ws.layers("00008").model.copy()
    page.reload()
    page.wait_for_selector("body[data-ready='1']")
    page.keyboard.press("ArrowRight")
    page.keyboard.press("ArrowRight")
    _frame(page, "00008")
    page.keyboard.press("Backspace")  # a propagated frame: clearing would erase its mask
    page.wait_for_selector("[data-testid='confirm']:not([hidden])")
    assert "erase its propagated mask" in page.get_by_test_id("confirm").text_content()
    page.get_by_test_id("confirm-no").click()
    page.wait_for_function("/cancelled, nothing changed/.test(document.querySelector("
                           "'[data-testid=message]').textContent)")
    assert np.array_equal(s.ws.layers("00008").model, mask)
    page.keyboard.press("Backspace")
    page.get_by_test_id("confirm-yes").click()
    page.wait_for_selector("[data-testid='strip-00008'].st-empty")
    page.keyboard.press("Control+z")
    page.wait_for_selector("[data-testid='strip-00008'].st-model")
    assert "undo: clear prompts (00008)" in page.get_by_test_id("message").text_content()
    assert np.array_equal(s.ws.layers("00008").model, mask)
    page.keyboard.press("Shift+Delete")  # no target on 00008
    page.wait_for_selector("[data-testid='strip-00008'].no-target")
    s.ws.commit("unlock for the test", "00008", no_target=False)
    page.reload()
    page.wait_for_selector("body[data-ready='1']")
    _frame(page, "00008")  # restored on reload
    before = {f: s.ws.record(f)["rev"] for f in s.ws.anno_frames}
    page.keyboard.press("p")  # from an empty frame
    page.wait_for_selector("[data-testid='confirm']:not([hidden])")
    assert "no mask" in page.get_by_test_id("confirm").text_content()
    assert page.eval_on_selector_all("#strip button.target", "els => els.length") == 9
    page.get_by_test_id("confirm-no").click()
    page.wait_for_function("/cancelled, nothing changed/.test(document.querySelector("
                           "'[data-testid=message]').textContent)")
    assert {f: s.ws.record(f)["rev"] for f in s.ws.anno_frames} == before


def test_zoom_brush_cursor_opacity_and_view_restored_on_reload(served):
    session, page = served()
    canvas = page.get_by_test_id("canvas").bounding_box()
    page.mouse.move(canvas["x"] + canvas["width"] / 4, canvas["y"] + canvas["height"] / 2)
    page.mouse.wheel(0, -200)
    page.wait_for_function("Number(document.querySelector('[data-testid=zoom]').dataset.zoom) > 1.2")
    page.mouse.click(*_xy(page, session, 30, 50))  # the click lands where it points, zoomed
    page.wait_for_selector("[data-testid='strip-00000'].st-model")
    assert np.allclose(session.ws.record("00000")["points"][0][:2], [30.5, 50.5], atol=1)
    page.evaluate("(() => { const el = document.querySelector('#opacity'); el.value = 37;"
                  " el.dispatchEvent(new Event('input')); })()")
    page.keyboard.press("o")  # from a slider value, O goes to the next preset up (was: to 0)
    assert page.get_by_test_id("opacity").input_value() == "55"
    page.keyboard.press("m")
    page.keyboard.press("b")
    page.mouse.move(*_xy(page, session, 64, 48))
    size = int(page.get_by_test_id("size").input_value())
    ring = _pixel(page, 64 + size, 48)  # the brush outline at its true radius
    assert max(ring[:3]) - min(ring[:3]) < 40 and (ring[0] < 60 or ring[0] > 200), ring
    page.keyboard.press("ArrowRight")
    page.keyboard.press("ArrowRight")
    _frame(page, "00008")
    zoom = page.get_by_test_id("zoom").get_attribute("data-zoom")
    page.wait_for_timeout(300)  # the view state is saved 150 ms after a change
    page.reload()
    page.wait_for_selector("body[data-ready='1']")
    _frame(page, "00008")
    assert "active" in page.get_by_test_id("tool-brush").get_attribute("class")
    assert page.get_by_test_id("zoom").get_attribute("data-zoom") == zoom
    assert page.get_by_test_id("opacity").input_value() == "55"
    assert page.get_by_test_id("mode").input_value() == "fill"
    page.keyboard.press("n")  # next unreviewed
    _frame(page, "00012")
    page.get_by_test_id("export").click()  # the expressions are empty: errors by their fields
    page.wait_for_selector("[data-testid='exp-0'].invalid")
    assert "is empty" in page.locator("[data-error-for='exp-0']").text_content()
    assert "concept is empty" in page.locator("[data-error-for='concept']").text_content()
    assert "export refused" in page.get_by_test_id("message").text_content()


def test_reconnect_after_the_server_is_killed_and_restarted(chromium, workspace, tmp_path):
    ws_dir, info = workspace
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))

    def start(port):
        ready = tmp_path / f"url-{time.monotonic_ns()}.txt"
        proc = subprocess.Popen([sys.executable, "-m", "refvps", "annotate", info["source"],
                                 "--workspace", str(ws_dir), "--backend", "opencv", "--port",
                                 str(port), "--no-browser"],
                                env=dict(env, REFVPS_ANNOTATE_READY_FILE=str(ready)),
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 60
        while not ready.is_file() and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert ready.is_file(), proc.stderr.read().decode() if proc.poll() is not None else "no URL"
        return proc, ready.read_text()

    proc, url = start(0)
    page = chromium.new_page(viewport={"width": 1280, "height": 900})
    try:
        page.goto(url)
        page.wait_for_selector("body[data-ready='1']", timeout=15000)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
        page.mouse.click(*_page_xy(page, 30, 50, tuple(Workspace(ws_dir).size)))
        page.wait_for_selector("[data-testid='offline']:not([hidden])", timeout=10000)
        assert "1 action(s) wait" in page.get_by_test_id("offline").text_content()
        page.keyboard.press("ArrowRight")  # navigation keeps working offline
        _frame(page, "00004")
        page.keyboard.press("ArrowLeft")
        _frame(page, "00000")
        port = int(url.split(":")[2].split("/")[0])
        proc, again = start(port)
        assert again == url  # the token is kept with the workspace
        page.wait_for_selector("[data-testid='offline']", state="hidden", timeout=15000)
        page.wait_for_selector("[data-testid='strip-00000'].st-model", timeout=15000)
        assert [p[2] for p in Workspace(ws_dir).record("00000")["points"]] == [1]
        page.reload()  # the old tab's URL still works after the restart
        page.wait_for_selector("body[data-ready='1']", timeout=15000)
    finally:
        page.close()
        if proc.poll() is None:
            proc.terminate()
            proc.wait(timeout=20)


def _page_labels(page) -> np.ndarray:
    """The label map the page draws (0 / 1 / 2), read from the page's state."""
    out = page.evaluate("({w: S.labels.w, h: S.labels.h, data: Array.from(S.labels.data)})")
    return np.array(out["data"], np.uint8).reshape(out["h"], out["w"])


def test_a_click_paints_its_mask_from_the_answer_without_another_request(served, workspace):
    session, page = served()
    truth = truth_for(workspace[1])
    page.wait_for_function("S.shown === '00000' && S.labels !== null")
    page.wait_for_timeout(400)  # past the start-up prepare request
    requests = []
    page.on("request", lambda r: requests.append(r.url.split("?")[0].split("/", 3)[3]))
    page.mouse.click(*_xy(page, session, 30, 50))
    page.wait_for_function("window.refvpsMetrics.maskMs.length === 1")
    assert requests == ["api/frame/00000/click"]
    painted = _page_labels(page)
    assert np.array_equal(painted == 1, truth(0)) and truth(0).any()
    # the same mask as the overlay the page fetches when it comes back to the frame
    page.keyboard.press("ArrowRight")
    page.wait_for_function("S.shown === '00004'")
    page.keyboard.press("ArrowLeft")
    page.wait_for_function("S.shown === '00000'")
    assert any(u.endswith("00000/overlay.png") for u in requests)
    assert np.array_equal(_page_labels(page), painted)
    # an Ignore stroke: its answer carries the Ignore label (2) too, painted without a fetch
    del requests[:]
    page.keyboard.press("i")
    page.mouse.move(*_xy(page, session, 30, 55))
    page.mouse.down()
    page.mouse.move(*_xy(page, session, 60, 55))
    page.mouse.up()
    page.wait_for_selector("[data-testid='strip-00000'].st-edited", timeout=10000)
    page.wait_for_function("S.labels.data.includes(2)")
    assert not any(u.endswith("overlay.png") for u in requests)
    ignore = session.ws.layers("00000").ignore
    labels = _page_labels(page)
    assert np.array_equal(labels == 2, ignore) and ignore[55, 31:60].all()
    assert np.array_equal(labels == 1, truth(0) & ~ignore)
