"""The HTTP API and its security: token, loopback, no path escapes; crash safety."""
from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request

import numpy as np
import pytest

from refvps.annotate.backends.scripted import ScriptedBackend
from refvps.annotate.server import AnnotateServer
from refvps.annotate.session import Session
from refvps.annotate.workspace import Workspace
from tests.annotate.conftest import truth_for


def _request(url, body=None, token=None, method=None):
    headers = {"Content-Type": "application/json"}
    if token:
        headers["X-Refvps-Token"] = token
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, headers=headers, method=method)
    try:
        with urllib.request.urlopen(req, timeout=10) as res:
            return res.status, res.read(), res.headers
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read(), exc.headers


@pytest.fixture
def server(workspace):
    ws_dir, info = workspace
    session = Session(Workspace(ws_dir), ScriptedBackend(truth=truth_for(info)))
    srv = AnnotateServer(session, port=0, token="s3cret", export_to=ws_dir.parent / "data").start()
    base = f"http://127.0.0.1:{srv.server_address[1]}"
    yield srv, base, info
    srv.stop()


def test_api_round_trip(server):
    srv, base, info = server
    tok = srv.app.token
    status, body, _ = _request(f"{base}/api/state", token=tok)
    state = json.loads(body)
    assert status == 200 and state["clip_id"] == "vps_square" and len(state["frames"]) == 48
    assert [f["status"] for f in state["anno_frames"]] == ["empty"] * 12
    status, body, _ = _request(f"{base}/api/frame/00000/click", {"x": 30, "y": 50}, tok)
    assert status == 200 and json.loads(body)["frame"]["status"] == "model"
    status, body, _ = _request(f"{base}/api/propagate", {"frame": "00000", "direction": "forward"}, tok)
    assert status == 200
    srv.app.session.wait()
    job = json.loads(_request(f"{base}/api/job", token=tok)[1])["job"]
    assert job["state"] == "done" and job["done"] == job["total"] == 11
    status, body, _ = _request(f"{base}/api/frame/00044/stroke",
                               {"kind": "ignore", "points": [[5, 90], [20, 90]], "radius": 3}, tok)
    answer = json.loads(body)
    assert answer["frame"]["status"] == "edited"
    # the answer carries the new mask as runs [value, length, ...] (2 = Ignore)
    mask = answer["mask"]
    runs = np.array(mask["runs"]).reshape(-1, 2)
    labels = np.repeat(runs[:, 0], runs[:, 1]).reshape(mask["h"], mask["w"])
    assert mask["rev"] == answer["frame"]["rev"] and labels.shape == (96, 128)
    assert np.all(runs[1:, 0] != runs[:-1, 0]) and set(runs[:, 0]) == {0, 1, 2}
    ignore = srv.app.ws.layers("00044").ignore
    assert np.array_equal(labels == 2, ignore) and ignore[90, 5:21].all()
    assert np.array_equal(labels == 1, truth_for(info)(11) & ~ignore)
    status, png, headers = _request(f"{base}/api/frame/00044/overlay.png", token=tok)
    import cv2

    overlay = cv2.imdecode(np.frombuffer(png, np.uint8), cv2.IMREAD_UNCHANGED)
    assert headers["Content-Type"] == "image/png" and overlay.shape == (96, 128, 4)
    assert overlay[90, 10].tolist() == [0, 214, 255, 255]  # Ignore shown in yellow (BGRA)
    truth = truth_for(info)(11)
    assert np.array_equal(overlay[..., 0] == 255, truth)  # target shown in blue
    status, body, _ = _request(f"{base}/api/undo", {}, tok)
    assert json.loads(body)["changed"][0]["name"] == "00044"
    status, body, _ = _request(f"{base}/api/meta", {"expressions": ["a", "b", "c", "d"],
                                                    "concept": "x y", "concept_groups": ["motion_patterns"]}, tok)
    assert status == 200 and json.loads(body)["meta"]["concept"] == "x y"
    status, body, _ = _request(f"{base}/api/export", {}, tok)
    assert status == 200 and json.loads(body)["clip_id"] == "vps_square"
    assert (srv.app.export_to / "ref-vps" / "Annotations" / "vps_square" / "00044.png").is_file()
    status, body, _ = _request(f"{base}/api/frame/00001/click", {"x": 1, "y": 1}, tok)
    assert status == 404  # not an annotation frame
    status, body, _ = _request(f"{base}/api/frame/00000/click", {"x": 500, "y": 1}, tok)
    assert status == 400 and b"outside" in body


def test_a_mask_with_too_many_runs_is_left_to_the_overlay(server, monkeypatch):
    srv, base, info = server
    from refvps.annotate import server as server_module

    status, body, _ = _request(f"{base}/api/frame/00000/click", {"x": 30, "y": 50}, srv.app.token)
    runs = json.loads(body)["mask"]["runs"]
    assert status == 200 and len(runs) > 6  # rows crossing the square: many runs
    monkeypatch.setattr(server_module, "MAX_MASK_RUNS", 3)
    status, body, _ = _request(f"{base}/api/frame/00000/click", {"x": 32, "y": 52}, srv.app.token)
    answer = json.loads(body)
    assert status == 200 and answer["mask"] is None and answer["frame"]["status"] == "model"


def test_requests_without_the_token_are_refused(server):
    srv, base, _ = server
    for path in ("/", "/api/state", "/frames/00000.jpg", "/static/app.js"):
        assert _request(base + path)[0] == 403
        assert _request(base + path, token="wrong")[0] == 403
    assert _request(f"{base}/api/frame/00000/click", {"x": 30, "y": 50})[0] == 403
    assert srv.app.ws.record("00000")["points"] == []  # nothing happened
    status, body, headers = _request(f"{base}/?token={srv.app.token}")
    assert status == 200 and b"refvps annotate" in body
    cookie = headers["Set-Cookie"].split(";")[0]
    req = urllib.request.Request(f"{base}/frames/00000.jpg", headers={"Cookie": cookie})
    assert urllib.request.urlopen(req).status == 200  # the page's images authenticate by cookie


def test_no_path_escapes_the_workspace(server):
    srv, base, _ = server
    tok = srv.app.token
    for path in ("/frames/../workspace.json", "/frames/..%2Fstate.json", "/static/../server.py",
                 "/static/%2e%2e/__init__.py", "/frames/00000.jpg/../../../etc/passwd",
                 "//etc/passwd", "/api/frame/../../state.json/info", "/frames/99999.jpg",
                 "/workspace.json", "/state.json"):
        status, body, _ = _request(base + path, token=tok)
        assert status == 404, path
    status, body, _ = _request(f"{base}/api/propagate", {"frame": "../x", "direction": "forward"}, tok)
    assert status == 404


def test_binds_loopback_unless_asked(server, workspace):
    srv, _, _ = server
    assert srv.server_address[0] == "127.0.0.1"
    ws_dir, _ = workspace
    copy = shutil.copytree(ws_dir, ws_dir.parent / "ws-copy")  # one server per workspace
    wide = AnnotateServer(Session(Workspace(copy), ScriptedBackend()), host="0.0.0.0", port=0)
    try:
        assert wide.server_address[0] == "0.0.0.0"
    finally:
        wide.server_close()
    from refvps.cli import main

    params = {p.name: p for p in main.commands["annotate"].commands["open"].params}
    assert params["host"].default == "127.0.0.1"


def test_killing_the_server_loses_nothing_saved(workspace, tmp_path):
    """A real `refvps annotate` process, SIGKILLed mid-session; the workspace reopens intact."""
    ws_dir, info = workspace
    ready = tmp_path / "url.txt"
    env = dict(os.environ, REFVPS_ANNOTATE_READY_FILE=str(ready),
               PYTHONPATH=os.pathsep.join(sys.path))
    proc = subprocess.Popen([sys.executable, "-m", "refvps", "annotate", info["source"],
                             "--workspace", str(ws_dir), "--backend", "opencv", "--port", "0",
                             "--no-browser"], env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 60
        while not ready.is_file() and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert ready.is_file(), proc.stderr.read().decode() if proc.poll() is not None else "no URL"
        url = ready.read_text()
        base, token = url.split("/?token=")
        assert base.startswith("http://127.0.0.1:")
        _request(f"{base}/api/frame/00000/click", {"x": 30, "y": 50}, token)
        _request(f"{base}/api/frame/00004/stroke", {"kind": "add", "points": [[60, 10], [90, 10]],
                                                    "radius": 2}, token)
        _request(f"{base}/api/frame/00004/stroke", {"kind": "ignore", "points": [[5, 90]],
                                                    "radius": 3}, token)
        _request(f"{base}/api/meta", {"expressions": ["one", "two", "three", "four"]}, token)
        _request(f"{base}/api/undo", {}, token)  # the Ignore stroke is undone, redo kept
        expected = {f: Workspace(ws_dir).layers(f).labels() for f in ("00000", "00004")}
        _request(f"{base}/api/propagate", {"frame": "00000", "direction": "forward"}, token)
        os.kill(proc.pid, signal.SIGKILL)  # mid-propagation, possibly mid-write
        proc.wait(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
    ws = Workspace(ws_dir)
    assert ws.record("00000")["points"] == [[30.0, 50.0, 1]]
    for frame, labels in expected.items():
        assert np.array_equal(ws.layers(frame).labels(), labels)
    assert ws.layers("00004").add[10, 60:91].all()
    assert ws.meta["expressions"] == ["one", "two", "three", "four"]
    assert ws.can_redo() and ws.can_undo()
    for frame in ws.anno_frames:  # every saved frame is readable (no torn writes)
        ws.layers(frame)
    ws.redo()
    assert ws.layers("00004").ignore[90, 5]
