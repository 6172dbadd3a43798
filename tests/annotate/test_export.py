"""`refvps annotate export` is confined and transactional.

Every step of an export is failed in turn (an exception in process, SIGKILL in a real process)
at the named fault points of refvps/annotate/export.py; after each, the Ref-VPS loader must
accept the dataset, every listed clip must be wholly its old or wholly its new version, and once
the next export has recovered, the dataset must be exactly the old state or the new one.
"""
from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from refvps.annotate.backends.scripted import ScriptedBackend
from refvps.annotate.export import (WORK_DIR, ClipExistsError, export_workspace,
                                    recover_dataset)
from refvps.annotate.session import Session
from refvps.annotate.workspace import Workspace
from refvps.errors import ValidationError
from refvps.faults import InjectedFault
from refvps.loaders.refvps import RefVPS
from refvps.locks import ProcessLock
from tests.annotate.conftest import truth_for

ENV = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
CLIP = "vps_square"


def _ready(ws_dir: Path, info: dict, x: int = 20) -> Workspace:
    session = Session(Workspace(ws_dir), ScriptedBackend(truth=truth_for(info)))
    session.ws.set_meta(["the square sliding", "the sliding square", "the moving block",
                         "the block that moves"], "square sliding", ["motion_patterns"])
    session.click("00000", x, 40, True)
    session.close()
    return Workspace(ws_dir)


@pytest.fixture(scope="module")
def base(tmp_path_factory):
    """The sample dataset (10 clips), the same with version 1 of our clip exported, and the
    same with version 2 exported over it; plus the two workspaces."""
    from refvps.annotate.ingest import ingest
    from refvps.sample import make_sample
    from tests.annotate import synthetic

    root = tmp_path_factory.mktemp("export")
    clip = synthetic.write_video(root / "square.mp4", 24)
    info = ingest(clip, root / "ws1", clip_id=CLIP)
    ws1 = _ready(root / "ws1", info)
    shutil.copytree(root / "ws1", root / "ws2")
    ws2 = Workspace(root / "ws2")
    session = Session(ws2, ScriptedBackend(truth=truth_for(info)))
    session.stroke("00000", "erase", [[x, 40] for x in range(0, 128, 4)], 6)  # version 2 differs
    session.close()
    make_sample(root / "empty", predictions=False)
    shutil.copytree(root / "empty", root / "v1")
    export_workspace(ws1, root / "v1")
    shutil.copytree(root / "v1", root / "v2")
    export_workspace(ws2, root / "v2", replace=True)
    return root, ws1, ws2


def snapshot(root: Path) -> dict:
    """A dataset as a reader sees it (JSON parsed, split as the loader lists it; provenance
    files by presence, since they carry the export time)."""
    dataset = root / "ref-vps"
    state = {"split": RefVPS(dataset).clip_ids()}
    for path in sorted(dataset.rglob("*")):
        rel = path.relative_to(dataset)
        if rel.parts[0] in (WORK_DIR, "splits") or path.is_dir():
            continue
        if rel.parts[0] == "provenance":
            state[str(rel)] = "present"
        elif path.suffix == ".json":
            state[str(rel)] = json.loads(path.read_text())
        else:
            state[str(rel)] = path.read_bytes()
    return state


def clip_view(root: Path, clip: str) -> tuple:
    dataset = root / "ref-vps"
    meta = json.loads((dataset / "meta_expressions.json").read_text())["videos"].get(clip)
    anno = dataset / "Annotations" / clip
    files = {p.name: p.read_bytes() for p in sorted(anno.iterdir())} if anno.is_dir() else None
    return json.dumps(meta, sort_keys=True), files


def _check_reader_view(root: Path, allowed_views: list[tuple]) -> None:
    """What `refvps eval` would see right now: a valid dataset; our clip, when listed, whole."""
    dataset = root / "ref-vps"
    assert RefVPS(dataset).validate() == []
    if CLIP in RefVPS(dataset).clip_ids():
        assert clip_view(root, CLIP) in allowed_views


def _trace(base, tmp_path, monkeypatch, scenario) -> list[str]:
    root, ws1, ws2 = base
    target = shutil.copytree(root / ("empty" if scenario == "new" else "v1"), tmp_path / "t")
    trace = tmp_path / "trace.txt"
    monkeypatch.setenv("REFVPS_FAULT_TRACE", str(trace))
    export_workspace(ws1 if scenario == "new" else ws2, target, replace=scenario == "replace")
    monkeypatch.delenv("REFVPS_FAULT_TRACE")
    shutil.rmtree(target)
    return trace.read_text().split()


@pytest.mark.parametrize("scenario", ["new", "replace"])
def test_an_exception_after_every_step_leaves_a_valid_dataset(base, tmp_path, monkeypatch,
                                                              scenario):
    root, ws1, ws2 = base
    before, after = ("empty", "v1") if scenario == "new" else ("v1", "v2")
    workspace = ws1 if scenario == "new" else ws2
    points = _trace(base, tmp_path, monkeypatch, scenario)
    assert "export.unlisted" in points if scenario == "replace" else "export.placed-1" in points
    assert len(points) >= 9
    old, new = snapshot(root / before), snapshot(root / after)
    views = [clip_view(root / before, CLIP), clip_view(root / after, CLIP)]
    for point in points:
        target = shutil.copytree(root / before, tmp_path / point)
        monkeypatch.setenv("REFVPS_FAULT", f"{point}:raise")
        with pytest.raises(InjectedFault):
            export_workspace(workspace, target, replace=True)
        monkeypatch.delenv("REFVPS_FAULT")
        _check_reader_view(target, views)
        with ProcessLock(target / "ref-vps" / WORK_DIR / "lock"):
            recover_dataset(target / "ref-vps")
        _check_reader_view(target, views)
        state = snapshot(target)
        assert state in (old, new), point
        if point in ("export.committed", "export.listed", "export.done"):
            assert state == new, point
        assert sorted(p.name for p in (target / "ref-vps" / WORK_DIR).iterdir()) == ["lock"]


@pytest.mark.parametrize("point", ["export.unlisted", "export.placed-1", "export.committed"])
def test_a_killed_export_process_leaves_a_valid_dataset(base, tmp_path, point):
    root, ws1, ws2 = base
    target = shutil.copytree(root / "v1", tmp_path / "data")
    run = subprocess.run([sys.executable, "-m", "refvps", "annotate", "export", str(ws2.root),
                          "--to", str(target), "--replace"],
                         env=dict(ENV, REFVPS_FAULT=f"{point}:kill"), capture_output=True,
                         text=True, timeout=120)
    assert run.returncode == -signal.SIGKILL, run.stderr
    views = [clip_view(root / "v1", CLIP), clip_view(root / "v2", CLIP)]
    _check_reader_view(target, views)
    export_workspace(ws1, target, clip_id="vps_other")  # first finishes the interrupted one
    state = snapshot(target)
    assert state["split"][-1] == "vps_other"
    for key in [k for k in state if "vps_other" in k]:
        del state[key]
    state["split"].remove("vps_other")
    state["meta_expressions.json"]["videos"].pop("vps_other")
    expected = [snapshot(root / "v1"), snapshot(root / "v2")]
    assert state in expected, point
    if point == "export.committed":
        assert state == expected[1]


@pytest.mark.parametrize("bad", ["../escape", "/tmp/abs", "a/b", "..", "a..b", ".hidden",
                                 "with space", "", "x" * 129, "naïve", "c:\\evil", "a\n"])
def test_clip_ids_are_confined(base, tmp_path, bad):
    root, ws1, _ = base
    target = shutil.copytree(root / "empty", tmp_path / "inside" / "data")
    before = snapshot(target)
    with pytest.raises(ValidationError, match="clip id"):
        export_workspace(ws1, target, clip_id=bad)
    assert snapshot(target) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["inside"]
    assert sorted(p.name for p in (tmp_path / "inside").iterdir()) == ["data"]


def test_a_workspace_with_an_unsafe_id_is_refused(base, tmp_path):
    root, ws1, _ = base
    ws_dir = shutil.copytree(ws1.root, tmp_path / "ws")
    info = json.loads((ws_dir / "workspace.json").read_text())
    info["clip_id"] = "../../outside"
    (ws_dir / "workspace.json").write_text(json.dumps(info))
    target = shutil.copytree(root / "empty", tmp_path / "a" / "b" / "data")
    run = subprocess.run([sys.executable, "-m", "refvps", "annotate", "export", str(ws_dir),
                          "--to", str(target)], env=ENV, capture_output=True, text=True,
                         timeout=120)
    assert run.returncode == 2 and "clip id '../../outside' is not allowed" in run.stderr
    assert "Traceback" not in run.stderr
    assert not (tmp_path / "a" / "outside").exists() and not (tmp_path / "outside").exists()


def test_an_existing_clip_is_replaced_only_when_asked(base, tmp_path):
    root, ws1, ws2 = base
    target = shutil.copytree(root / "v1", tmp_path / "data")
    with pytest.raises(ClipExistsError, match="--replace"):
        export_workspace(ws2, target)
    assert snapshot(target) == snapshot(root / "v1")
    export_workspace(ws2, target, replace=True)
    assert snapshot(target) == snapshot(root / "v2")


def test_split_entries_with_spaces_are_kept_whole(base, tmp_path):
    root, ws1, _ = base
    target = shutil.copytree(root / "empty", tmp_path / "data")
    dataset = target / "ref-vps"
    meta = json.loads((dataset / "meta_expressions.json").read_text())
    meta["videos"]["old clip 7"] = meta["videos"].pop("vps_0001")  # a hand-made dataset's id
    (dataset / "meta_expressions.json").write_text(json.dumps(meta))
    (dataset / "Annotations" / "vps_0001").rename(dataset / "Annotations" / "old clip 7")
    (dataset / "JPEGImages" / "vps_0001").rename(dataset / "JPEGImages" / "old clip 7")
    split = (dataset / "splits" / "test.txt").read_text().replace("vps_0001", "old clip 7")
    (dataset / "splits" / "test.txt").write_text(split)
    assert RefVPS(dataset).validate() == []
    export_workspace(ws1, target)
    clips = RefVPS(dataset).clip_ids()
    assert "old clip 7" in clips and "old" not in clips and clips[-1] == CLIP
    assert RefVPS(dataset).validate() == []


def test_concurrent_exports_into_one_dataset_all_land(base, tmp_path):
    root, ws1, _ = base
    target = shutil.copytree(root / "empty", tmp_path / "data")
    lock = ProcessLock(target / "ref-vps" / WORK_DIR / "lock").acquire()  # both must wait
    procs = [subprocess.Popen([sys.executable, "-m", "refvps", "annotate", "export",
                               str(ws1.root), "--to", str(target), "--clip-id", clip], env=ENV,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE)
             for clip in ("vps_a", "vps_b", "vps_c")]
    time.sleep(2)
    assert all(p.poll() is None for p in procs)  # waiting for the lock
    lock.release()
    for proc in procs:
        _, stderr = proc.communicate(timeout=120)
        assert proc.returncode == 0, stderr.decode()
    dataset = target / "ref-vps"
    assert RefVPS(dataset).validate() == []
    clips = RefVPS(dataset).clip_ids()
    assert sorted(clips[-3:]) == ["vps_a", "vps_b", "vps_c"]
    meta = json.loads((dataset / "meta_expressions.json").read_text())["videos"]
    assert {"vps_a", "vps_b", "vps_c"} <= set(meta) and len(meta) == 13
