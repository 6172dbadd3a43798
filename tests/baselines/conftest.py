"""Fixtures of the model-wrapper tests: the sample benchmark, stand-in models, one Ray instance."""
from __future__ import annotations

import os
import shutil
import sys
import textwrap
from pathlib import Path

import pytest

from refvps.sample import make_sample

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def sample_root(tmp_path_factory) -> Path:
    """The sample Ref-VPS benchmark (no predictions), shared read-only by the tests."""
    root = tmp_path_factory.mktemp("sample")
    make_sample(root, predictions=False)
    return root


@pytest.fixture(scope="session")
def small_root(sample_root, tmp_path_factory) -> Path:
    """The sample restricted to its first three clips (a split file), for quicker runs."""
    root = tmp_path_factory.mktemp("small")
    shutil.copytree(sample_root / "ref-vps", root / "ref-vps")
    split = root / "ref-vps" / "splits" / "test.txt"
    split.write_text("".join(split.read_text().splitlines(keepends=True)[:3]))
    return root


STANDINS = textwrap.dedent('''
    """Stand-in segmenters for runner and worker tests (written by the tests)."""
    import json
    import os
    from dataclasses import dataclass

    import numpy as np

    from refvps.baselines.base import BaseSegmenter


    def _log(path, record):
        if path:
            with open(path, "a") as handle:
                handle.write(json.dumps(record) + "\\n")


    @dataclass
    class OOMConfig:
        clip_len: int = 32
        limit: int = 10          # clips longer than this "run out of memory"
        log: str = ""


    class OOMAbove(BaseSegmenter):
        """Raises a CUDA-like out-of-memory error for clips longer than ``limit``."""

        Config = OOMConfig

        def segment(self, frames, expression):
            n = min(self.clip_len, len(frames))
            _log(self.config.log, {"pid": os.getpid(), "clip_len": n, "frames": len(frames)})
            if n > self.config.limit:
                raise RuntimeError("CUDA out of memory. Tried to allocate 2.00 GiB")
            return np.zeros((len(frames), *frames[0].shape[:2]), bool)


    @dataclass
    class CrashConfig:
        video: str = ""          # frames whose path contains this ...
        mode: str = "always"     # ... kill the process ("always") or only the first time ("once")
        flag: str = ""           # file marking that the "once" crash happened
        log: str = ""
        fail_video: str = ""     # raise an ordinary exception on this video


    class Crasher(BaseSegmenter):
        """Centre half box; kills its own process on ``video`` (a worker or CLI crash)."""

        Config = CrashConfig

        def load(self):
            _log(self.config.log, {"event": "load", "pid": os.getpid()})

        def predict_video(self, video, expressions):
            cfg = self.config
            where = video.frame_paths[0]
            if cfg.fail_video and cfg.fail_video in where:
                raise ValueError("stand-in failure on " + cfg.fail_video)
            if cfg.video and cfg.video in where:
                if cfg.mode == "always" or not os.path.exists(cfg.flag):
                    if cfg.flag:
                        open(cfg.flag, "w").close()
                    os._exit(3)
            _log(cfg.log, {"event": "predict", "pid": os.getpid(), "video": video.video_id})
            frames = list(video.frames)
            h, w = frames[0].shape[:2]
            mask = np.zeros((h, w), bool)
            mask[h // 4: 3 * h // 4, w // 4: 3 * w // 4] = True
            return [np.repeat(mask[None], len(frames), 0) for _ in expressions]


    @dataclass
    class LoadConfig:
        log: str = ""
        repo: str = ""           # an upstream checkout (its commit goes to run.json)
        checkpoint: str = ""     # a file (its sha256 goes to run.json)
        fail: bool = False       # load() raises, as a model with a missing checkpoint does


    class Loads(BaseSegmenter):
        """Logs each load; empty masks. ``fail=true``: every load raises."""

        Config = LoadConfig
        version = "7"
        upstream = "acme/model@0123abc"

        def load(self):
            _log(self.config.log, {"event": "load", "pid": os.getpid()})
            if self.config.fail:
                raise FileNotFoundError("stand-in checkpoint /nowhere/ckpt.pth not found")

        def segment(self, frames, expression):
            return np.zeros((len(frames), *frames[0].shape[:2]), bool)
''')


@pytest.fixture
def standins(tmp_path, monkeypatch) -> Path:
    """A module ``refvps_standins`` importable here and in child processes (PYTHONPATH)."""
    folder = tmp_path / "standins"
    folder.mkdir()
    (folder / "refvps_standins.py").write_text(STANDINS)
    monkeypatch.syspath_prepend(str(folder))
    paths = [str(folder), str(REPO)] + os.environ.get("PYTHONPATH", "").split(os.pathsep)
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(p for p in paths if p))
    sys.modules.pop("refvps_standins", None)
    return folder


@pytest.fixture(scope="session")
def ray_instance():
    """One local Ray instance (2 CPUs) for the whole test session."""
    ray = pytest.importorskip("ray", reason="Ray is not installed (pip install 'refvps[ray]'); "
                                            "CI installs it")
    paths = [str(REPO)] + os.environ.get("PYTHONPATH", "").split(os.pathsep)
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False,
             runtime_env={"env_vars": {"PYTHONPATH": os.pathsep.join(p for p in paths if p)}})
    yield ray
    ray.shutdown()
