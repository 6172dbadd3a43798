"""Session rules behind the page: prompts in order, locked frames, confirmations, SAM2 feature
reuse, and the command line's messages (help, errors, reopen warnings, provenance)."""
from __future__ import annotations

import json
import os
import socket
import stat
import subprocess
import sys
import threading

import numpy as np
import pytest
from click.testing import CliRunner

from refvps.annotate.backends.scripted import ScriptedBackend
from refvps.annotate.session import BusyError, ConfirmError, Session
from refvps.annotate.workspace import Workspace
from tests.annotate.conftest import truth_for


def _session(ws_dir, info, **kw) -> Session:
    return Session(Workspace(ws_dir), ScriptedBackend(truth=truth_for(info), **kw))


def test_prompts_wait_for_each_other_but_not_for_a_propagation(workspace):
    ws_dir, info = workspace
    s = _session(ws_dir, info, click_delay=0.3, delay=0.2)
    errors = []

    def click(x, positive):
        try:
            s.click("00008", x, 50, positive)
        except Exception as exc:  # noqa: BLE001 - the test reports any refusal
            errors.append(exc)

    threads = [threading.Thread(target=click, args=(40, True))]
    threads[0].start()
    while not any(c[0] == "click" for c in s.backend.calls):
        pass  # the first click holds the backend
    threads.append(threading.Thread(target=click, args=(90, False)))
    threads[1].start()
    for t in threads:
        t.join()
    assert errors == []  # the second click waited; before, it was refused as "propagation is running"
    assert s.ws.record("00008")["points"] == [[40.0, 50.0, 1], [90.0, 50.0, 0]]
    s.click("00000", 30, 50, True)
    s.propagate("00000", "forward")
    with pytest.raises(BusyError, match="propagation is running"):
        s.click("00044", 30, 50, True)
    s.cancel()
    s.wait()


def test_no_target_locks_and_plan_names_targets_and_stops(workspace):
    ws_dir, info = workspace
    s = _session(ws_dir, info)
    s.click("00016", 50, 55, True)
    s.clear_frame("00032")
    assert s.ws.record("00032")["no_target"] and s.ws.locked("00032")
    plan = s.plan("00016", "both")
    assert plan["targets"] == ["00020", "00024", "00028", "00012", "00008", "00004", "00000"]
    assert plan["stops"] == ["00032"] and plan["empty_start"] is False
    rev = s.ws.record("00032")["rev"]
    s.propagate("00016", "both")
    s.wait()
    assert s.ws.record("00032")["rev"] == rev and not s.ws.layers("00032").model.any()
    assert s.ws.status("00028") == "model"
    s.click("00032", 70, 60, True)  # a click says there is a target after all
    assert not s.ws.record("00032")["no_target"]


def test_a_frame_locked_during_a_run_is_not_overwritten(workspace):
    ws_dir, info = workspace
    s = _session(ws_dir, info, delay=0.15)
    s.click("00000", 30, 50, True)
    job = s.propagate("00000", "forward")
    while job.done < 1:
        pass
    s.stroke("00024", "add", [[100, 10]], 2)  # the annotator fixes a frame ahead of the run
    s.wait()
    assert job.state == "done"
    assert not s.ws.layers("00024").model.any() and s.ws.layers("00024").add[10, 100]
    assert "00024" not in job.completed and not s.ws.layers("00028").model.any()


def test_discarding_work_needs_confirmation_and_is_undoable(workspace):
    ws_dir, info = workspace
    s = _session(ws_dir, info)
    s.click("00000", 30, 50, True)
    s.propagate("00000", "forward")
    s.wait()
    mask = s.ws.layers("00008").model.copy()
    with pytest.raises(ConfirmError, match="erase its propagated mask") as refused:
        s.clear_prompts("00008")
    assert refused.value.reason == "erase_mask" and np.array_equal(s.ws.layers("00008").model, mask)
    s.clear_prompts("00008", confirm=True)
    assert not s.ws.layers("00008").model.any()
    s.ws.undo()
    assert np.array_equal(s.ws.layers("00008").model, mask)
    s.clear_frame("00004")
    s.ws.state["frames"]["00004"]["no_target"] = False  # an empty, unlocked frame
    with pytest.raises(ConfirmError, match="no mask") as refused:
        s.propagate("00004", "forward")
    assert refused.value.reason == "empty_start" and refused.value.details["targets"][0] == "00008"
    rev = s.ws.record("00008")["rev"]
    s.propagate("00004", "forward", confirm=True)
    s.wait()
    assert s.ws.record("00008")["rev"] != rev  # rewritten (the fake tracks its truth, not emptiness)
    s.ws.undo()
    assert np.array_equal(s.ws.layers("00008").model, mask)


def test_sam2_encodes_each_frame_once(sam2_backend_factory, workspace):
    """sam2 1.1.0 keeps the features of the last encoded frame only; the backend's cache keeps
    every visited frame, so returning to one runs only the prompt decoder."""
    ws_dir, info = workspace
    backend = sam2_backend_factory
    backend.open([ws_dir / "frames" / f"{f}.jpg" for f in info["anno_frames"][:4]])
    try:
        start = backend.encoded  # init_state encodes frame 0
        backend.click(1, np.array([[30, 50]]), np.array([1]))
        backend.click(1, np.array([[30, 50], [100, 10]]), np.array([1, 0]))
        assert backend.encoded == start + 1
        backend.prepare(2)
        backend.click(2, np.array([[30, 50]]), np.array([1]))
        backend.click(1, np.array([[30, 50]]), np.array([1]))  # back to frame 1
        assert backend.encoded == start + 2
        backend.clear(2)
        list(backend.propagate(1, reverse=False, steps=2))  # reuses 2, encodes 3
        assert backend.encoded == start + 3
        backend.click(3, np.array([[60, 60]]), np.array([1]))  # a propagated frame: no encoder
        assert backend.encoded == start + 3
    finally:
        backend.close()


def test_cli_help_shows_the_clip_form_and_its_options():
    from refvps.cli import main

    result = CliRunner().invoke(main, ["annotate", "--help"], prog_name="refvps")
    assert result.exit_code == 0
    assert "refvps annotate CLIP [OPTIONS]" in result.output
    for option in ("--backend", "--port", "--device", "--sam2-checkpoint", "--frames-fps",
                   "--export-to", "export"):
        assert option in result.output


def _run_cli(args, tmp_path, timeout=60):
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
    env.pop("REFVPS_SAM2_CHECKPOINT", None)
    return subprocess.run([sys.executable, "-m", "refvps", "annotate", *args, "--no-browser"],
                          env=env, capture_output=True, text=True, timeout=timeout, cwd=tmp_path)


def test_cli_errors_are_messages_not_tracebacks(workspace, tmp_path):
    ws_dir, info = workspace
    result = _run_cli([info["source"], "--workspace", str(ws_dir)], tmp_path)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "needs --sam2-checkpoint" in result.stderr
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = _run_cli([info["source"], "--workspace", str(ws_dir), "--backend", "opencv",
                           "--port", str(port)], tmp_path)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert f"port {port} on 127.0.0.1 is in use" in result.stderr and "--port 0" in result.stderr


def test_reopen_warnings_and_frames_folder_rate(tmp_path, clip24):
    from refvps.annotate.ingest import ingest, reopen_warnings
    from tests.annotate import synthetic

    folder = synthetic.write_frames(tmp_path / "shots", fps=12, seconds=0.5)
    info = ingest(folder, tmp_path / "ws", frames_fps=12)
    assert reopen_warnings(info, folder, None, None) == []
    warnings = reopen_warnings(info, clip24, "other", 30)
    assert len(warnings) == 3
    assert "was made from" in warnings[0] and "--clip-id 'other' is ignored" in warnings[1]
    assert "resampled from 12 fps; --frames-fps 30 is ignored" in warnings[2]


def test_token_kept_with_the_workspace_and_backend_in_every_export(workspace, tmp_path):
    from refvps.annotate.app import recorded_backend, workspace_token
    from refvps.cli import main

    ws_dir, info = workspace
    token = workspace_token(ws_dir)
    assert workspace_token(ws_dir) == token and len(token) >= 32
    assert stat.S_IMODE((ws_dir / "token").stat().st_mode) == 0o600
    assert recorded_backend(ws_dir)["backend"] == "unknown"
    (ws_dir / "backend.json").write_text(json.dumps({"backend": "opencv", "opencv": "x"}))
    s = _session(ws_dir, info)
    s.ws.set_meta(["a", "b", "c", "d"], "square", ["motion_patterns"])
    result = CliRunner().invoke(main, ["annotate", "export", str(ws_dir), "--to", str(tmp_path / "d")])
    assert result.exit_code == 0, result.output
    record = json.loads((tmp_path / "d" / "ref-vps" / "provenance" / "vps_square.json").read_text())
    assert record["backend"] == {"backend": "opencv", "opencv": "x"}


def test_a_stale_link_gets_a_reconnect_page_not_json(workspace):
    import urllib.error
    import urllib.request

    from refvps.annotate.server import AnnotateServer

    ws_dir, info = workspace
    server = AnnotateServer(_session(ws_dir, info), port=0, token="current").start()
    try:
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(f"http://127.0.0.1:{server.server_address[1]}/?token=old")
        assert refused.value.code == 403
        assert refused.value.headers["Content-Type"].startswith("text/html")
        assert b"printed in its terminal" in refused.value.read()
    finally:
        server.stop()
