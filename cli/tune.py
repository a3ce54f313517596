"""``probfusion tune``: options -> base RunConfig + TuneConfig -> :func:`probfusion.tuning.tune`; prints the study path.

The data and model options are ``probfusion fit``'s own option objects (the same names, choices, defaults and
help), minus the ones the search space draws (rank, latent width, learning rate, epochs, ...).
"""

from __future__ import annotations

import dataclasses
import sys
from pathlib import Path

import click
import optuna
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from probfusion.cli.fit import fit as fit_command
from probfusion.cli.options import enum_choice, handle_errors, quiet_option, seed_option
from probfusion.config import RunConfig
from probfusion.options import (
    AlignmentKind,
    DeviceKind,
    FusionKind,
    HeadKind,
    InferenceKind,
    KernelFeatures,
    MKLFormulation,
    PriorPenalty,
    RankPrior,
    SplitKind,
    TuneSelection,
    parse_option,
)
from probfusion.tuning import ChoiceDimension, SearchSpace, TuneConfig, TuneProgress, default_study_dir
from probfusion.tuning import tune as tune_study

_TUNE = TuneConfig()

# `probfusion fit` options that `tune` takes as they are; the others are drawn by the search space or are fit's
# own (--out, --overwrite, --resume).
_FIT_OPTIONS = (
    "data_name",
    "modalities",
    "split",
    "held_out_speaker",
    "trust_pickle",
    "model",
    "rank_prior",
    "posterior_samples",
    "inference",
    "gp_features",
    "mkl_formulation",
    "head",
    "fused_dim",
    "prior_penalty",
    "alignment",
    "alignment_weight",
    "reconstruction_weight",
    "patience",
    "batch_size",
    "device",
)


def _reuse_fit_options(command: click.Command) -> click.Command:
    """Put ``probfusion fit``'s data and model option objects in front of ``command``'s own options."""
    params = {p.name: p for p in fit_command.params}
    command.params[:0] = [params[name] for name in _FIT_OPTIONS]
    return command


def _base_config(p: dict) -> RunConfig:
    """The base RunConfig: the library's defaults with the given options written in by field name."""
    base = RunConfig()
    modalities = tuple(m.strip() for m in p["modalities"].split(",") if m.strip()) if p["modalities"] else None
    return dataclasses.replace(
        base,
        data=dataclasses.replace(
            base.data,
            name=p["data_name"],
            modalities=modalities,
            split=SplitKind(p["split"]),
            held_out_speaker=p["held_out_speaker"],
        ),
        jwae=dataclasses.replace(
            base.jwae,
            prior_penalty=PriorPenalty(p["prior_penalty"]),
            alignment=AlignmentKind(p["alignment"]),
            alignment_weight=p["alignment_weight"],
            reconstruction_weight=p["reconstruction_weight"],
        ),
        fusion=dataclasses.replace(
            base.fusion,
            model=FusionKind(p["model"]),
            rank_prior=RankPrior(p["rank_prior"]),
            head=HeadKind(p["head"]),
            fused_dim=p["fused_dim"],
        ),
        train=dataclasses.replace(base.train, patience=p["patience"], batch_size=p["batch_size"]),
        bayes=dataclasses.replace(
            base.bayes, posterior_samples=p["posterior_samples"], inference=InferenceKind(p["inference"])
        ),
        gp=dataclasses.replace(
            base.gp, features=KernelFeatures(p["gp_features"]), formulation=MKLFormulation(p["mkl_formulation"])
        ),
        seed=p["seed"],
        device=DeviceKind(p["device"]),
    )


def _space_help() -> str:
    space = SearchSpace()
    drawn = [name for name in SearchSpace.TARGETS if getattr(space, name) is not None]
    return "; ".join(f"{name} {getattr(space, name).describe()}" for name in drawn) + (
        "; trial 0 fits the defaults, nothing drawn (and, when the model is drawn, one trial fits each other "
        "kind's defaults)"
    )


@_reuse_fit_options
@click.command("tune", epilog=f"Search space: {_space_help()}.")
@click.option(
    "--trials",
    type=click.IntRange(min=1),
    default=_TUNE.trials,
    show_default=True,
    help="Total trials of the study, over all workers and reruns (complete and pruned ones count).",
)
@click.option(
    "--workers",
    type=click.IntRange(min=1, max=64),
    default=_TUNE.workers,
    show_default=True,
    help="Local worker processes sharing the study.",
)
@click.option(
    "--storage",
    default=None,
    metavar="URL",
    help="Optuna storage URL to share the study between machines, e.g. postgresql://user:pw@host/db "
    "[default: the journal file <out>/journal.log].",
)
@click.option(
    "--study-name",
    default=None,
    help="Name of the study in the storage; the same on every machine [default: the --out folder's name].",
)
@click.option(
    "--models",
    "search_models",
    default=",".join(_TUNE.space.model.choices) if _TUNE.space.model is not None else "none",
    show_default=True,
    help="Fusion kinds the search may switch between (comma-separated, e.g. lmf,concat), each with a baseline "
    "trial of its defaults; drawn only when --model is one of them and has no rank prior. 'none' (or one kind) "
    "keeps --model; off by default, as measured it did not help (NOTES.md §24).",
)
@click.option(
    "--selection",
    type=enum_choice(TuneSelection),
    default=_TUNE.selection.value,
    show_default=True,
    help="Which trial becomes <out>/best: 'guarded' keeps the baseline (trial 0, the defaults, or with --models the "
    "kinds' baseline of lower validation NLL) unless the lowest validation NLL beats it by more than --guard-z "
    "paired standard errors; 'lowest' takes the lowest.",
)
@click.option(
    "--guard-z",
    type=click.FloatRange(min=0.0),
    default=_TUNE.guard_z,
    show_default=True,
    help="Margin of the guarded selection, in standard errors of the paired per-row validation NLL difference.",
)
@seed_option
@click.option(
    "--out",
    type=click.Path(path_type=Path, file_okay=False),
    default=None,
    help="Study folder; rerunning on it continues the study [default: runs/tune-<data>-<model>].",
)
@quiet_option
@click.pass_context
@handle_errors
def tune(ctx: click.Context, **params: object) -> None:  # fit's reused options arrive by their click names
    """Search hyperparameters on validation NLL (Optuna TPE, median pruning); prints the study folder's path.

    Trial 0 fits the given options as they are (the defaults; with --models, the next trials fit the other kinds'
    defaults); each later trial fits a run with drawn rank, latent and hidden width, prior-penalty weight, learning
    rate, weight decay, dropout, training length in optimizer steps and the input skip (and, with --models, the
    fusion kind); the test split is never scored during the search. The best trial's run
    is copied to <out>/best (usable by `probfusion evaluate`); trials.csv, study.json and
    optimization_history.png sit beside it.
    """
    p = dict(params)
    config = _base_config(p)
    kinds = [k.strip() for k in str(p["search_models"]).split(",") if k.strip() and k.strip() != "none"]
    for kind in kinds:  # an unknown kind is an error even alone
        parse_option(kind, FusionKind, name="--models kind")
    space = dataclasses.replace(_TUNE.space, model=ChoiceDimension(tuple(kinds)) if len(set(kinds)) > 1 else None)
    settings = TuneConfig(
        space=space,
        trials=p["trials"],
        workers=p["workers"],
        storage=p["storage"],
        study_name=p["study_name"],
        selection=TuneSelection(p["selection"]),
        guard_z=p["guard_z"],
    )
    out = p["out"] if p["out"] is not None else default_study_dir(config)
    quiet = bool(p["quiet"])
    # Optuna's own log ("Trial 3 finished ...") only with the group's -v, like probfusion's log on stderr.
    verbose = int(ctx.find_root().params.get("verbose") or 0)
    optuna.logging.set_verbosity(optuna.logging.INFO if verbose else optuna.logging.WARNING)
    console = Console(stderr=True, quiet=quiet)
    try:
        with Progress(
            TextColumn("tune"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("trials, best val NLL {task.fields[best]}"),
            TimeElapsedColumn(),
            console=console,
            transient=True,
            disable=quiet or not console.is_terminal,
        ) as bar:
            task = bar.add_task("tune", total=settings.trials, best="-")

            def show(state: TuneProgress) -> None:
                best = "-" if state.best_value is None else f"{state.best_value:.4f}"
                bar.update(task, completed=state.done, best=best)

            result = tune_study(config, out, settings, trust_pickle=bool(p["trust_pickle"]), progress=show)
    except KeyboardInterrupt:
        click.echo(f"Interrupted; rerun the same command to continue the study in {out}.", err=True)
        sys.exit(130)
    counts = ", ".join(f"{n} {state.lower()}" for state, n in result.n_trials.items() if n)
    if result.best_value is None:
        raise click.ClickException(
            f"No trial of the study in {result.path} completed ({counts}); see trials.csv, widen the search space "
            "or raise --trials."
        )
    params_text = (
        "the defaults, nothing drawn"
        if not result.best_params
        else ", ".join(f"{k}={v:.3g}" if isinstance(v, float) else f"{k}={v}" for k, v in result.best_params.items())
    )
    console.print(
        f"best val NLL {result.best_value:.4f} (trial {result.best_trial}: {params_text}; {result.selection_reason}); "
        f"{counts}"
    )
    click.echo(str(result.path))
