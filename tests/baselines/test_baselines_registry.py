"""The registry: built-in names, pyproject entry points, third-party plugins, lazy imports."""
from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from refvps.baselines import create, registered, segmenter_class
from refvps.baselines.registry import BUILTIN, GROUP
from refvps.cli import main

REPO = Path(__file__).resolve().parents[2]


def test_pyproject_declares_every_builtin_segmenter():
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    assert project["entry-points"][GROUP] == BUILTIN


def test_every_registered_model_imports_without_torch():
    code = ("import sys\nfrom refvps.baselines.registry import BUILTIN, segmenter_class\n"
            "[segmenter_class(n) for n in BUILTIN]\n"
            "heavy = {'torch', 'detectron2', 'diffusers', 'ray', 'transformers', 'sam2'}\n"
            "print(sorted(heavy & set(sys.modules)))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         cwd=REPO, check=True)
    assert out.stdout.strip() == "[]"


def test_third_party_entry_point_and_module_class(tmp_path, monkeypatch):
    (tmp_path / "acme_seg.py").write_text(
        "import numpy as np\nfrom refvps.baselines.base import BaseSegmenter\n"
        "class Half(BaseSegmenter):\n    '''Left half.'''\n"
        "    def segment(self, frames, expression):\n"
        "        m = np.zeros((len(frames),) + frames[0].shape[:2], bool)\n"
        "        m[:, :, : frames[0].shape[1] // 2] = True\n        return m\n")
    dist = tmp_path / "acme_seg-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: acme-seg\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text(f"[{GROUP}]\nacme-half = acme_seg:Half\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    assert registered()["acme-half"].origin == "acme-seg"
    frames = [np.zeros((2, 4, 3), np.uint8)]
    assert create("acme-half").predict(frames, "x").tolist() == [[[True, True, False, False]] * 2]
    assert segmenter_class("acme_seg:Half") is segmenter_class("acme-half")
    listing = CliRunner().invoke(main, ["models"])
    assert "acme-half" in listing.output and "Left half." in listing.output
    for name in BUILTIN:
        assert name in listing.output


def test_conflicting_names_and_unknown_models_are_errors(tmp_path, monkeypatch):
    dist = tmp_path / "evil-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: evil\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text(f"[{GROUP}]\noracle = evil:Oracle\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(RuntimeError, match="declared twice"):
        registered()
    monkeypatch.undo()
    with pytest.raises(ValueError, match="unknown model 'nope'"):
        create("nope")


def test_protocol_checks_outputs():
    from refvps.baselines import Segmenter, check_masks

    model = create("empty")
    assert isinstance(model, Segmenter)
    with pytest.raises(ValueError, match="expected \\(2, 3, 4\\)"):
        check_masks(np.zeros((2, 3, 5), bool), 2, (3, 4), "m")
    with pytest.raises(ValueError, match="one size"):
        model.predict([np.zeros((3, 4, 3), np.uint8), np.zeros((3, 5, 3), np.uint8)], "x")
    assert check_masks(np.full((1, 2, 2), 255, np.uint8), 1, (2, 2), "m").all()
