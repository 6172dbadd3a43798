"""``refvps eval``, ``refvps demo`` and ``refvps sample``."""
from __future__ import annotations

from pathlib import Path

import click

from refvps.cli.common import (benchmark_option, data_option, executor_options, percent_option,
                               results_option)
from refvps.metrics.modes import DECAY_MODES


@click.command("eval")
@benchmark_option
@data_option
@click.option("--preds", required=True, type=click.Path(exists=True),
              help="Predictions folder or .zip (<video>/<query>/<frame>.png).")
@click.option("--split", default=None, help="Split (default: the benchmark's evaluation split).")
@click.option("--workers", "-j", type=click.IntRange(min=1), default=None,
              help="Processes scoring, this one included (default: all cores; a job under "
                   "3,000 query-frames runs in this one).")
@click.option("--allow-missing", is_flag=True,
              help="Score missing prediction frames as empty masks (counted in the output).")
@click.option("--missing", type=click.Choice(["strict", "official"]), default=None,
              help="strict (default): every missing or unusable prediction is an error. official: "
                   "handle them as the official script does (MeViS, VSPW; counted and warned).")
@click.option("--runs", default=None, metavar="K[,K...]",
              help="Annotator runs to score (Ref-DAVIS: 0..3, default all four); one run also "
                   "lets --preds be that run's folder, e.g. --preds out/anno_0 --runs 0.")
@click.option("--out", type=click.Path(file_okay=False), default=None,
              help="Write per-frame rows, per-unit and breakdown tables and summary.json here.")
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
@percent_option
@click.option("--name", default=None, help="Name of the run (default: the predictions folder name).")
@click.option("--decay-mode", type=click.Choice(DECAY_MODES),
              default="davis2017", show_default=True,
              help="Decay as the official code computes it (uint8 bug for >= 256 frames) or fixed.")
@click.option("--no-progress", is_flag=True, help="Hide the progress bar.")
@executor_options
@results_option
@click.option("--no-record", is_flag=True, help="Do not record the run in the results store.")
def eval_command(benchmark, data, preds, split, workers, allow_missing, missing, runs, out,
                 as_json, percent, name, decay_mode, no_progress, executor, address, results,
                 no_record):
    """Score a predictions folder with a benchmark's official protocol.

    Each run is recorded in the results store (for `refvps leaderboard`, `report`, `compare`);
    without --out its tables are kept there.

    \b
    Examples:
      refvps eval --preds my_preds/ --data DATA_ROOT
      refvps eval -b mevis --preds my_preds.zip --out results/ --json
      refvps eval -b ref-davis --preds out/anno_0 --runs 0 --percent
    """
    from refvps.allocator import keep_freed_memory
    from refvps.evaluation import evaluate
    from refvps.leaderboard import save_record
    from refvps.leaderboard.records import check_store
    from refvps.units import shown_result

    keep_freed_memory()
    if not no_record:
        check_store(results)  # a store that cannot be written fails now, not after scoring
    result = evaluate(preds, benchmark, data, split, workers=workers, allow_missing=allow_missing,
                      progress=not no_progress, decay_mode=decay_mode, out=out, name=name,
                      executor=executor, address=address, missing=missing,
                      runs=_parse_runs(runs))
    record = None if no_record else save_record(result, results)
    shown = shown_result(result, percent)
    click.echo(shown.to_json() if as_json else shown.to_text())
    if record is not None and not as_json:  # JSON output stays one document
        click.echo(f"recorded run {record.run_id} ({record.outputs})")


def _parse_runs(text: str | None) -> tuple[int, ...] | None:
    if text is None:
        return None
    try:
        return tuple(int(part) for part in text.split(","))
    except ValueError:
        raise click.BadParameter(f"expected run numbers such as 0 or 0,2, got {text!r}",
                                 param_hint="--runs") from None


@click.command("sample")
@click.argument("out", type=click.Path(file_okay=False))
@click.option("--no-predictions", is_flag=True, help="Write the dataset only.")
def sample_command(out, no_predictions):
    """Write the built-in Ref-VPS-format sample benchmark (and reference predictions) to OUT.

    \b
    Example:
      refvps sample refvps-sample/
    """
    from refvps.sample import make_sample

    sample = make_sample(out, predictions=not no_predictions)
    click.echo(f"sample dataset: {sample.dataset}")
    for name, path in sample.predictions.items():
        click.echo(f"predictions ({name}): {path}")
    if sample.predictions:
        click.echo(f"try: refvps eval --data {sample.root} --preds {sample.predictions['shifted']}")


@click.command("demo")
@click.option("--dir", "directory", type=click.Path(file_okay=False), default=None,
              help="Where to write the sample (default: a per-user cache folder).")
@click.option("--workers", "-j", type=click.IntRange(min=1), default=None,
              help="Processes scoring, this one included (default: all cores; a job under "
                   "3,000 query-frames runs in this one).")
@click.option("--json", "as_json", is_flag=True, help="Print the comparison as JSON.")
def demo_command(directory, workers, as_json):
    """Generate the sample benchmark and score every reference predictor on it.

    \b
    Examples:
      refvps demo
      refvps demo --dir refvps-demo/ --json
    """
    from refvps.demo import run_demo

    table = run_demo(Path(directory) if directory else None, workers=workers, progress=not as_json)
    if as_json:
        click.echo(table.to_json(orient="records", indent=2))
    else:
        click.echo(table.to_string(index=False, float_format=lambda v: f"{v:.4f}"))
