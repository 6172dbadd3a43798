"""The ``refvps`` command line: each command parses, calls the Python API and prints."""
from __future__ import annotations

import click

from refvps import __version__
from refvps.cli.annotate import agreement_command, annotate_command
from refvps.cli.common import RefvpsGroup
from refvps.cli.benchmarks import benchmarks_command
from refvps.cli.evaluate import demo_command, eval_command, sample_command
from refvps.cli.models import models_command, predict_command, run_command
from refvps.cli.reports import COMMANDS as REPORT_COMMANDS
from refvps.cli.submit import submit_command


@click.group(cls=RefvpsGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="refvps")
def main() -> None:
    """Exact, fast evaluation for referring video (process) segmentation.

    \b
    Examples:
      refvps demo
      refvps eval --preds my_preds/ -b mevis --data DATA_ROOT
      refvps leaderboard -b ref-vps --percent
    """


for command in (eval_command, demo_command, sample_command, benchmarks_command,
                submit_command, predict_command, run_command, models_command,
                *REPORT_COMMANDS, annotate_command, agreement_command):
    main.add_command(command)
