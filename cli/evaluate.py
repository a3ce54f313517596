"""``probfusion evaluate [RUN]``: attack or shift a fitted run's test set; prints the evaluation's path on stdout."""

from __future__ import annotations

from pathlib import Path

import click
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from probfusion.api import fit as fit_run
from probfusion.api import load_run, next_run_dir
from probfusion.cli.options import (
    check_run_dir,
    device_option,
    enum_choice,
    handle_errors,
    quiet_option,
    trust_pickle_option,
)
from probfusion.config import MAX_SEED, EvaluationConfig, RunConfig
from probfusion.data.features import labelled_rows
from probfusion.evaluation import evaluate as evaluate_run
from probfusion.evaluation import latest_run
from probfusion.options import AttackKind, ShiftKind
from probfusion.robustness.budgets import NormKind, parse_budgets

_EVAL = EvaluationConfig()
_RUNS = Path("runs")


def _budgets(ctx: click.Context, param: click.Parameter, value: str) -> tuple[float, ...]:
    try:
        return parse_budgets(value)
    except ValueError as error:
        raise click.BadParameter(str(error), ctx=ctx, param=param) from None


def _severities(ctx: click.Context, param: click.Parameter, value: str) -> tuple[int, ...]:
    try:
        levels = tuple(sorted({int(v) for v in value.split(",") if v.strip()}))
    except ValueError:
        raise click.BadParameter(f"{value!r} is not a list of integers such as 1,2,3,4,5.", ctx, param) from None
    if not levels or any(not 1 <= v <= 5 for v in levels):
        raise click.BadParameter(f"severities must be integers from 1 to 5; got {value!r}.", ctx, param)
    return levels


def _resolve_run(run: Path | None, console: Console, quiet: bool) -> Path:
    """The run to evaluate: the one given, else the latest complete run under runs/, else a fresh default fit."""
    if run is not None:
        return check_run_dir(run)
    found = latest_run(_RUNS)
    if found is not None:
        console.print(f"evaluating the latest run, {found}")
        return found
    config = RunConfig()
    out = next_run_dir(_RUNS, config)
    console.print(f"no run under {_RUNS}/; fitting the default model first into {out}")
    with _bar(console, quiet, "fit", "epochs") as bar:
        task = bar.add_task("fit", total=config.train.epochs)
        return fit_run(config, out, progress=lambda done, total: bar.update(task, completed=done, total=total)).path


def _bar(console: Console, quiet: bool, label: str, unit: str) -> Progress:
    return Progress(
        TextColumn(label),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn(unit),
        TimeElapsedColumn(),
        console=console,
        transient=True,
        disable=quiet or not console.is_terminal,
    )


@click.command("evaluate")
@click.argument("run", required=False, type=click.Path(path_type=Path))
@click.option(
    "--attack",
    type=enum_choice(AttackKind),
    default=_EVAL.attack.value,
    show_default=True,
    help="Attack on the test inputs; eot-pgd averages gradients over posterior samples (Bayesian models).",
)
@click.option(
    "--eps",
    default=",".join(f"{e:g}" for e in _EVAL.eps),
    show_default=True,
    callback=_budgets,
    metavar="E1,E2,...",
    help="Attack budgets in units of each feature's training standard deviation (the run's standardisation): "
    "under linf each attacked feature moves by at most eps standard deviations.",
)
@click.option(
    "--norm", type=enum_choice(NormKind), default=_EVAL.norm.value, show_default=True, help="Norm of the budget ball."
)
@click.option(
    "--steps",
    type=click.IntRange(min=1, max=10_000),
    default=_EVAL.steps,
    show_default=True,
    help="PGD steps per random start.",
)
@click.option(
    "--step-size",
    type=click.FloatRange(min=0, min_open=True),
    default=None,
    help="PGD step length as a multiple of eps [default: 2.5 / steps, Madry et al.'s rule].",
)
@click.option(
    "--restarts",
    type=click.IntRange(min=1, max=100),
    default=_EVAL.restarts,
    show_default=True,
    help="PGD random starts; the strongest is kept.",
)
@click.option(
    "--modality",
    default=_EVAL.modality,
    show_default=True,
    metavar="NAME|all|each",
    help="Modality to attack or shift; 'all' perturbs every modality together, 'each' does every modality "
    "alone and then all together.",
)
@click.option(
    "--shift",
    type=enum_choice(ShiftKind),
    default=None,
    help="Evaluate a distribution shift instead of an attack: Gaussian noise, feature dropout, a missing "
    "modality (mean, raw-zero and marginalised), av-digits' held-out speaker (runs fitted with --split speaker), "
    "or RCML's conflictive rows (conflict: noise on some modalities of some rows, one modality of others taken "
    "from another class; the changed rows go to conflict_rows.csv).",
)
@click.option(
    "--severities",
    default=",".join(str(s) for s in _EVAL.severities),
    show_default=True,
    callback=_severities,
    metavar="S1,S2,...",
    help="Shift severities from 1 to 5 (noise: 0.2 to 1.0 standard deviations; dropout: 10% to 50% of features).",
)
@click.option(
    "--conflict-sigma",
    type=click.FloatRange(min=0, min_open=True),
    default=_EVAL.conflict_sigma,
    show_default=True,
    help="--shift conflict: noise standard deviation as a share of each feature's training range (RCML: 0.5 on "
    "[0, 1]-scaled inputs).",
)
@click.option(
    "--conflict-noise-share",
    type=click.FloatRange(0, 1),
    default=_EVAL.conflict_noise_share,
    show_default=True,
    help="--shift conflict: share of test rows given noise at severity 3 (severity s scales it by s/3).",
)
@click.option(
    "--conflict-swap-share",
    type=click.FloatRange(0, 1),
    default=_EVAL.conflict_swap_share,
    show_default=True,
    help="--shift conflict: share of test rows with one modality from a row of another class at severity 3 "
    "(severity s scales it by s/3).",
)
@click.option(
    "--samples",
    type=click.IntRange(min=1, max=10_000),
    default=_EVAL.samples,
    show_default=True,
    help="Posterior samples for scoring (deterministic models use one).",
)
@click.option(
    "--attack-samples",
    type=click.IntRange(min=1, max=1_000),
    default=_EVAL.attack_samples,
    show_default=True,
    help="Fresh posterior samples per EOT-PGD step.",
)
@click.option(
    "--mi-weight",
    type=click.FloatRange(min=0),
    default=_EVAL.mi_weight,
    show_default=True,
    help="Weight of the mutual information in the adaptive attack (NLL - weight * MI) on stochastic models; "
    "0 skips it.",
)
@click.option(
    "--seed",
    type=click.IntRange(min=0, max=MAX_SEED),
    default=_EVAL.seed,
    show_default=True,
    help="Seed of the random starts, shift noise and posterior samples.",
)
@click.option(
    "--data",
    "data_path",
    type=click.Path(path_type=Path, dir_okay=False),
    default=None,
    help="Score these labelled rows instead of the run's test split: an .npz with x_<modality> arrays of the run's "
    "widths and y in the run's labels (a new site, speaker or conflictive copy), or a .mat file.",
)
@click.option(
    "--coverage",
    type=click.FloatRange(min=0, max=1, min_open=True),
    default=_EVAL.coverage,
    show_default=True,
    help="Selective prediction: share of validation rows answered at the entropy threshold behind each row's "
    "accuracy_at_coverage.",
)
@click.option(
    "--name", default=None, help="Folder under <run>/evaluations [default: the attack or shift, made unique]."
)
@click.option("--overwrite", is_flag=True, help="Replace the evaluation already named --name.")
@trust_pickle_option
@device_option
@quiet_option
@handle_errors
def evaluate(
    run: Path | None,
    attack: str,
    eps: tuple[float, ...],
    norm: str,
    steps: int,
    step_size: float | None,
    restarts: int,
    modality: str,
    shift: str | None,
    severities: tuple[int, ...],
    conflict_sigma: float,
    conflict_noise_share: float,
    conflict_swap_share: float,
    samples: int,
    attack_samples: int,
    mi_weight: float,
    coverage: float,
    data_path: Path | None,
    seed: int,
    name: str | None,
    overwrite: bool,
    trust_pickle: bool,
    device: str,
    quiet: bool,
) -> None:
    """Attack or shift a run's test set and score it; prints the evaluation folder's path.

    RUN is a run directory; without it, the latest complete run under runs/ is used, or the default model is
    fitted first. Results go to RUN/evaluations/NAME: rows.json, rows.csv, checks.json and figures/*.png.
    """
    config = EvaluationConfig(
        attack=AttackKind(attack),
        eps=eps,
        steps=steps,
        step_size=step_size,
        restarts=restarts,
        norm=NormKind(norm),
        modality=modality,
        shift=ShiftKind(shift) if shift else None,
        severities=severities,
        conflict_sigma=conflict_sigma,
        conflict_noise_share=conflict_noise_share,
        conflict_swap_share=conflict_swap_share,
        samples=samples,
        attack_samples=attack_samples,
        mi_weight=mi_weight,
        coverage=coverage,
        seed=seed,
    )
    console = Console(stderr=True, quiet=quiet)
    loaded = load_run(_resolve_run(run, console, quiet), trust_pickle=trust_pickle, device=device)
    data = None if data_path is None else labelled_rows(data_path, loaded.input_dims, loaded.class_labels)
    with _bar(console, quiet, "evaluate", "units") as bar:
        task = bar.add_task("evaluate", total=None)
        report = evaluate_run(
            loaded,
            config,
            name=name,
            overwrite=overwrite,
            progress=lambda done, total: bar.update(task, completed=done, total=total),
            data=data,
        )
    console.print(report.table(), markup=False, highlight=False, soft_wrap=True)
    for line in report.check_lines():
        console.print(line, markup=False, highlight=False, soft_wrap=True)
    click.echo(str(report.path))
