"""--executor ray on a real local Ray instance gives the same bytes and numbers as local runs."""
from __future__ import annotations

import pandas as pd

from refvps.baselines.runner import predict
from refvps.evaluation import evaluate
from refvps.loaders import load_benchmark


def test_ray_predict_and_eval_match_local(small_root, tmp_path, ray_instance):
    bench = load_benchmark("ref-vps", small_root)
    args = {"flip": "0.03", "seed": "7"}
    local = predict("noisy-oracle", bench, tmp_path / "local", model_args=args, progress=False)
    remote = predict("noisy-oracle", bench, tmp_path / "ray", model_args=args, executor="ray",
                     workers=2, progress=False)
    assert len(remote.finished) == len(local.finished) == 12 and not remote.failures
    pngs = sorted(p.relative_to(tmp_path / "local") for p in (tmp_path / "local").glob("*/*/*.png"))
    assert len(pngs) == 12 * 37 or len(pngs) > 100
    for rel in pngs:
        assert (tmp_path / "ray" / rel).read_bytes() == (tmp_path / "local" / rel).read_bytes()
    by_process = evaluate(tmp_path / "local", bench, workers=1, progress=False)
    by_ray = evaluate(tmp_path / "local", bench, executor="ray", progress=False)
    assert by_ray.metrics == by_process.metrics
    pd.testing.assert_frame_equal(by_ray.frames, by_process.frames)
    assert by_ray.summary["options"]["executor"] == "ray"
