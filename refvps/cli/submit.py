"""``refvps submit``: validate predictions for a server-scored split and write the upload zip."""
from __future__ import annotations

import click

from refvps.cli.common import data_option


@click.command("submit")
@click.option("--benchmark", "-b", required=True,
              help="Benchmark with an evaluation server (ref-ytvos, mevis).")
@data_option
@click.option("--preds", required=True, type=click.Path(exists=True),
              help="Predictions folder or .zip (<video>/<expression>/<frame>.png).")
@click.option("--out", required=True, type=click.Path(dir_okay=False),
              help="The zip to write (replaced only when every check passes).")
@click.option("--split", default=None, help="Server split (default: the benchmark's first one).")
@click.option("--workers", "-j", type=click.IntRange(min=1), default=None, help="Worker processes (default: all cores).")
@click.option("--no-progress", is_flag=True, help="Hide the progress bar.")
def submit_command(benchmark, data, preds, out, split, workers, no_progress):
    """Check every video, expression and frame, then write the server zip."""
    from refvps.submit import make_submission

    result = make_submission(preds, benchmark, data, split, out, workers=workers,
                             progress=not no_progress)
    click.echo(f"wrote {result.path} ({result.size_bytes / 1e6:.1f} MB): {result.benchmark} "
               f"{result.split}, {result.videos} videos, {result.expressions} expressions, "
               f"{result.frames} frames; upload it to the benchmark's evaluation server")
