"""CLI conventions: one meaning per short flag across all commands; examples in --help."""
import click
import pytest
from click.testing import CliRunner

from refvps.cli import main

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


def _visible():
    return [(path, command) for path, command in _commands(main)
            if not command.hidden]


@pytest.mark.parametrize("path", [p for p, _ in _visible()], ids=" ".join)
def test_help_has_an_example(path):
    result = CliRunner().invoke(main, [*path, "--help"])
    assert result.exit_code == 0
    text = result.output
    heading = "Examples:" if "Examples:" in text else "Example:"
    assert heading in text
    example = text.split(heading, 1)[1].strip().splitlines()[0]
    assert example.strip().startswith(" ".join(("refvps",) + path))


def test_the_top_level_help_has_examples():
    result = CliRunner().invoke(main, ["--help"])
    examples = result.output.split("Examples:", 1)[1].split("Options:", 1)[0].split()
    assert examples.count("refvps") >= 2


def _flag(command, name):
    return any(isinstance(p, click.Option) and name in p.opts and p.is_flag
               for p in command.params)


def test_output_formats_exclude_each_other(tmp_path):
    with_both = [path for path, command in _commands(main)
                 if _flag(command, "--csv") and _flag(command, "--json")]
    assert ("leaderboard",) in with_both and ("benchmarks",) in with_both
    for path in with_both:
        result = CliRunner().invoke(main, [*path, "--csv", "--json"])
        assert result.exit_code == 2, path
        assert "--csv and --json exclude each other" in result.output, path


@pytest.mark.parametrize("command", ["eval", "demo"])
def test_workers_help_states_the_small_job_size(command):
    """The --workers help quotes refvps.executors.SMALL_JOB_FRAMES (kept out of the command
    line's imports, which must stay fast)."""
    from refvps.executors import SMALL_JOB_FRAMES

    text = " ".join(CliRunner().invoke(main, [command, "--help"]).output.split())
    assert f"a job under {SMALL_JOB_FRAMES:,} query-frames runs in this one" in text
