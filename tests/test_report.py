import math
from html.parser import HTMLParser
from xml.etree import ElementTree

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner
from PIL import Image

from refvps.cli import main
from refvps.report.analysis import length_table, measure_table, time_curve
from refvps.report.build import build_report
from refvps.report.dynamics import pair_dynamics, sequence_dynamics
from refvps.report.run import load_run
from runs_fixtures import write_class_run


def _square(size, top, left, side):
    mask = np.zeros(size, bool)
    mask[top:top + side, left:left + side] = True
    return mask


def test_translation_is_motion_not_shape_change():
    first, second = _square((60, 80), 10, 10, 8), _square((60, 80), 16, 18, 8)
    motion, shape = pair_dynamics(first, second)
    assert motion == pytest.approx(10 / 100)  # (6, 8) px over a 60x80 frame (diagonal 100)
    assert shape == 0.0


def test_growth_is_shape_change_not_motion():
    first, second = _square((60, 80), 20, 20, 10), _square((60, 80), 15, 15, 20)
    motion, shape = pair_dynamics(first, second)
    assert motion == pytest.approx(0.0)
    assert shape == pytest.approx(1 - 100 / 400)


def test_translation_off_frame_counts_in_the_union():
    first, second = _square((20, 20), 0, 10, 10), _square((20, 20), 0, 0, 4)
    # centroids (4.5, 14.5) -> (1.5, 1.5): the translated 10x10 square covers rows -3..6,
    # cols -3..6 and contains the 4x4 square (16 px); its 51 off-frame pixels stay in the union
    motion, shape = pair_dynamics(first, second)
    assert motion == pytest.approx(math.hypot(3, 13) / math.hypot(20, 20))
    assert shape == pytest.approx(1 - 16 / 100)


def test_sequence_dynamics_skips_empty_frames():
    empty = np.zeros((60, 80), bool)
    masks = [empty, _square((60, 80), 10, 10, 8), _square((60, 80), 16, 18, 8), empty]
    value = sequence_dynamics(masks)
    assert value == {"motion": pytest.approx(0.1), "shape_change": 0.0, "n_pairs": 1,
                     "appear_disappear": 2}
    assert math.isnan(sequence_dynamics([empty, empty])["motion"])


def test_time_curve_by_hand():
    frames = pd.DataFrame({"unit": ["a"] * 3 + ["b"] * 2, "t": [0, 1, 2, 0, 1],
                           "J": [0.0, 0.5, 1.0, 0.2, 0.4]})
    table = time_curve(frames, bins=2)
    # a: tau 0, .5, 1 -> bin 0 {0}, bin 1 {.5, 1}; b: tau 0, 1 -> bin 0 {.2}, bin 1 {.4}
    assert list(table["J"]) == pytest.approx([0.1, (0.75 + 0.4) / 2])
    assert list(table["n_units"]) == [2, 2]


def test_length_and_measure_tables():
    units = pd.DataFrame({"n_words": [2, 3, 5, 12, 20, 4], "J": [1.0, 0.5, 0.2, 0.4, 0.1, 0.6],
                          "motion": [0.1, 0.2, 0.3, 0.4, 0.5, np.nan]})
    words = length_table(units).set_index("words")
    assert words.loc["1-3", "J"] == pytest.approx(0.75) and words.loc["4-6", "n_units"] == 2
    assert words.loc["7-10", "n_units"] == 0 and words.loc["16+", "J"] == pytest.approx(0.1)
    bins = measure_table(units, "motion")
    assert list(bins["bin"]) == ["low", "medium", "high", "n/a"]
    assert list(bins["n_units"]) == [2, 1, 2, 1]
    assert list(bins["J"]) == pytest.approx([0.75, 0.2, 0.25, 0.6])


class _Page(HTMLParser):
    def __init__(self):
        super().__init__()
        self.images, self.tables, self.headings, self.external = [], 0, [], []
        self._in_h2 = False

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "img":
            self.images.append(attrs.get("src", ""))
        if tag == "table":
            self.tables += 1
        if tag in ("link", "script") or (tag == "img" and not attrs["src"].startswith("data:")):
            self.external.append(tag)
        self._in_h2 = tag == "h2"

    def handle_data(self, data):
        if self._in_h2:
            self.headings.append(data)
            self._in_h2 = False


def _check_png(path):
    assert path.stat().st_size > 5000
    image = np.asarray(Image.open(path).convert("RGB"))
    assert image.shape[0] >= 200 and image.shape[1] >= 400
    assert image.std() > 10 and len(np.unique(image.reshape(-1, 3), axis=0)) > 20  # not blank


def test_report_on_the_sample(sample, sample_runs, tmp_path):
    run = load_run(sample_runs["shifted"])
    report = build_report(run, tmp_path / "report", n_boot=200, progress=False)
    assert report.warnings == []
    assert set(report.figures) == {"per_concept_groups", "per_concept", "coverage", "time",
                                   "expression_length", "motion", "shape_change", "histogram"}
    for figure in report.figures.values():
        _check_png(figure)
    groups = report.tables["per_concept_groups"]
    assert len(groups) == 5 and groups["n_units"].sum() > len(run.units)  # overlapping groups
    concepts = report.tables["per_concept"].set_index("concept")
    expected = run.units.groupby("concept")["J"].mean()
    assert concepts["J"].to_dict() == pytest.approx(expected.to_dict())
    dynamics = pd.read_csv(tmp_path / "report" / "unit_dynamics.csv")
    assert len(dynamics) == 40 and dynamics["motion"].notna().sum() >= 36
    assert (dynamics["shape_change"].dropna().between(0, 1)).all()
    assert report.tables["motion"]["n_units"].sum() == 40
    for key in ("per_concept", "per_concept_groups"):
        table = report.tables[key]
        assert ((table["ci_low"] <= table["J"] + 1e-12) & (table["J"] <= table["ci_high"] + 1e-12)
                ).all()
    # concept groups span several clips: their intervals have width; a concept is one clip here
    assert (report.tables["per_concept_groups"].eval("ci_high - ci_low") > 0.01).all()
    gallery = report.tables["gallery"]
    worst = run.units.sort_values(["J", "unit"]).head(8)
    assert list(gallery["unit"]) == list(worst["unit"])
    for row in gallery.itertuples():
        frames = run.frames[run.frames["unit"] == row.unit]
        assert row.frame_J == frames["J"].min() and row.frame in set(frames["frame"])
    strips = sorted((tmp_path / "report" / "gallery").glob("*.png"))
    assert len(strips) == 8 and Image.open(strips[0]).size[0] == 3 * 200 + 2 * 4
    svg = {name: ElementTree.parse(path.with_suffix(".svg")).getroot()
           for name, path in report.figures.items()}
    assert all(root.tag.endswith("svg") for root in svg.values())
    texts = {name: " ".join(t.strip() for t in root.itertext()) for name, root in svg.items()}
    assert "concepts" in texts["per_concept"] and "concept groups" in texts["per_concept_groups"]
    assert "concepts, sorted by J" in texts["coverage"] and "expressions" in texts["histogram"]
    page = _Page()
    page.feed(report.page.read_text())
    assert len(page.images) == len(report.figures) + len(gallery)
    assert all(src.startswith("data:image/png;base64,") for src in page.images)
    assert page.external == []
    assert page.tables >= 8
    assert "J per concept group" in page.headings and "Failure modes: GT shape change" in \
        page.headings


def test_report_class_averaged_run(tmp_path):
    scores = {"v1/0": ("cat", 0.9), "v2/0": ("cat", 0.7), "v3/0": ("dog", 0.2),
              "v4/0": ("eel", 0.5), "v5/1": ("eel", 0.3)}
    run = load_run(write_class_run(tmp_path / "run", scores))
    report = build_report(run, tmp_path / "report", n_boot=100, progress=False)
    coverage = report.tables["coverage"]
    assert list(coverage["category"]) == ["cat", "eel", "dog"]
    assert list(coverage["J"]) == pytest.approx([0.8, 0.4, 0.2])
    assert list(coverage["rank_fraction"]) == pytest.approx([1 / 3, 2 / 3, 1])
    ci = report.tables["headline_ci"].iloc[0]
    assert ci.estimate == pytest.approx(run.summary["metrics"]["J"])
    assert ci.resampled == "category" and ci.n_clusters == 3
    assert "per_category" in report.tables and "motion" not in report.tables
    assert any("GT motion / shape change skipped" in w for w in report.warnings)
    _check_png(report.figures["coverage"])


def test_report_cli(sample_runs, tmp_path):
    result = CliRunner().invoke(main, ["report", str(sample_runs["perfect"]), "--out",
                                       str(tmp_path / "r"), "--boot", "100", "--no-dynamics"])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "r" / "report.html").is_file()
    assert "J      1.0000  95% CI [1.0000, 1.0000]" in result.stdout
