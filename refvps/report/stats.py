"""Bootstrap confidence intervals and paired tests over a benchmark's top-level units.

Every headline number is a ratio of cluster sums: with clusters c (Ref-VPS, MeViS, Ref-DAVIS:
videos; class-averaged benchmarks: classes) the metric is ``sum_c num_c / sum_c den_c`` where

* unit-weighted protocols: ``num_c`` = sum of the unit scores in c, ``den_c`` = their count
  (units without a value, e.g. TC of one-frame units, count in neither);
* class-averaged protocols: ``num_c`` = the class mean, ``den_c`` = 1.

Resampling clusters with replacement (a bootstrap replicate draws C clusters, weights ``w_c`` =
times drawn) gives ``sum w_c num_c / sum w_c den_c``; all units of a clip move together, so the
interval reflects the dependence between a clip's expressions. Intervals are percentile
intervals of ``n_boot`` replicates drawn from ``numpy.random.default_rng(seed)``.
See docs/reports.md.
"""
from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np
import pandas as pd

from refvps.errors import RefvpsError
from refvps.report.run import Run

DEFAULT_BOOT = 2000
DEFAULT_PERM = 10000
EXACT_PERMUTATION_MAX = 16  # clusters; 2**16 sign patterns are enumerated exactly
_TIE = 1e-12


@dataclass(frozen=True)
class ClusterSums:
    """Per-cluster numerators and denominators of one metric (see the module docstring)."""

    labels: np.ndarray
    num: np.ndarray
    den: np.ndarray

    @property
    def estimate(self) -> float:
        total = self.den.sum()
        return float(self.num.sum() / total) if total else float("nan")


def cluster_sums(units: pd.DataFrame, metric: str, cluster: str,
                 class_averaged: bool, weight: str | None = None) -> ClusterSums:
    """Cluster numerators/denominators of ``metric``; NaN unit values are left out.

    ``weight`` names a column of unit weights (Ref-DAVIS: a run-sequence weighs its number of
    objects, because the protocol averages over objects); by default every unit weighs 1.
    """
    valid = units[units[metric].notna()]
    w = valid[weight].to_numpy(np.float64) if weight else np.ones(len(valid))
    weighted = pd.DataFrame({cluster: valid[cluster].to_numpy(),
                             "num": valid[metric].to_numpy(np.float64) * w, "den": w})
    grouped = weighted.groupby(cluster, sort=True)
    labels = np.asarray(sorted(units[cluster].unique(), key=str), dtype=object)
    sums = grouped["num"].sum().reindex(labels, fill_value=0.0).to_numpy(np.float64)
    counts = grouped["den"].sum().reindex(labels, fill_value=0).to_numpy(np.float64)
    if class_averaged:
        has = counts > 0
        num = np.divide(sums, counts, out=np.zeros_like(sums), where=has)
        return ClusterSums(labels, num, has.astype(np.float64))
    return ClusterSums(labels, sums, counts)


def _draw_weights(n_clusters: int, n_boot: int, rng: np.random.Generator) -> np.ndarray:
    """(n_boot, C) counts of how often each cluster is drawn in each replicate."""
    draws = rng.integers(0, n_clusters, size=(n_boot, n_clusters))
    offsets = np.arange(n_boot)[:, None] * n_clusters
    return np.bincount((draws + offsets).ravel(), minlength=n_boot * n_clusters).reshape(
        n_boot, n_clusters).astype(np.float64)


def _replicates(weights: np.ndarray, num: np.ndarray, den: np.ndarray) -> np.ndarray:
    top, bottom = weights @ num, weights @ den
    return np.divide(top, bottom, out=np.full_like(top, np.nan), where=bottom > 0)


def percentile_interval(replicates: np.ndarray, level: float) -> tuple[float, float]:
    finite = replicates[np.isfinite(replicates)]
    if not finite.size:
        return float("nan"), float("nan")
    alpha = (1 - level) / 2
    low, high = np.quantile(finite, [alpha, 1 - alpha])
    return float(low), float(high)


def bootstrap_ci(units: pd.DataFrame, metrics: list[str], cluster: str, class_averaged: bool,
                 n_boot: int = DEFAULT_BOOT, seed: int = 0, level: float = 0.95,
                 weight: str | None = None) -> pd.DataFrame:
    """One row per metric: estimate, percentile CI, number of clusters, replicates."""
    rows = []
    weights = None
    for metric in metrics:
        sums = cluster_sums(units, metric, cluster, class_averaged, weight)
        if weights is None:  # the same replicates for every metric
            weights = _draw_weights(len(sums.labels), n_boot, np.random.default_rng(seed))
        low, high = percentile_interval(_replicates(weights, sums.num, sums.den), level)
        rows.append({"metric": metric, "estimate": sums.estimate, "ci_low": low, "ci_high": high,
                     "level": level, "resampled": cluster, "n_clusters": int((sums.den > 0).sum()),
                     "n_boot": n_boot, "seed": seed})
    return pd.DataFrame(rows)


def run_ci(run: Run, n_boot: int = DEFAULT_BOOT, seed: int = 0,
           level: float = 0.95) -> pd.DataFrame:
    """Bootstrap intervals of every headline metric of ``run``."""
    return bootstrap_ci(run.units, run.headline, run.cluster_key, run.class_key is not None,
                        n_boot=n_boot, seed=seed, level=level, weight=run.unit_weight)


def group_intervals(units: pd.DataFrame, key: str, cluster: str = "video",
                    n_boot: int = DEFAULT_BOOT, seed: int = 0, level: float = 0.95,
                    weight: str | None = None, metric: str = "J") -> pd.DataFrame:
    """Per value of ``key`` (a concept, a class): the mean ``metric`` of its units and a
    bootstrap interval resampling its ``cluster`` values (videos) with replacement.

    A list-valued key (concept groups) counts a unit in each of its groups. A group drawn from
    one cluster has a zero-width interval: nothing to resample.
    """
    if units[key].map(lambda v: isinstance(v, (list, tuple))).any():
        units = units.explode(key)
    rows = []
    for value, part in units.groupby(key, sort=True):
        ci = bootstrap_ci(part, [metric], cluster, False, n_boot=n_boot, seed=seed, level=level,
                          weight=weight).iloc[0]
        rows.append({key: value, metric: ci["estimate"], "ci_low": ci["ci_low"],
                     "ci_high": ci["ci_high"], "n_units": len(part),
                     f"n_{cluster}s": int(ci["n_clusters"])})
    return pd.DataFrame(rows)


# --- paired comparison ------------------------------------------------------------------------
def permutation_pvalue(diff_num: np.ndarray, den: np.ndarray, n_perm: int = DEFAULT_PERM,
                       seed: int = 0) -> tuple[float, str]:
    """Two-sided paired (sign-flip) permutation test of ``sum diff_num / sum den`` = 0.

    Swapping the two runs within a cluster flips the sign of its difference. Exact enumeration
    of all 2**C patterns up to EXACT_PERMUTATION_MAX clusters, else ``n_perm`` random patterns
    with the (1 + hits) / (1 + n_perm) estimate.
    """
    total = den.sum()
    if total == 0 or not len(diff_num):
        return float("nan"), "none"
    observed = abs(diff_num.sum() / total)
    if len(diff_num) <= EXACT_PERMUTATION_MAX:
        signs = np.array(list(itertools.product((1.0, -1.0), repeat=len(diff_num))))
        stats = np.abs(signs @ diff_num / total)
        return float(np.mean(stats >= observed - _TIE)), "exact"
    rng = np.random.default_rng(seed)
    hits = 0
    for start in range(0, n_perm, 2000):
        size = min(2000, n_perm - start)
        signs = rng.choice((1.0, -1.0), size=(size, len(diff_num)))
        hits += int(np.count_nonzero(np.abs(signs @ diff_num / total) >= observed - _TIE))
    return (1 + hits) / (1 + n_perm), f"monte-carlo ({n_perm})"


@dataclass
class Comparison:
    """Result of :func:`compare_runs`."""

    a: str
    b: str
    metrics: pd.DataFrame   # one row per metric: A, B, diff, CI of diff, p-value
    groups: pd.DataFrame    # per-concept / per-class J of A and B and their difference
    shared_units: int
    dropped_units: int


def compare_runs(run_a: Run, run_b: Run, metrics: list[str] | None = None,
                 n_boot: int = DEFAULT_BOOT, n_perm: int = DEFAULT_PERM, seed: int = 0,
                 level: float = 0.95) -> Comparison:
    """Paired bootstrap CI and permutation p-value of A - B on the units both runs scored."""
    fa, fb = run_a.summary.get("data_fingerprint"), run_b.summary.get("data_fingerprint")
    if fa != fb:
        raise RefvpsError(f"the runs were scored on different data (fingerprints "
                          f"{str(fa)[:12]} vs {str(fb)[:12]}); a paired comparison needs the same "
                          f"ground truth")
    for key in ("benchmark", "split"):
        if run_a.summary.get(key) != run_b.summary.get(key):
            raise RefvpsError(f"the runs differ in {key}: {run_a.summary.get(key)} vs "
                              f"{run_b.summary.get(key)}")
    metrics = metrics or [m for m in run_a.headline if m in run_b.units.columns]
    cluster, class_averaged = run_a.cluster_key, run_a.class_key is not None
    group_key = run_a.group_key
    weight = run_a.unit_weight
    keys = list(dict.fromkeys(["unit", cluster, group_key, *([weight] if weight else [])]))
    scores = list(dict.fromkeys(["J", *metrics]))
    shared = run_a.units[[*keys, *scores]].merge(run_b.units[["unit", *scores]], on="unit",
                                                 suffixes=("_a", "_b"))
    rows = []
    for metric in metrics:
        both = shared[shared[f"{metric}_a"].notna() & shared[f"{metric}_b"].notna()]
        sums_a, sums_b = (cluster_sums(both.rename(columns={f"{metric}_{side}": metric}), metric,
                                       cluster, class_averaged, weight) for side in "ab")
        diff = sums_a.num - sums_b.num
        weights = _draw_weights(len(diff), n_boot, np.random.default_rng(seed))
        low, high = percentile_interval(_replicates(weights, diff, sums_a.den), level)
        p_value, method = permutation_pvalue(diff, sums_a.den, n_perm, seed)
        rows.append({"metric": metric, "A": sums_a.estimate, "B": sums_b.estimate,
                     "diff": sums_a.estimate - sums_b.estimate, "ci_low": low, "ci_high": high,
                     "p_value": p_value, "test": f"paired sign-flip permutation, {method}",
                     "resampled": cluster, "n_clusters": int((sums_a.den > 0).sum())})
    groups = shared.explode(group_key) if shared[group_key].map(
        lambda v: isinstance(v, list)).any() else shared
    table = groups.groupby(group_key).agg(n_units=("unit", "size"), A=("J_a", "mean"),
                                          B=("J_b", "mean")).reset_index()
    table["diff"] = table["A"] - table["B"]
    table = table.sort_values("diff", kind="stable").reset_index(drop=True)
    dropped = len(run_a.units) + len(run_b.units) - 2 * len(shared)
    return Comparison(run_a.name, run_b.name, pd.DataFrame(rows), table, len(shared), dropped)
