"""``refvps leaderboard``, ``runs``, ``report``, ``compare`` and ``viz``."""
from __future__ import annotations

import json
from pathlib import Path

import click

from refvps.cli.common import (benchmark_option, data_option, exclusive, percent_option,
                               results_option)
from refvps.leaderboard.settings import LOCAL_SETTING, SETTINGS
from refvps.loaders import BENCHMARKS


def _warn(lines: list[str]) -> None:
    for line in lines:
        click.echo(f"warning: {line}", err=True)


@click.command("leaderboard")
@click.option("--benchmark", "-b", type=click.Choice(list(BENCHMARKS)), default=None,
              help="Only this benchmark (default: all).")
@click.option("--setting", type=click.Choice(list(SETTINGS) + [LOCAL_SETTING]), default=None,
              help="Only this setting (standard keeps the local runs too; default: all, each "
                   "ranked apart).")
@click.option("--metric", default=None,
              help="Rank by this metric (default: the first one the benchmark's papers report).")
@click.option("--csv", "as_csv", is_flag=True, help="CSV on stdout, every column.")
@click.option("--markdown", is_flag=True, help="A Markdown table.")
@click.option("--json", "as_json", is_flag=True, help="JSON records, every column.")
@click.option("--wide", is_flag=True,
              help="Text and Markdown: add the labels as printed, provenance and notes.")
@percent_option
@click.option("--published/--no-published", default=True, show_default=True,
              help="Include the numbers printed in the papers.")
@results_option
def leaderboard_command(benchmark, setting, metric, as_csv, markdown, as_json, wide, percent,
                        published, results):
    """Rank local runs and the numbers printed in papers.

    Rows are ranked within (benchmark, split, setting): published rows of different settings
    (zero-shot, 24fps, ...) or splits never share a ranking; local runs rank with the standard
    rows. Each printed result appears once, with every paper that cites it.

    \b
    Examples:
      refvps leaderboard -b ref-vps --percent
      refvps leaderboard -b mevis --setting standard --markdown
      refvps leaderboard --csv > leaderboard.csv
    """
    from refvps.leaderboard import table as lb

    exclusive(csv=as_csv, markdown=markdown, json=as_json)
    table, warnings = lb.build_leaderboard(benchmark, metric, published, results,
                                           setting=setting, percent=percent)
    _warn(warnings)
    if as_csv:
        click.echo(lb.to_csv(table), nl=False)
    elif as_json:
        click.echo(lb.to_json(table))
    elif table.empty:
        click.echo(lb.empty_message(benchmark, setting, published, results))
    elif markdown:
        click.echo(lb.to_markdown(table, wide, percent))
    else:
        click.echo(lb.to_text(table, wide, percent))


@click.command("runs")
@results_option
@click.option("--json", "as_json", is_flag=True, help="JSON records.")
@percent_option
def runs_command(results, as_json, percent):
    """List every run recorded in the results store, oldest first.

    A run that scored the same predictions on the same data as a later one is marked
    superseded; the leaderboard shows only the latest.

    \b
    Examples:
      refvps runs
      refvps runs --results path/to/results --json
    """
    from refvps.leaderboard import list_records, results_root
    from refvps.leaderboard.records import latest_per_identity
    from refvps.units import fmt, scale_metrics

    records, warnings = list_records(results)
    _warn(warnings)
    _, superseded = latest_per_identity(records)
    if as_json:
        rows = []
        for r in records:
            row = r.to_dict()
            row["metrics"] = scale_metrics(r.metrics, percent)
            row["superseded_by"] = superseded.get(r.run_id)
            rows.append(row)
        click.echo(json.dumps(rows, indent=2))
        return
    click.echo(f"results store: {results_root(results)} ({len(records)} run(s))")
    for r in records:
        metrics = scale_metrics(r.metrics, percent)
        shown = "  ".join(f"{k} {fmt(metrics[k], percent)}" for k in r.headline
                          if isinstance(metrics.get(k), (int, float)))
        later = f"  (superseded by {superseded[r.run_id]})" if r.run_id in superseded else ""
        click.echo(f"  {r.run_id}  {r.benchmark}/{r.split}  {r.name}  {shown}{later}")


def _load(ref: str, results):
    from refvps.leaderboard import resolve_run
    from refvps.report.run import load_run

    return load_run(resolve_run(ref, results))


@click.command("report")
@click.argument("run")
@click.option("--out", type=click.Path(file_okay=False), default=None,
              help="Output folder (default: <run folder>/report).")
@data_option
@click.option("--no-dynamics", is_flag=True,
              help="Skip the GT motion / shape-change breakdowns (they read the dataset).")
@click.option("--no-gallery", is_flag=True,
              help="Skip the gallery of the worst units (it reads frames and predictions).")
@click.option("--boot", type=int, default=2000, show_default=True, help="Bootstrap replicates.")
@click.option("--seed", type=int, default=0, show_default=True, help="Bootstrap seed.")
@percent_option
@results_option
def report_command(run, out, data, no_dynamics, no_gallery, boot, seed, percent, results):
    """Tables, plots (PNG and SVG) and one HTML page for RUN (a run id or name, or an outputs
    folder).

    \b
    Examples:
      refvps report my-model --percent
      refvps report path/to/eval-out --out report/ --data path/to/data
    """
    from refvps.report.build import build_report
    from refvps.units import fmt

    loaded = _load(run, results)
    report = build_report(loaded, out or loaded.folder / "report", data=data,
                          dynamics=not no_dynamics, gallery=not no_gallery, n_boot=boot,
                          seed=seed, percent=percent)
    _warn(report.warnings)
    click.echo(f"report: {report.page}")
    scale = 100 if percent else 1
    for row in report.tables["headline_ci"].itertuples():
        click.echo(f"  {row.metric:<6} {fmt(row.estimate * scale, percent)}  95% CI "
                   f"[{fmt(row.ci_low * scale, percent)}, {fmt(row.ci_high * scale, percent)}]  "
                   f"({row.n_clusters} {row.resampled} clusters resampled)")


@click.command("compare")
@click.argument("run_a")
@click.argument("run_b")
@click.option("--boot", type=int, default=2000, show_default=True, help="Bootstrap replicates.")
@click.option("--perm", type=int, default=10000, show_default=True,
              help="Random sign patterns when there are too many clusters to enumerate.")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--csv", "csv_path", type=click.Path(dir_okay=False), default=None,
              help="Also write the per-concept / per-class difference table to this file.")
@click.option("--json", "as_json", is_flag=True, help="JSON output.")
@percent_option
@results_option
def compare_command(run_a, run_b, boot, perm, seed, csv_path, as_json, percent, results):
    """Paired comparison of RUN_A - RUN_B on the units both scored.

    \b
    Examples:
      refvps compare my-model baseline
      refvps compare 20250101T120000000Z-ref-vps-a 20250102T090000000Z-ref-vps-b --json --percent
    """
    from refvps.fileio import atomic_write_text
    from refvps.report.stats import compare_runs
    from refvps.units import scale_table

    comparison = compare_runs(_load(run_a, results), _load(run_b, results), n_boot=boot,
                              n_perm=perm, seed=seed)
    metrics = scale_table(comparison.metrics, percent, ["A", "B", "diff", "ci_low", "ci_high"])
    groups = scale_table(comparison.groups, percent, ["A", "B", "diff"])
    if csv_path:
        atomic_write_text(csv_path, groups.to_csv(index=False))
    if as_json:
        click.echo(json.dumps({
            "a": comparison.a, "b": comparison.b, "unit": "percent" if percent else "fraction",
            "shared_units": comparison.shared_units, "dropped_units": comparison.dropped_units,
            "metrics": json.loads(metrics.to_json(orient="records")),
            "groups": json.loads(groups.to_json(orient="records"))}, indent=2))
        return
    digits = 2 if percent else 4
    number = lambda v: f"{v:.{digits}f}"  # noqa: E731
    signed = lambda v: f"{v:+.{digits}f}" if isinstance(v, float) else str(v)  # noqa: E731
    click.echo(f"A = {comparison.a}   B = {comparison.b}   "
               f"({comparison.shared_units} shared units"
               + (f", {comparison.dropped_units} unshared dropped)" if comparison.dropped_units
                  else ")"))
    click.echo(metrics[["metric", "A", "B", "diff", "ci_low", "ci_high", "p_value"]]
               .to_string(index=False, float_format=number,
                          formatters={"p_value": lambda v: f"{v:.4f}"}))
    if len(metrics):
        click.echo(f"test: {metrics['test'].iloc[0]}; 95% paired bootstrap CI "
                   f"resampling {metrics['resampled'].iloc[0]} clusters")
    click.echo("")
    click.echo(groups.to_string(index=False, formatters={"diff": signed}, float_format=number))


@click.command("viz")
@benchmark_option
@data_option
@click.option("--preds", type=click.Path(exists=True), default=None,
              help="Predictions folder or .zip to overlay (optional).")
@click.option("--clip", "--video", "clip", required=True, help="Clip / video id.")
@click.option("--exp", "--query", "exp", required=True, help="Expression / query id.")
@click.option("--out", required=True, type=click.Path(dir_okay=False),
              help="Output: FILE.mp4 (H.264), FILE.webm (VP9) or FILE.gif.")
@click.option("--split", default=None, help="Split (default: the benchmark's evaluation split).")
@click.option("--fps", type=float, default=6.0, show_default=True, help="Output frame rate.")
def viz_command(benchmark, data, preds, clip, exp, out, split, fps):
    """Render one query's frames with GT (pink), Ignore (yellow) and prediction (cyan) overlays.

    MP4 is H.264 and WebM is VP9, both play in browsers (needs PyAV: pip install
    'refvps[video]'); GIF needs nothing extra.

    \b
    Examples:
      refvps viz --clip vps_0001 --exp 0 --preds preds/ --out vps_0001_0.mp4
      refvps viz -b mevis --split valid_u --video VIDEO --query 3 --out q3.gif --fps 6
    """
    from refvps.loaders import load_benchmark
    from refvps.report.viz import render_video

    path = render_video(load_benchmark(benchmark, data, split), clip, exp, Path(out), preds, fps)
    click.echo(f"wrote {path}")


COMMANDS = (leaderboard_command, runs_command, report_command, compare_command, viz_command)
