"""``probfusion datasets``: what data is available, with sizes, modalities and dimensions."""

from __future__ import annotations

import dataclasses
import json

import click
from rich.console import Console
from rich.table import Table

from probfusion.cli.options import handle_errors
from probfusion.data.registry import list_datasets


@click.command("datasets")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list instead of a table.")
@handle_errors
def datasets(as_json: bool) -> None:
    """List the bundled and generated datasets (user data is passed to `fit --data` as a path)."""
    infos = list_datasets()
    if as_json:
        click.echo(json.dumps([dataclasses.asdict(i) for i in infos], indent=2, sort_keys=True, default=str))
        return
    table = Table(title="probfusion datasets")
    for column in ("name", "modalities (d_m)", "n", "classes", "licence"):
        table.add_column(column)
    for info in infos:
        dims = ", ".join(f"{m} ({d})" for m, d in info.modalities.items())
        table.add_row(info.name, dims, str(info.num_samples), str(info.num_classes), info.licence)
    Console(soft_wrap=True).print(table)
    click.echo("User data: --data PATH.npz (x_<modality>, y, optional split) or a MultiBench .pkl with --trust-pickle.")
