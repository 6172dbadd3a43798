"""refvps benchmarks: every registered benchmark, its splits, protocol and query counts."""
from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from _mevis_data import build_mevis
from _ytvos_data import build_ytvos
from refvps.cli import main
from refvps.loaders import BENCHMARKS, benchmark_class


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    base = tmp_path_factory.mktemp("catalog")
    build_mevis(base)
    build_ytvos(base)
    return base


def invoke(*args):
    result = CliRunner().invoke(main, ["benchmarks", *args])
    assert result.exit_code == 0, result.output
    return result.output


def test_lists_every_registered_benchmark_without_data():
    text = invoke()
    for name in BENCHMARKS:
        cls = benchmark_class(name)
        assert f"{name}  {cls.title}" in text
        assert cls.protocol in text
        for split in cls.splits:
            assert f"  - {split}" in text
    assert "  - valid: refvps submit (server)" in text
    assert "  - valid_u (default): refvps eval\n" in text  # no counts without data
    assert "--missing: strict, official" in text


def test_counts_per_split_with_a_data_root(root):
    records = {r["benchmark"]: r for r in json.loads(invoke("--data", str(root), "--json"))}
    assert list(records) == list(BENCHMARKS)

    def counts(name):
        return {s["split"]: (s["status"], s["videos"], s["queries"])
                for s in records[name]["splits"]}

    assert counts("mevis") == {"train": ("ok", 2, 2), "valid_u": ("ok", 2, 6),
                               "valid": ("ok", 1, 2)}
    assert counts("ref-ytvos") == {"train": ("ok", 2, 4), "valid": ("ok", 1, 2),
                                   "test": ("ok", 1, 1)}
    assert records["ref-vps"]["root"] is None
    assert {s["status"] for s in records["ref-vps"]["splits"]} == {"no data"}
    assert records["mevis"]["submit"] and not records["ref-vps"]["submit"]
    text = invoke("--data", str(root))
    assert "  - valid_u (default): refvps eval, 2 videos, 6 expressions" in text
    assert "  - test: refvps submit (server), 1 videos, 1 expressions" in text


def test_malformed_and_absent_splits(root, tmp_path):
    (tmp_path / "mevis" / "train").mkdir(parents=True)
    (tmp_path / "mevis" / "train" / "meta_expressions.json").write_text("[]")
    rows = invoke("--data", str(tmp_path), "--csv").splitlines()
    assert rows[0] == "benchmark,split,default,scoring,videos,queries,status"
    mevis = {r.split(",")[1]: r for r in rows if r.startswith("mevis,")}
    assert mevis["train"].endswith('expected a JSON object at the top, got a list"')
    assert mevis["valid_u"].endswith(",0,0,no data")
