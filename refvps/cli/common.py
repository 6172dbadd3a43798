"""Shared CLI pieces: error display, common options."""
from __future__ import annotations

import sys

import click

from refvps.errors import RefvpsError

class RefvpsGroup(click.Group):
    """Shows refvps errors (bad data, bad predictions) as messages with exit code 2."""

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except RefvpsError as exc:
            click.echo(f"error: {exc}", err=True)
            sys.exit(2)


def benchmark_option(func):
    from refvps.loaders import BENCHMARKS

    return click.option("--benchmark", "-b", type=click.Choice(list(BENCHMARKS)),
                        default="ref-vps", show_default=True, help="Benchmark to score on.")(func)


def data_option(func):
    return click.option("--data", type=click.Path(file_okay=False), default=None,
                        help="Dataset root holding each benchmark's folder (default: "
                             "$REFVPS_DATA, else ~/.local/share/refvps/data).")(func)
