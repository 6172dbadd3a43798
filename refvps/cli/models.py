"""``refvps predict``, ``refvps run`` and ``refvps models``."""
from __future__ import annotations

import json
import sys

import click

from refvps.cli.common import benchmark_option, data_option, executor_options


def _model_args(pairs: tuple[str, ...]) -> dict:
    args = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise click.BadParameter(f"{pair!r}: expected KEY=VALUE", param_hint="--model-arg")
        args[key.strip().replace("-", "_")] = value
    return args


def predict_options(func):
    options = [
        click.option("--model", "-m", required=True,
                     help="Registered model name (see `refvps models`) or package.module:Class."),
        benchmark_option,
        data_option,
        click.option("--split", default=None, help="Split (default: the benchmark's)."),
        click.option("--out", required=True, type=click.Path(file_okay=False),
                     help="Predictions folder (<video>/<query>/<frame>.png)."),
        click.option("--model-arg", "model_arg", multiple=True, metavar="KEY=VALUE",
                     help="Model argument (repeatable), e.g. checkpoint=PATH, clip_len=36, "
                          "python=/envs/rem/bin/python to run the model in that environment."),
        click.option("--shard", default="0/1", show_default=True,
                     help="Predict only the videos of shard i of n (0-based), e.g. 1/4."),
        click.option("--overwrite", is_flag=True, help="Redo queries that are already done."),
        click.option("--workers", type=int, default=None,
                     help="Ray actors (default: one per GPU, or per CPU for CPU models)."),
        click.option("--no-progress", is_flag=True, help="Hide the progress bar."),
        executor_options,
    ]
    for option in reversed(options):
        func = option(func)
    return func


def _predict(model, benchmark, data, split, out, model_arg, shard, overwrite, workers,
             no_progress, executor, address, report_to_stderr=False):
    from refvps.baselines.runner import parse_shard, predict

    try:
        shard_pair = parse_shard(shard)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--shard") from None
    report = predict(model, benchmark, out, data=data, split=split,
                     model_args=_model_args(model_arg), shard=shard_pair, overwrite=overwrite,
                     executor=executor, address=address, workers=workers,
                     progress=not no_progress)
    click.echo(report.to_text(), err=report_to_stderr)
    return report


@click.command("predict")
@predict_options
def predict_command(**options):
    """Run a model over every query of a benchmark (resumable; failures listed at the end).

    \b
    Examples:
      refvps predict --model center-box --out preds/center-box
      refvps predict -m sola -b mevis --out preds/sola --model-arg python=ENV/bin/python
    """
    report = _predict(**options)
    if report.failures:
        sys.exit(1)


@click.command("run")
@predict_options
@click.option("--eval-out", type=click.Path(file_okay=False), default=None,
              help="Where to write the evaluation tables (default: OUT/eval).")
@click.option("--json", "as_json", is_flag=True, help="Print the evaluation summary as JSON.")
def run_command(eval_out, as_json, **options):
    """`refvps predict` then `refvps eval` on the same folder.

    \b
    Example:
      refvps run --model oracle --out preds/oracle --json
    """
    from pathlib import Path

    from refvps.evaluation import evaluate

    report = _predict(**options, report_to_stderr=True)
    if report.failures:
        click.echo("not evaluating: some queries failed (see above)", err=True)
        sys.exit(1)
    out = Path(options["out"])
    result = evaluate(out, options["benchmark"], options["data"], options["split"],
                      executor=options["executor"], address=options["address"],
                      progress=not options["no_progress"],
                      out=eval_out or out.parent / f"{out.name}-eval", name=options["model"])
    click.echo(result.to_json() if as_json else result.to_text())


@click.group("models", invoke_without_command=True)
@click.option("--check", "check", default=None, metavar="NAME",
              help="Say what is missing to run NAME (upstream code, checkpoints, packages, GPU).")
@click.option("--model-arg", "model_arg", multiple=True, metavar="KEY=VALUE",
              help="Model arguments to check (paths, python=...).")
@click.option("--json", "as_json", is_flag=True, help="Print as JSON.")
@click.pass_context
def models_command(ctx, check, model_arg, as_json):
    """List every registered model, or check one (`refvps models doctor NAME` checks deeper).

    \b
    Example:
      refvps models --check sola --model-arg python=/envs/sola/bin/python \\
        --model-arg repo=/opt/SOLA --model-arg checkpoint=/ckpt/epoch_13.pth
    """
    if ctx.invoked_subcommand is not None:
        return
    from refvps.baselines.registry import registered, segmenter_class

    if check is None:
        rows = []
        for entry in registered().values():
            try:
                cls = segmenter_class(entry.target)
            except ValueError as exc:
                rows.append({"name": entry.name, "target": entry.target, "origin": entry.origin,
                             "gpu": None, "summary": f"(cannot import: {exc})"})
                continue
            doc = (cls.__doc__ or "").strip().splitlines()
            rows.append({"name": entry.name, "target": entry.target, "origin": entry.origin,
                         "gpu": bool(getattr(cls, "needs_gpu", False)),
                         "summary": doc[0] if doc else ""})
        if as_json:
            click.echo(json.dumps(rows, indent=2))
            return
        width = max(len(r["name"]) for r in rows)
        for row in rows:
            gpu = {True: "GPU", False: "CPU", None: "?  "}[row["gpu"]]
            click.echo(f"{row['name']:<{width}}  {gpu}  {row['summary']}")
        return
    from refvps.baselines.runner import ModelSpec

    segmenter = ModelSpec(check, _model_args(model_arg)).build()
    try:
        requirements = segmenter.requirements() if hasattr(segmenter, "requirements") else []
    finally:
        segmenter.close()
    if as_json:
        click.echo(json.dumps([r.__dict__ for r in requirements], indent=2))
    else:
        for req in requirements:
            click.echo(f"[{'ok' if req.ok else 'MISSING'}] {req.what}"
                       + (f": {req.detail}" if req.detail else ""))
        if not requirements:
            click.echo(f"{check}: nothing to check")
    if any(not r.ok for r in requirements):
        sys.exit(1)


@models_command.command("doctor")
@click.argument("name")
@click.option("--model-arg", "model_arg", multiple=True, metavar="KEY=VALUE",
              help="Model argument (repeatable), as for `refvps predict`; python=PATH checks "
                   "that environment.")
@click.option("--smoke", is_flag=True, help="Also run one query on five small frames.")
@click.option("--json", "as_json", is_flag=True, help="Print the checks as JSON.")
def doctor_command(name, model_arg, smoke, as_json):
    """Check NAME's installation inside its environment: upstream import, checkpoint keys,
    versions (sam2, transformers, torch/CUDA), base models, GPU memory; --smoke runs a query.

    \b
    Example:
      refvps models doctor sola --smoke --model-arg python=/envs/sola/bin/python \\
        --model-arg repo=/opt/SOLA --model-arg checkpoint=/ckpt/epoch_13.pth \\
        --model-arg sam2_checkpoint=/ckpt/sam2_hiera_large.pt
    """
    from refvps.baselines.doctor import FAIL, run_doctor

    checks = run_doctor(name, _model_args(model_arg), smoke_run=smoke)
    if as_json:
        click.echo(json.dumps([c.__dict__ for c in checks], indent=2))
    else:
        for check in checks:
            click.echo(f"[{check.status}] {check.what}" + (f": {check.detail}" if check.detail else ""))
            if check.fix and check.status != "ok":
                click.echo(f"    fix: {check.fix}")
    failed = [c for c in checks if c.status == FAIL]
    if failed or not checks:
        click.echo(f"{name}: {len(failed)} problem(s)" if failed else f"{name}: no checks ran",
                   err=True)
        sys.exit(1)
    click.echo(f"{name}: all checks passed", err=True)


@models_command.command("env")
@click.argument("name")
def env_command(name):
    """Print the requirements file of NAME's environment (resolved with pip; see its comments).

    \b
    Example:
      refvps models env sola > sola.txt && pip install -r sola.txt
    """
    from refvps.baselines.contract import requirements_text

    try:
        click.echo(requirements_text(name), nl=False)
    except KeyError as exc:
        raise click.BadParameter(str(exc.args[0]), param_hint="NAME") from None
