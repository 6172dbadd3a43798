import numpy as np
import pandas as pd
import pytest

from refvps.errors import RefvpsError
from refvps.report.run import load_run
from refvps.report.stats import (bootstrap_ci, cluster_sums, compare_runs, permutation_pvalue,
                                 run_ci)
from runs_fixtures import write_class_run


def _units(values: dict[str, list[float]]) -> pd.DataFrame:
    rows = [{"unit": f"{video}/{i}", "video": video, "J": v}
            for video, scores in values.items() for i, v in enumerate(scores)]
    return pd.DataFrame(rows)


def test_constant_scores_give_a_zero_width_interval():
    units = _units({f"v{i}": [0.7, 0.7] for i in range(6)})
    ci = bootstrap_ci(units, ["J"], "video", False, n_boot=500, seed=3).iloc[0]
    assert ci.estimate == pytest.approx(0.7)
    assert ci.ci_low == pytest.approx(0.7) and ci.ci_high == pytest.approx(0.7)


def test_clusters_are_resampled_whole():
    # clip a: three expressions scoring 1, clip b: one scoring 0. Unit-weighted estimate 3/4.
    # A replicate draws {a,a} -> 1, {a,b} -> 3/4, {b,b} -> 0 (probabilities 1/4, 1/2, 1/4); if
    # expressions were resampled independently, values like 1/2 or 1/4 would also occur.
    units = _units({"a": [1.0, 1.0, 1.0], "b": [0.0]})
    sums = cluster_sums(units, "J", "video", False)
    assert list(sums.num) == [3.0, 0.0] and list(sums.den) == [3.0, 1.0]
    ci = bootstrap_ci(units, ["J"], "video", False, n_boot=4000, seed=0).iloc[0]
    assert ci.estimate == pytest.approx(0.75)
    assert (ci.ci_low, ci.ci_high) == (pytest.approx(0.0), pytest.approx(1.0))
    ci90 = bootstrap_ci(units, ["J"], "video", False, n_boot=4000, seed=0, level=0.4).iloc[0]
    assert (ci90.ci_low, ci90.ci_high) == (pytest.approx(0.75), pytest.approx(0.75))


def test_class_averaged_estimate_and_nan_handling():
    units = pd.DataFrame({"unit": list("abcde"), "cls": ["x", "x", "y", "z", "z"],
                          "J": [0.2, 0.4, 1.0, 0.5, np.nan]})
    sums = cluster_sums(units, "J", "cls", True)
    assert sums.estimate == pytest.approx((0.3 + 1.0 + 0.5) / 3)
    assert list(sums.den) == [1.0, 1.0, 1.0]


def test_bootstrap_is_seeded():
    rng = np.random.default_rng(1)
    units = _units({f"v{i}": list(rng.random(3)) for i in range(12)})
    a = bootstrap_ci(units, ["J"], "video", False, n_boot=300, seed=5)
    b = bootstrap_ci(units, ["J"], "video", False, n_boot=300, seed=5)
    c = bootstrap_ci(units, ["J"], "video", False, n_boot=300, seed=6)
    pd.testing.assert_frame_equal(a, b)
    assert a.ci_low.iloc[0] != c.ci_low.iloc[0]
    assert a.ci_low.iloc[0] < a.estimate.iloc[0] < a.ci_high.iloc[0]


def test_exact_permutation_p_values():
    # three clusters all favouring A by 1: only "all +" and "all -" reach |mean| = 1 -> 2/8.
    assert permutation_pvalue(np.ones(3), np.ones(3)) == (0.25, "exact")
    # (1, 1, -1): every sign pattern has |sum| >= 1 -> p = 1.
    assert permutation_pvalue(np.array([1.0, 1.0, -1.0]), np.ones(3))[0] == 1.0
    # identical runs: p = 1
    assert permutation_pvalue(np.zeros(4), np.ones(4))[0] == 1.0


def test_monte_carlo_permutation_p_value():
    p, method = permutation_pvalue(np.ones(20), np.ones(20), n_perm=999, seed=0)
    assert method.startswith("monte-carlo")
    assert p == pytest.approx(1 / 1000)  # exact p = 2 / 2**20: no random pattern reaches it


def test_run_ci_matches_the_summary(sample_runs):
    run = load_run(sample_runs["shifted"])
    ci = run_ci(run, n_boot=200).set_index("metric")
    assert list(ci.index) == ["J", "F", "J&F", "TC"]
    for metric in ci.index:
        assert ci.loc[metric, "estimate"] == pytest.approx(run.summary["metrics"][metric])
        assert ci.loc[metric, "ci_low"] <= ci.loc[metric, "estimate"] <= ci.loc[metric, "ci_high"]
    assert (ci["resampled"] == "video").all() and (ci["n_clusters"] == 10).all()


def test_compare_sample_runs(sample_runs):
    perfect, shifted = load_run(sample_runs["perfect"]), load_run(sample_runs["shifted"])
    comparison = compare_runs(perfect, shifted, n_boot=300)
    row = comparison.metrics.set_index("metric").loc["J"]
    assert row["A"] == 1.0
    assert row["diff"] == pytest.approx(1.0 - shifted.summary["metrics"]["J"])
    assert 0 < row["ci_low"] <= row["diff"] <= row["ci_high"]
    assert row["p_value"] == pytest.approx(2 / 2 ** 10)  # 10 clips, every one favours A
    assert comparison.shared_units == 40 and comparison.dropped_units == 0
    groups = comparison.groups
    assert len(groups) == 10 and list(groups.columns) == ["concept", "n_units", "A", "B", "diff"]
    assert groups["diff"].is_monotonic_increasing
    same = compare_runs(shifted, shifted, n_boot=100).metrics.set_index("metric").loc["J"]
    assert same["diff"] == 0 and same["p_value"] == 1.0


def test_compare_refuses_different_data(tmp_path):
    a = load_run(write_class_run(tmp_path / "a", {"v1/0": ("cat", 0.5)}, fingerprint="1" * 64))
    b = load_run(write_class_run(tmp_path / "b", {"v1/0": ("cat", 0.4)}, fingerprint="2" * 64))
    with pytest.raises(RefvpsError, match="different data"):
        compare_runs(a, b)


def test_compare_class_averaged(tmp_path):
    a = load_run(write_class_run(tmp_path / "a", {"v1/0": ("cat", 1.0), "v2/0": ("cat", 0.0),
                                                  "v3/0": ("dog", 0.6), "v4/0": ("eel", 0.9)}))
    b = load_run(write_class_run(tmp_path / "b", {"v1/0": ("cat", 0.5), "v2/0": ("cat", 0.5),
                                                  "v3/0": ("dog", 0.2), "v4/0": ("eel", 0.8),
                                                  "v5/0": ("eel", 0.1)}))
    comparison = compare_runs(a, b, n_boot=200)
    row = comparison.metrics.set_index("metric").loc["J"]
    # classes on shared units: cat 0.5 vs 0.5, dog 0.6 vs 0.2, eel 0.9 vs 0.8
    assert row["A"] == pytest.approx((0.5 + 0.6 + 0.9) / 3)
    assert row["B"] == pytest.approx((0.5 + 0.2 + 0.8) / 3)
    assert row["resampled"] == "category" and row["n_clusters"] == 3
    # per-class differences (0, 0.4, 0.1): sign patterns with |sum| >= 0.5 are the 4 that keep
    # the signs of 0.4 and 0.1 equal -> p = 4 / 8
    assert row["p_value"] == pytest.approx(0.5)
    assert comparison.dropped_units == 1
    assert list(comparison.groups["category"]) == ["cat", "eel", "dog"]


def test_unit_weights_make_the_estimate_an_object_mean():
    # Ref-DAVIS-style units: a run-sequence with 2 objects (mean J 0.5) and one with 1 object
    # (J 1.0); the protocol's object mean is (2 * 0.5 + 1 * 1.0) / 3 = 2/3, not (0.5 + 1) / 2.
    units = pd.DataFrame({"unit": ["s/anno_0", "t/anno_0"], "video": ["s", "t"],
                          "n_objects": [2, 1], "J": [0.5, 1.0]})
    sums = cluster_sums(units, "J", "video", False, weight="n_objects")
    assert list(sums.num) == [1.0, 1.0] and list(sums.den) == [2.0, 1.0]
    assert sums.estimate == pytest.approx(2 / 3)
    assert cluster_sums(units, "J", "video", False).estimate == pytest.approx(0.75)
