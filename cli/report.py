"""``probfusion report [RUN]``: posterior diagnostics, attributions and evaluations of a run; prints the folder."""

from __future__ import annotations

from pathlib import Path

import click
from rich.console import Console

from probfusion.cli.options import handle_errors, quiet_option
from probfusion.diagnostics.posterior import DEFAULT_DRAWS
from probfusion.diagnostics.report import write_report
from probfusion.errors import CheckpointError
from probfusion.evaluation import latest_run
from probfusion.runs.run_dir import RunDirectory

_RUNS = Path("runs")


def _check_run(run: Path) -> Path:
    stored = RunDirectory(run)
    if not run.is_dir():
        raise CheckpointError(f"No run directory at {run}; give the folder that `probfusion fit` printed.")
    if not stored.is_run:
        raise CheckpointError(f"{run} is not a run (no {stored.CONFIG}); give a folder made by `probfusion fit`.")
    return run


@click.command("report")
@click.argument("run", required=False, type=click.Path(path_type=Path))
@click.option(
    "--draws",
    type=click.IntRange(min=20),
    default=DEFAULT_DRAWS,
    show_default=True,
    help="Posterior draws of an SVI run (NUTS runs use their stored draws).",
)
@click.option("--seed", type=click.IntRange(min=0), default=0, show_default=True, help="Seed of the SVI draws.")
@click.option(
    "--compare",
    "compare",
    multiple=True,
    type=click.Path(path_type=Path),
    metavar="RUN",
    help="Another Bayesian run on the same training rows to rank by PSIS-LOO with this one; repeatable.",
)
@click.option("--overwrite", is_flag=True, help="Replace RUN/report if it exists.")
@quiet_option
@handle_errors
def report(run: Path | None, draws: int, seed: int, compare: tuple[Path, ...], overwrite: bool, quiet: bool) -> None:
    """Diagnose a run's posterior and components; prints the report folder's path.

    RUN is a run directory; without it, the latest complete run under runs/ is used. Results go to
    RUN/report: report.md, checks.json (effective rank, R-hat/ESS for NUTS, Pareto-k for SVI, PSIS-LOO),
    summary.csv, components.csv, ablation.csv, evaluations.csv and figures/*.png.
    """
    console = Console(stderr=True, quiet=quiet)
    if run is None:
        run = latest_run(_RUNS)
        if run is None:
            raise CheckpointError(f"No complete run under {_RUNS}/; give RUN or fit one with `probfusion fit`.")
        console.print(f"reporting on the latest run, {run}")
    others = {path.name if path.name != run.name else str(path): _check_run(path) for path in compare}
    result = write_report(_check_run(run), num_draws=draws, seed=seed, compare=others or None, overwrite=overwrite)
    console.print(result.text, markup=False, highlight=False, soft_wrap=True)
    click.echo(str(result.path))
