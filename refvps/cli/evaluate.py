"""``refvps eval``, ``refvps demo`` and ``refvps sample``."""
from __future__ import annotations

from pathlib import Path

import click

from refvps.cli.common import benchmark_option, data_option, executor_options, results_option
from refvps.metrics.sequence import DECAY_MODES


@click.command("eval")
@benchmark_option
@data_option
@click.option("--preds", required=True, type=click.Path(exists=True),
              help="Predictions folder or .zip (<video>/<query>/<frame>.png).")
@click.option("--split", default=None, help="Split (default: the benchmark's evaluation split).")
@click.option("--workers", "-j", type=int, default=None, help="Worker processes (default: all cores).")
@click.option("--allow-missing", is_flag=True,
              help="Score missing prediction frames as empty masks (counted in the output).")
@click.option("--missing", type=click.Choice(["strict", "official"]), default=None,
              help="strict (default): every missing or unusable prediction is an error. official: "
                   "handle them as the official script does (MeViS only; counted and warned).")
@click.option("--out", type=click.Path(file_okay=False), default=None,
              help="Write per-frame rows, per-unit and breakdown tables and summary.json here.")
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
@click.option("--name", default=None, help="Name of the run (default: the predictions folder name).")
@click.option("--decay-mode", type=click.Choice(DECAY_MODES),
              default="davis2017", show_default=True,
              help="Decay as the official code computes it (uint8 bug for >= 256 frames) or fixed.")
@click.option("--no-progress", is_flag=True, help="Hide the progress bar.")
@executor_options
@results_option
@click.option("--no-record", is_flag=True, help="Do not record the run in the results store.")
def eval_command(benchmark, data, preds, split, workers, allow_missing, missing, out, as_json,
                 name, decay_mode, no_progress, executor, address, results, no_record):
    """Score a predictions folder with a benchmark's official protocol.

    Each run is recorded in the results store (for `refvps leaderboard`, `report`, `compare`);
    without --out its tables are kept there.
    """
    from refvps.evaluation import evaluate
    from refvps.leaderboard import save_record
    from refvps.leaderboard.records import check_store

    if not no_record:
        check_store(results)  # a store that cannot be written fails now, not after scoring
    result = evaluate(preds, benchmark, data, split, workers=workers, allow_missing=allow_missing,
                      progress=not no_progress, decay_mode=decay_mode, out=out, name=name,
                      executor=executor, address=address, missing=missing)
    record = None if no_record else save_record(result, results)
    click.echo(result.to_json() if as_json else result.to_text())
    if record is not None and not as_json:  # JSON output stays one document
        click.echo(f"recorded run {record.run_id} ({record.outputs})")


@click.command("sample")
@click.argument("out", type=click.Path(file_okay=False))
@click.option("--no-predictions", is_flag=True, help="Write the dataset only.")
def sample_command(out, no_predictions):
    """Write the built-in Ref-VPS-format sample benchmark (and reference predictions) to OUT."""
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
@click.option("--workers", "-j", type=int, default=None, help="Worker processes (default: all cores).")
@click.option("--json", "as_json", is_flag=True, help="Print the comparison as JSON.")
def demo_command(directory, workers, as_json):
    """Generate the sample benchmark and score every reference predictor on it."""
    from refvps.demo import run_demo

    table = run_demo(Path(directory) if directory else None, workers=workers, progress=not as_json)
    if as_json:
        click.echo(table.to_json(orient="records", indent=2))
    else:
        click.echo(table.to_string(index=False, float_format=lambda v: f"{v:.4f}"))
