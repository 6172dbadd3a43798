"""``refvps report``: tables, PNG figures and one self-contained HTML page for a run."""
from __future__ import annotations

import html
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from refvps.errors import RefvpsError
from refvps.evaluation import plural
from refvps.report import analysis, plots
from refvps.report.gallery import PANELS, render_gallery
from refvps.report.html import image_tag, note, render_page, table_html
from refvps.report.run import Run
from refvps.report.stats import DEFAULT_BOOT, group_intervals, run_ci
from refvps.units import factor, is_score, scale_table, unit_label

REPORT_PAGE = "report.html"
SCORE_COLUMNS = ("estimate", "ci_low", "ci_high", "frame_J")
"""Columns holding scores whose names are not metric names."""


@dataclass
class Report:
    out: Path
    page: Path
    tables: dict[str, pd.DataFrame] = field(default_factory=dict)
    figures: dict[str, Path] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)


def unit_dynamics(run: Run, data: str | Path | None = None, progress: bool = True) -> pd.DataFrame:
    """Per-unit GT motion and shape change, from the dataset the run was scored on."""
    from refvps.loaders import load_benchmark
    from refvps.report.dynamics import gt_dynamics

    summary = run.summary
    bench = load_benchmark(summary["benchmark"], data or summary.get("data_root"),
                           summary.get("split"))
    return gt_dynamics(bench, progress=progress)


def build_report(run: Run, out: str | Path, *, data: str | Path | None = None,
                 dynamics: bool = True, gallery: bool = True, n_boot: int = DEFAULT_BOOT,
                 seed: int = 0, progress: bool = True, percent: bool = False) -> Report:
    """Write every table (CSV, fractions), figure (PNG + SVG) and ``report.html`` for ``run``
    into ``out``; the page and figures show scores in percent when ``percent``."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    report = Report(out, out / REPORT_PAGE)
    units, s = run.units.copy(), run.summary
    unit_name = s.get("unit_name", "unit")
    units_noun = plural(unit_name)
    scale = factor(percent)
    shown = lambda table: table_html(_display(table, percent), 2 if percent else 4)  # noqa: E731
    sections: list[tuple[str, list[str]]] = []

    ci = run_ci(run, n_boot=n_boot, seed=seed)
    report.tables["headline_ci"] = ci
    sections.append(("Headline metrics with 95% bootstrap intervals", [
        shown(ci[["metric", "estimate", "ci_low", "ci_high", "resampled", "n_clusters"]]),
        note(f"{n_boot} replicates resampling {run.cluster_key} clusters with replacement "
             f"(seed {seed}); percentile intervals.")]))

    for key in ("concept_groups", "concept", run.class_key):
        if not (key and key in units.columns and units[key].map(_present).any()):
            continue
        present = units[units[key].map(_present)]
        table = analysis.group_table(present, key)
        cis = group_intervals(present, key, "video", n_boot=n_boot, seed=seed,
                              weight=run.unit_weight)
        table = table.merge(cis[[key, "ci_low", "ci_high"]], on=key, how="left")
        noun, one = group_noun(key), group_name(key)
        heading = f"J per {one}"
        name = "per_" + key
        report.tables[name] = table
        figure = plots.bar_chart(table[key].astype(str).tolist(), table["J"].tolist(),
                                 out / f"{name}.png", heading, group_noun=noun,
                                 counts=table["n_units"].tolist(), low=table["ci_low"].tolist(),
                                 high=table["ci_high"].tolist(), scale=scale)
        report.figures[name] = figure
        sections.append((heading, [image_tag(figure, heading), shown(table), note(
            f"Error bars: 95% bootstrap intervals of each {one}'s mean J, resampling "
            f"its videos with replacement ({n_boot} replicates, seed {seed}); zero width when "
            f"all of its {units_noun} come from one video.")]))

    coverage_key = run.class_key or ("concept" if "concept" in units.columns
                                     and units["concept"].notna().any() else None)
    if coverage_key:
        noun = group_noun(coverage_key)
        table = analysis.coverage_curve(units, coverage_key)
        report.tables["coverage"] = table
        heading = f"Coverage: per-{coverage_key} J, sorted"
        report.figures["coverage"] = plots.coverage_plot(table, out / "coverage.png", heading,
                                                         group_noun=noun, scale=scale)
        sections.append((heading, [image_tag(report.figures["coverage"], heading),
                                   note(f"REM Figure D style: each point is one "
                                        f"{coverage_key}'s mean J; a flatter, higher curve "
                                        f"covers more {noun}.")]))

    table = analysis.time_curve(run.frames)
    report.tables["time"] = table
    report.figures["time"] = plots.time_plot(table, out / "time.png", "J over normalised time",
                                             scale=scale)
    sections.append(("J over normalised time", [image_tag(report.figures["time"], "time"),
                                                shown(table)]))

    if "n_words" in units.columns:
        table = analysis.length_table(units)
        report.tables["expression_length"] = table
        report.figures["expression_length"] = plots.binned_plot(
            table, "words", out / "expression_length.png", "J by expression length",
            "words per expression", unit_noun=units_noun, scale=scale)
        sections.append(("Failure modes: expression length", [
            image_tag(report.figures["expression_length"], "length"), shown(table)]))

    if dynamics:
        try:
            values = unit_dynamics(run, data, progress)
        except (RefvpsError, ValueError, OSError) as exc:
            report.warnings.append(f"GT motion / shape change skipped: {exc}")
        else:
            values.to_csv(out / "unit_dynamics.csv", index=False)
            units = units.merge(values, on="unit", how="left")
            for column, heading in (("motion", "Failure modes: GT motion"),
                                    ("shape_change", "Failure modes: GT shape change")):
                table = analysis.measure_table(units, column)
                report.tables[column] = table
                report.figures[column] = plots.binned_plot(
                    table, "bin", out / f"{column}.png", heading,
                    f"{column.replace('_', ' ')} tertile of the {units_noun}",
                    unit_noun=units_noun, scale=scale)
                sections.append((heading, [image_tag(report.figures[column], column),
                                           shown(table),
                                           note("Tertiles over this dataset's units; "
                                                "definitions in docs/reports.md.")]))

    if gallery:
        try:
            table = render_gallery(run, out, data)
        except (RefvpsError, ValueError, OSError, KeyError) as exc:
            report.warnings.append(f"gallery of the worst {units_noun} skipped: {exc}")
        else:
            report.tables["gallery"] = table.drop(columns="image")
            sections.append((f"Worst {units_noun}", [gallery_html(table, percent), note(
                f"The {len(table)} {units_noun} with the lowest J, each at its lowest-J frame: "
                "GT (pink) with Ignore (yellow) | prediction (cyan) | both.")]))

    report.figures["histogram"] = plots.histogram(
        units["J"].to_numpy(), out / "histogram.png", f"J per {unit_name}",
        unit_name=unit_name, unit_noun=units_noun, scale=scale)
    sections.append(("Distribution of J", [image_tag(report.figures["histogram"], "histogram")]))
    if report.warnings:
        sections.append(("Warnings", [note(w) for w in report.warnings]))

    for name, table in report.tables.items():
        table.to_csv(out / f"{name}.csv", index=False)
    header = [f"benchmark {s.get('benchmark')} (split {s.get('split')}), "
              f"{len(units)} {units_noun}, {len(run.frames)} frames",
              f"protocol: {s.get('protocol', '')}",
              f"refvps {s.get('refvps_version', '?')}, data fingerprint "
              f"{str(s.get('data_fingerprint', ''))[:16]}, created {s.get('created', '')}",
              f"scores in {unit_label(percent)}; every figure also as SVG beside its PNG "
              f"(e.g. histogram.svg); CSV tables in fractions"]
    page = render_page(f"refvps report: {run.name}", header, sections)
    report.page.write_text(page, encoding="utf-8")
    return report


def group_name(key: str) -> str:
    """One group of a breakdown key: "concept", "concept group", "class"."""
    return key.replace("_", " ").removesuffix("s") if key.endswith("_groups") else \
        key.replace("_", " ")


def group_noun(key: str) -> str:
    """How a breakdown key's groups are called on axes: "concepts", "concept groups",
    "classes"."""
    one = group_name(key)
    return one + "es" if one.endswith("s") else plural(one)


def gallery_html(table: pd.DataFrame, percent: bool) -> str:
    """The gallery as an HTML table: unit, expression, J, frame and the thumbnail strip."""
    digits = 2 if percent else 4
    rows = ["<table><tr><th>unit</th><th>expression</th><th>J</th><th>frame (its J)</th>"
            f"<th>{' | '.join(PANELS)}</th></tr>"]
    for row in table.itertuples():
        rows.append(
            f"<tr><td>{html.escape(str(row.unit))}</td><td>{html.escape(str(row.text))}</td>"
            f"<td>{row.J * factor(percent):.{digits}f}</td><td>{html.escape(row.frame)} "
            f"({row.frame_J * factor(percent):.{digits}f})</td>"
            f"<td>{image_tag(row.image, str(row.unit))}</td></tr>")
    return "\n".join(rows + ["</table>"])


def _display(table: pd.DataFrame, percent: bool) -> pd.DataFrame:
    """Score columns (and their interval bounds) in the shown unit."""
    columns = [c for c in table.columns if is_score(c) or c in SCORE_COLUMNS]
    return scale_table(table, percent, columns)


def _present(value) -> bool:
    if isinstance(value, (list, tuple)):
        return len(value) > 0
    return not pd.isna(value)
