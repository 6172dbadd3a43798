"""Shared fixtures for the records / leaderboard / report / stats tests: the sample benchmark
scored once per session, and hand-made run folders for class-averaged benchmarks."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from refvps.evaluation import evaluate
from refvps.sample import make_sample


@pytest.fixture(scope="session")
def sample(tmp_path_factory):
    return make_sample(tmp_path_factory.mktemp("sample"))


@pytest.fixture(scope="session")
def sample_runs(sample, tmp_path_factory):
    """Outputs folders of the perfect, shifted and empty predictors on the sample."""
    root = tmp_path_factory.mktemp("sample-runs")
    folders = {}
    for name in ("perfect", "shifted", "empty"):
        evaluate(sample.predictions[name], "ref-vps", sample.root, workers=1, progress=False,
                 out=root / name)
        folders[name] = root / name
    return folders


def write_class_run(folder: Path, unit_scores: dict[str, tuple[str, float]],
                    fingerprint: str = "f" * 64, name: str = "toy") -> Path:
    """A BURST/VSPW-style outputs folder: units (video/query) with a ``category`` class column.

    ``unit_scores``: unit -> (category, J); each unit gets two frames whose J average to J.
    """
    folder.mkdir(parents=True, exist_ok=True)
    frames, units = [], []
    for unit, (category, j) in unit_scores.items():
        video, query = unit.split("/")
        for t, value in enumerate((j, j)):
            frames.append({"unit": unit, "video": video, "query_id": query, "frame": f"{t:05d}",
                           "t": t, "J": value, "gt_area": 10, "pred_area": 10, "void_area": 0,
                           "pred_missing": False})
        units.append({"unit": unit, "video": video, "query_id": query, "text": f"the {category}",
                      "n_words": 2, "category": category, "J": j, "J_recall": float(j > 0.5),
                      "J_decay": 0.0, "TC": 0.0, "n_frames": 2, "empty_pred_rate": 0.0,
                      "missing_frames": 0})
    pd.DataFrame(frames).to_csv(folder / "frames.csv", index=False)
    table = pd.DataFrame(units)
    table.to_csv(folder / "tracks.csv", index=False)
    per_class = table.groupby("category")["J"].mean()
    summary = {"benchmark": "burst", "split": "val", "name": name, "unit_name": "track",
               "class_key": "category", "headline": ["J"], "data_fingerprint": fingerprint,
               "metrics": {"J": float(np.mean(per_class))}, "protocol": "class-averaged J",
               "created": "2025-01-01T00:00:00+00:00", "refvps_version": "0.1.0",
               "data_root": str(folder / "no-such-data"),
               "files": {"frames": "frames.csv", "units": "tracks.csv",
                         "summary": "summary.json"}}
    (folder / "summary.json").write_text(json.dumps(summary), encoding="utf-8")
    return folder
