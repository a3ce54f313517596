"""``probfusion datasets``: what data is available, with sizes, modalities and dimensions; ``--inspect FILE``."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import click
from rich.console import Console
from rich.table import Table

from probfusion.cli.options import handle_errors
from probfusion.data.inspection import FileSummary, inspect_file
from probfusion.data.registry import list_datasets


@click.command("datasets")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@click.option(
    "--inspect",
    "inspect_path",
    type=click.Path(path_type=Path, dir_okay=False),
    default=None,
    metavar="FILE",
    help="Describe a user data file (.npz, .mat, or a MultiBench .pkl with --trust-pickle) instead of the list.",
)
@click.option(
    "--trust-pickle",
    is_flag=True,
    help="Allow --inspect to load a pickle file. Pickles run code: only for files you trust.",
)
@handle_errors
def datasets(as_json: bool, inspect_path: Path | None, trust_pickle: bool) -> None:
    """List the bundled and generated datasets (user data is passed to `fit --data` as a path)."""
    if inspect_path is not None:
        summary = inspect_file(inspect_path, trust_pickle=trust_pickle)
        if as_json:
            click.echo(json.dumps(dataclasses.asdict(summary), indent=2, sort_keys=True))
        else:
            _print_summary(summary)
        return
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
    click.echo(
        "User data: --data PATH.npz (x_<modality>, y, optional split), a .mat (views in a cell array, labels) "
        "or a MultiBench .pkl with --trust-pickle; `probfusion datasets --inspect FILE` shows what a file holds."
    )


def _print_summary(summary: FileSummary) -> None:
    low, high = summary.label_range
    lines = [
        f"file: {summary.path} ({summary.format})",
        f"samples n: {summary.num_samples}",
        f"views ({len(summary.modalities)}): " + ", ".join(f"{m} ({d})" for m, d in summary.modalities.items()),
        f"classes: {summary.num_classes}, labels as stored {low}..{high}",
        "class counts: " + ", ".join(f"{label}: {count}" for label, count in summary.class_counts.items()),
        "split: "
        + ("none shipped" if summary.split is None else ", ".join(f"{k} {v}" for k, v in summary.split.items())),
    ]
    if summary.orientation is not None:
        lines.append("stored as: " + ", ".join(f"{m} {how}" for m, how in summary.orientation.items()))
    if summary.sources:
        lines.append(
            f"views from {summary.sources['views']!r}, labels from {summary.sources['labels']!r}; "
            f"ignored: {summary.sources['ignored'] or 'nothing'}"
        )
    click.echo("\n".join(lines))
