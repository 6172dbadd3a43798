"""Shared CLI pieces: error display, common options."""
from __future__ import annotations

import signal
import sys
import threading

import click

from refvps.errors import RefvpsError


class RefvpsGroup(click.Group):
    """Shows refvps errors (bad data, bad predictions) as messages with exit code 2; Ctrl+C
    ends a command with status 130 (128 + SIGINT), as shells report it, after its clean-ups."""

    def invoke(self, ctx: click.Context):
        previous = _exit_on_sigterm()
        try:
            return super().invoke(ctx)
        except RefvpsError as exc:
            click.echo(f"error: {exc}", err=True)
            sys.exit(2)
        except KeyboardInterrupt:
            click.echo("\ninterrupted", err=True)
            sys.exit(128 + signal.SIGINT)
        finally:
            if previous is not None:
                signal.signal(signal.SIGTERM, previous)


def _exit_on_sigterm():
    """While a command runs, SIGTERM ends it like Ctrl+C does: clean-ups run (workers stopped,
    staged outputs removed), exit status 143. Returns the handler to restore, if one was set."""
    if threading.current_thread() is threading.main_thread() \
            and signal.getsignal(signal.SIGTERM) == signal.SIG_DFL:
        return signal.signal(signal.SIGTERM, _raise_exit)
    return None


def _raise_exit(signum, frame):
    raise SystemExit(128 + signum)


def benchmark_option(func):
    from refvps.loaders import BENCHMARKS

    return click.option("--benchmark", "-b", type=click.Choice(list(BENCHMARKS)),
                        default="ref-vps", show_default=True, help="Benchmark to score on.")(func)


def data_option(func):
    return click.option("--data", type=click.Path(file_okay=False), default=None,
                        help="Dataset root holding each benchmark's folder (default: "
                             "$REFVPS_DATA, else ~/.local/share/refvps/data).")(func)


def results_option(func):
    return click.option("--results", type=click.Path(file_okay=False), default=None,
                        help="Results store of recorded runs (default: $REFVPS_RESULTS, else "
                             "~/.local/share/refvps/results).")(func)


def executor_options(func):
    """``--executor local|ray`` and ``--address`` (a Ray cluster; default: a local instance)."""
    func = click.option("--address", default=None,
                        help="Ray cluster address for --executor ray (default: start a local "
                             "instance; 'auto' joins the cluster this machine belongs to).")(func)
    from refvps.executors import EXECUTORS

    return click.option("--executor", type=click.Choice(EXECUTORS), default="local",
                        show_default=True,
                        help="Where the work runs: this machine, or Ray "
                             "(pip install 'refvps[ray]').")(func)


def percent_option(func):
    """``--percent``: show scores in percent, as papers print them (default: fractions)."""
    return click.option("--percent", is_flag=True,
                        help="Show scores in percent, as papers print them (default: fractions "
                             "in [0, 1], as refvps computes and stores them).")(func)


def exclusive(**flags) -> None:
    """Refuse flags that exclude each other: ``exclusive(csv=True, json=False, ...)``."""
    given = [f"--{name.replace('_', '-')}" for name, value in flags.items() if value]
    if len(given) > 1:
        raise click.UsageError(f"{' and '.join(given)} exclude each other; give one")
