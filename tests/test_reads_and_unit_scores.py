"""Bounded file reads (refvps.inputs.read_file) and per-unit statistics
(Benchmark.unit_scores), checked against hand-computed values."""
from __future__ import annotations

import os
import warnings

import numpy as np
import pandas as pd
import pytest

from refvps import inputs
from refvps.errors import InputFileError
from refvps.loaders.refvps import RefVPS


def test_read_file_reads_whole_files_up_to_the_limit(tmp_path):
    path = tmp_path / "mask.png"
    path.write_bytes(bytes(range(256)) * 4)
    assert inputs.read_file(path, limit=1024) == bytes(range(256)) * 4
    assert inputs.read_file(path, head=8) == bytes(range(8))
    with pytest.raises(InputFileError, match="larger than the 0 MiB"):
        inputs.read_file(path, limit=1023)


def test_read_file_reads_on_when_the_file_grew_after_its_size_was_taken(tmp_path, monkeypatch):
    """What ``fstat`` saw is where reading starts, not where it stops: a file that grew between
    the two is read whole, or refused past the limit, never cut at the old size."""
    path = tmp_path / "mask.png"
    path.write_bytes(b"x" * 100)
    real_fstat = os.fstat

    class Smaller:
        def __init__(self, info):
            self.st_mode, self.st_size = info.st_mode, 10

    monkeypatch.setattr(inputs.os, "fstat", lambda fd: Smaller(real_fstat(fd)))
    assert inputs.read_file(path, limit=200) == b"x" * 100
    assert inputs.read_file(path, limit=100) == b"x" * 100
    with pytest.raises(InputFileError, match="larger than"):
        inputs.read_file(path, limit=99)


def _bench() -> RefVPS:
    bench = RefVPS.__new__(RefVPS)
    bench.decay_mode = "davis2017"
    return bench


def test_unit_scores_hand_computed_from_shuffled_rows():
    rows = [  # unit "b" first and frames out of order: statistics follow unit, then t
        {"unit": "b", "t": 1, "J": 0.25, "F": 1.0, "pred_area": 0, "pred_missing": False},
        {"unit": "a", "t": 2, "J": 0.0, "F": 0.5, "pred_area": 0, "pred_missing": True},
        {"unit": "b", "t": 0, "J": 0.75, "F": 0.5, "pred_area": 3, "pred_missing": False},
        {"unit": "a", "t": 0, "J": 1.0, "F": 1.0, "pred_area": 9, "pred_missing": False},
        {"unit": "a", "t": 1, "J": 0.5, "F": 0.0, "pred_area": 4, "pred_missing": False},
    ]
    scores = _bench().unit_scores(pd.DataFrame(rows))
    assert list(scores["unit"]) == ["a", "b"]
    assert all(scores[c].dtype == np.float64 for c in scores.columns if c != "unit")
    a, b = (scores.set_index("unit").loc[u] for u in ("a", "b"))
    # a: J 1, .5, 0 in time order
    assert a["J"] == 0.5 and a["J_recall"] == 1 / 3 and a["TC"] == 0.5 and a["n_frames"] == 3
    assert a["J_decay"] == 0.75  # 3 frames: first bin frames 0-1 (0.75), last bin frame 2 (0)
    assert a["empty_pred_rate"] == 1 / 3 and a["missing_frames"] == 1
    assert a["F"] == 0.5 and a["F_recall"] == 1 / 3 and a["J&F"] == 0.5
    # b: J .75, .25 in time order
    assert b["J"] == 0.5 and b["J_recall"] == 0.5 and b["TC"] == 0.5 and b["J_decay"] == 0.5
    assert b["F"] == 0.75 and b["F_recall"] == 0.5 and b["F_decay"] == -0.5
    assert b["empty_pred_rate"] == 0.5 and b["missing_frames"] == 0


def test_unit_scores_names_the_unit_whose_official_decay_differs():
    rows = [{"unit": "long", "t": t, "J": float(t < 100), "F": 1.0, "pred_area": 1,
             "pred_missing": False} for t in range(300)]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        _bench().unit_scores(pd.DataFrame(rows))
    assert any("decay of long: 300 frames" in str(w.message) for w in caught), caught
