"""The demo: the sample benchmark scored for every reference predictor."""
from __future__ import annotations

import shutil
from pathlib import Path

import pandas as pd

from refvps.datapaths import user_data_dir

DEMO_COLUMNS = ("J", "F", "J&F", "TC", "J_recall", "empty_pred_rate")


def default_demo_dir() -> Path:
    return user_data_dir() / "demo"


def run_demo(directory: Path | None = None, workers: int | None = None,
             progress: bool = True) -> pd.DataFrame:
    """(Re)generate the sample in ``directory`` and return one row of metrics per predictor."""
    from refvps.evaluation import evaluate
    from refvps.sample import PREDICTORS, make_sample

    directory = directory or default_demo_dir()
    if directory.exists():
        shutil.rmtree(directory / "ref-vps", ignore_errors=True)
        shutil.rmtree(directory / "predictions", ignore_errors=True)
    sample = make_sample(directory)
    rows = []
    for name in PREDICTORS:
        result = evaluate(sample.predictions[name], "ref-vps", sample.root, workers=workers,
                          progress=progress, out=directory / "results" / name)
        rows.append({"predictor": name, **{k: result.metrics[k] for k in DEMO_COLUMNS}})
    return pd.DataFrame(rows)
