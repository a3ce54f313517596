"""``probfusion report [RUN]``: posterior diagnostics, attributions and evaluations of a run; prints the folder."""

from __future__ import annotations

from pathlib import Path

import click
from rich.console import Console

from probfusion.api import load_run
from probfusion.cli.options import check_run_dir, device_option, handle_errors, quiet_option, trust_pickle_option
from probfusion.config import MAX_SEED
from probfusion.diagnostics.posterior import DEFAULT_DRAWS
from probfusion.diagnostics.report import write_report
from probfusion.errors import CheckpointError, ConfigError
from probfusion.evaluation import latest_run

_RUNS = Path("runs")


def _compare_labels(run: Path, compare: tuple[Path, ...]) -> dict[str, Path]:
    """Unique names for the runs to compare with: the folder name, or the full path where folder names collide.

    Raises:
        ConfigError: If a run is given twice (or is the reported run).
    """
    seen = {run.resolve()}
    for path in compare:
        if path.resolve() in seen:
            raise ConfigError(f"Run {path} is given twice (--compare or RUN); give each run to compare once.")
        seen.add(path.resolve())
    names = [run.name, *(path.name for path in compare)]
    return {path.name if names.count(path.name) == 1 else str(path.resolve()): check_run_dir(path) for path in compare}


@click.command("report")
@click.argument("run", required=False, type=click.Path(path_type=Path))
@click.option(
    "--draws",
    type=click.IntRange(min=20),
    default=DEFAULT_DRAWS,
    show_default=True,
    help="Posterior draws of an SVI run (NUTS runs use their stored draws).",
)
@click.option(
    "--seed", type=click.IntRange(min=0, max=MAX_SEED), default=0, show_default=True, help="Seed of the SVI draws."
)
@click.option(
    "--compare",
    "compare",
    multiple=True,
    type=click.Path(path_type=Path),
    metavar="RUN",
    help="Another Bayesian run on the same training rows to rank by PSIS-LOO with this one; repeatable.",
)
@click.option("--overwrite", is_flag=True, help="Replace RUN/report if it exists.")
@trust_pickle_option
@device_option
@quiet_option
@handle_errors
def report(
    run: Path | None,
    draws: int,
    seed: int,
    compare: tuple[Path, ...],
    overwrite: bool,
    trust_pickle: bool,
    device: str,
    quiet: bool,
) -> None:
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
    others = _compare_labels(check_run_dir(run), compare)
    loaded = {name: load_run(path, trust_pickle=trust_pickle, device=device) for name, path in others.items()}
    reported = load_run(run, trust_pickle=trust_pickle, device=device)
    result = write_report(reported, num_draws=draws, seed=seed, compare=loaded or None, overwrite=overwrite)
    console.print(result.text, markup=False, highlight=False, soft_wrap=True)
    click.echo(str(result.path))
