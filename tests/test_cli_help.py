"""CLI conventions: one meaning per short flag across all commands; examples in --help."""
import click
import pytest
from click.testing import CliRunner

from refvps.cli import main

OWN = ("leaderboard", "runs", "report", "compare", "viz")


def _commands(group: click.Group, prefix=()):
    ctx = click.Context(group)
    for name in group.list_commands(ctx):
        command = group.get_command(ctx, name)
        yield prefix + (name,), command
        if isinstance(command, click.Group):
            yield from _commands(command, prefix + (name,))


def test_one_meaning_per_short_flag():
    meanings: dict[str, set[str]] = {}
    for path, command in _commands(main):
        for param in command.params:
            if not isinstance(param, click.Option):
                continue
            longs = sorted(o for o in param.opts + param.secondary_opts if o.startswith("--"))
            for short in (o for o in param.opts if len(o) == 2 and o.startswith("-")):
                meanings.setdefault(short, set()).add(longs[0] if longs else param.name)
    clashes = {short: names for short, names in meanings.items() if len(names) > 1}
    assert clashes == {}


@pytest.mark.parametrize("name", OWN)
def test_help_has_an_example(name):
    result = CliRunner().invoke(main, [name, "--help"])
    assert result.exit_code == 0
    text = result.output
    assert "Examples:" in text
    example = text.split("Examples:", 1)[1].splitlines()[1]
    assert example.strip().startswith(f"refvps {name}")
