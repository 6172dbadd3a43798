"""``refvps report``: tables, PNG figures and one self-contained HTML page for a run."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from refvps.errors import RefvpsError
from refvps.report import analysis, plots
from refvps.report.html import image_tag, note, render_page, table_html
from refvps.report.run import Run
from refvps.report.stats import DEFAULT_BOOT, run_ci

REPORT_PAGE = "report.html"


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
                 dynamics: bool = True, n_boot: int = DEFAULT_BOOT, seed: int = 0,
                 progress: bool = True) -> Report:
    """Write every table (CSV), figure (PNG) and ``report.html`` for ``run`` into ``out``."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    report = Report(out, out / REPORT_PAGE)
    units, s = run.units.copy(), run.summary
    sections: list[tuple[str, list[str]]] = []

    ci = run_ci(run, n_boot=n_boot, seed=seed)
    report.tables["headline_ci"] = ci
    sections.append(("Headline metrics with 95% bootstrap intervals", [
        table_html(ci[["metric", "estimate", "ci_low", "ci_high", "resampled", "n_clusters"]]),
        note(f"{n_boot} replicates resampling {run.cluster_key} clusters with replacement "
             f"(seed {seed}); percentile intervals.")]))

    for key, heading in (("concept_groups", "J per concept group"), ("concept", "J per concept"),
                         (run.class_key, "J per class")):
        if key and key in units.columns and units[key].map(_present).any():
            table = analysis.group_table(units[units[key].map(_present)], key)
            name = "per_" + key
            report.tables[name] = table
            figure = plots.bar_chart(table[key].astype(str).tolist(), table["J"].tolist(),
                                     out / f"{name}.png", heading,
                                     counts=table["n_units"].tolist())
            report.figures[name] = figure
            sections.append((heading, [image_tag(figure, heading), table_html(table)]))

    coverage_key = run.class_key or ("concept" if "concept" in units.columns
                                     and units["concept"].notna().any() else None)
    if coverage_key:
        table = analysis.coverage_curve(units, coverage_key)
        report.tables["coverage"] = table
        heading = f"Coverage: per-{coverage_key} J, sorted"
        report.figures["coverage"] = plots.coverage_plot(table, out / "coverage.png", heading)
        sections.append((heading, [image_tag(report.figures["coverage"], heading),
                                   note("REM Figure D style: each point is one "
                                        f"{coverage_key}'s mean J; a flatter, higher curve "
                                        "covers more concepts.")]))

    table = analysis.time_curve(run.frames)
    report.tables["time"] = table
    report.figures["time"] = plots.time_plot(table, out / "time.png", "J over normalised time")
    sections.append(("J over normalised time", [image_tag(report.figures["time"], "time"),
                                                table_html(table)]))

    if "n_words" in units.columns:
        table = analysis.length_table(units)
        report.tables["expression_length"] = table
        report.figures["expression_length"] = plots.binned_plot(
            table, "words", out / "expression_length.png", "J by expression length", "words")
        sections.append(("Failure modes: expression length", [
            image_tag(report.figures["expression_length"], "length"), table_html(table)]))

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
                    table, "bin", out / f"{column}.png", heading, f"{column} tertile")
                sections.append((heading, [image_tag(report.figures[column], column),
                                           table_html(table),
                                           note("Tertiles over this dataset's units; "
                                                "definitions in docs/reports.md.")]))

    report.figures["histogram"] = plots.histogram(units["J"].to_numpy(), out / "histogram.png",
                                                  f"J per {s.get('unit_name', 'unit')}")
    sections.append(("Distribution of J", [image_tag(report.figures["histogram"], "histogram")]))
    if report.warnings:
        sections.append(("Warnings", [note(w) for w in report.warnings]))

    for name, table in report.tables.items():
        table.to_csv(out / f"{name}.csv", index=False)
    header = [f"benchmark {s.get('benchmark')} (split {s.get('split')}), "
              f"{len(units)} {s.get('unit_name', 'unit')}s, {len(run.frames)} frames",
              f"protocol: {s.get('protocol', '')}",
              f"refvps {s.get('refvps_version', '?')}, data fingerprint "
              f"{str(s.get('data_fingerprint', ''))[:16]}, created {s.get('created', '')}"]
    page = render_page(f"refvps report: {run.name}", header, sections)
    report.page.write_text(page, encoding="utf-8")
    return report


def _present(value) -> bool:
    if isinstance(value, (list, tuple)):
        return len(value) > 0
    return not pd.isna(value)
