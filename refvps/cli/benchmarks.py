"""``refvps benchmarks``: the registered benchmarks, their splits, query counts and protocols."""
from __future__ import annotations

import json

import click

from refvps.cli.common import data_option, exclusive


@click.command("benchmarks")
@data_option
@click.option("--json", "as_json", is_flag=True, help="Print the catalog as JSON.")
@click.option("--csv", "as_csv", is_flag=True, help="Print one CSV row per (benchmark, split).")
def benchmarks_command(data, as_json, as_csv):
    """List every benchmark with its splits, protocol and (given --data) query counts.

    \b
    Examples:
      refvps benchmarks
      refvps benchmarks --data path/to/data --csv
    """
    from refvps.catalog import benchmark_catalog

    exclusive(csv=as_csv, json=as_json)
    records = benchmark_catalog(data)
    if as_json:
        click.echo(json.dumps(records, indent=2))
    elif as_csv:
        import pandas as pd

        rows = [{"benchmark": r["benchmark"], **s} for r in records for s in r["splits"]]
        table = pd.DataFrame(rows).astype({"videos": "Int64", "queries": "Int64"})
        click.echo(table.to_csv(index=False), nl=False)
    else:
        click.echo("\n\n".join(_block(r, data is not None) for r in records))


def _block(record: dict, counted: bool) -> str:
    from refvps.evaluation import plural

    lines = [f"{record['benchmark']}  {record['title']}",
             f"  protocol:  {record['protocol']}",
             f"  reference: {record['reference']}"]
    if counted:
        lines.append(f"  data:      {record['root'] or 'not found'}")
    for split in record["splits"]:
        text = f"  - {split['split']}{' (default)' if split['default'] else ''}: "
        text += "refvps submit (server)" if split["scoring"] == "server" else "refvps eval"
        if split["status"] == "ok":
            text += f", {split['videos']} videos, {split['queries']} {plural(record['unit'])}"
        elif split["status"]:
            text += f", {split['status']}"
        lines.append(text)
    if len(record["missing_modes"]) > 1:
        lines.append(f"  --missing: {', '.join(record['missing_modes'])}")
    return "\n".join(lines)
