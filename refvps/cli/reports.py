"""``refvps leaderboard``, ``runs``, ``report``, ``compare`` and ``viz``."""
from __future__ import annotations

import json
from pathlib import Path

import click

from refvps.cli.common import benchmark_option, data_option, results_option
from refvps.loaders import BENCHMARKS


def _warn(lines: list[str]) -> None:
    for line in lines:
        click.echo(f"warning: {line}", err=True)


@click.command("leaderboard")
@click.option("--benchmark", "-b", type=click.Choice(list(BENCHMARKS)), default=None,
              help="Only this benchmark (default: all).")
@click.option("--metric", "-m", default=None,
              help="Rank by this metric (default: the first one the benchmark's papers report).")
@click.option("--csv", "fmt", flag_value="csv", help="CSV on stdout.")
@click.option("--markdown", "fmt", flag_value="markdown", help="A Markdown table.")
@click.option("--json", "fmt", flag_value="json", help="JSON records.")
@click.option("--published/--no-published", default=True, show_default=True,
              help="Include the numbers printed in the source papers.")
@results_option
def leaderboard_command(benchmark, metric, fmt, published, results):
    """Rank local runs and published results (values in percent)."""
    from refvps.leaderboard import table as lb

    table, warnings = lb.build_leaderboard(benchmark, metric, published, results)
    _warn(warnings)
    render = {"csv": lb.to_csv, "json": lb.to_json, "markdown": lb.to_markdown}.get(fmt, lb.to_text)
    click.echo(render(table), nl=fmt != "csv")


@click.command("runs")
@results_option
@click.option("--json", "as_json", is_flag=True, help="JSON records.")
def runs_command(results, as_json):
    """List the runs recorded in the results store."""
    from refvps.leaderboard import list_records, results_root

    records, warnings = list_records(results)
    _warn(warnings)
    if as_json:
        click.echo(json.dumps([r.to_dict() for r in records], indent=2))
        return
    click.echo(f"results store: {results_root(results)} ({len(records)} run(s))")
    for r in records:
        shown = "  ".join(f"{k} {r.metrics[k]:.4f}" for k in r.headline
                          if isinstance(r.metrics.get(k), (int, float)))
        click.echo(f"  {r.run_id}  {r.benchmark}/{r.split}  {r.name}  {shown}")


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
@click.option("--boot", type=int, default=2000, show_default=True, help="Bootstrap replicates.")
@click.option("--seed", type=int, default=0, show_default=True, help="Bootstrap seed.")
@results_option
def report_command(run, out, data, no_dynamics, boot, seed, results):
    """Tables, plots and one HTML page for RUN (a run id or name, or an outputs folder)."""
    from refvps.report.build import build_report

    loaded = _load(run, results)
    report = build_report(loaded, out or loaded.folder / "report", data=data,
                          dynamics=not no_dynamics, n_boot=boot, seed=seed)
    _warn(report.warnings)
    click.echo(f"report: {report.page}")
    ci = report.tables["headline_ci"]
    for row in ci.itertuples():
        click.echo(f"  {row.metric:<6} {row.estimate:.4f}  95% CI [{row.ci_low:.4f}, "
                   f"{row.ci_high:.4f}]  ({row.n_clusters} {row.resampled} clusters "
                   f"resampled)")


@click.command("compare")
@click.argument("run_a")
@click.argument("run_b")
@click.option("--boot", type=int, default=2000, show_default=True, help="Bootstrap replicates.")
@click.option("--perm", type=int, default=10000, show_default=True,
              help="Random sign patterns when there are too many clusters to enumerate.")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--csv", "as_csv", type=click.Path(dir_okay=False), default=None,
              help="Also write the per-concept / per-class difference table here.")
@click.option("--json", "as_json", is_flag=True, help="JSON output.")
@results_option
def compare_command(run_a, run_b, boot, perm, seed, as_csv, as_json, results):
    """Paired comparison of RUN_A - RUN_B on the units both scored."""
    from refvps.report.stats import compare_runs

    comparison = compare_runs(_load(run_a, results), _load(run_b, results), n_boot=boot,
                              n_perm=perm, seed=seed)
    if as_csv:
        comparison.groups.to_csv(as_csv, index=False)
    if as_json:
        click.echo(json.dumps({
            "a": comparison.a, "b": comparison.b, "shared_units": comparison.shared_units,
            "dropped_units": comparison.dropped_units,
            "metrics": json.loads(comparison.metrics.to_json(orient="records")),
            "groups": json.loads(comparison.groups.to_json(orient="records"))}, indent=2))
        return
    fmt = lambda v: f"{v:+.4f}" if isinstance(v, float) else str(v)  # noqa: E731
    click.echo(f"A = {comparison.a}   B = {comparison.b}   "
               f"({comparison.shared_units} shared units"
               + (f", {comparison.dropped_units} unshared dropped)" if comparison.dropped_units
                  else ")"))
    click.echo(comparison.metrics[["metric", "A", "B", "diff", "ci_low", "ci_high", "p_value"]]
               .to_string(index=False, float_format=lambda v: f"{v:.4f}"))
    if len(comparison.metrics):
        click.echo(f"test: {comparison.metrics['test'].iloc[0]}; 95% paired bootstrap CI "
                   f"resampling {comparison.metrics['resampled'].iloc[0]} clusters")
    click.echo("")
    click.echo(comparison.groups.to_string(index=False, formatters={"diff": fmt},
                                           float_format=lambda v: f"{v:.4f}"))


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
    """Render one query's frames with GT (pink), Ignore (yellow) and prediction overlays."""
    from refvps.loaders import load_benchmark
    from refvps.report.viz import render_video

    path = render_video(load_benchmark(benchmark, data, split), clip, exp, Path(out), preds, fps)
    click.echo(f"wrote {path}")


COMMANDS = (leaderboard_command, runs_command, report_command, compare_command, viz_command)
