"""``probfusion fit``: options -> RunConfig -> :func:`probfusion.api.fit`; prints the run's path on stdout."""

from __future__ import annotations

import dataclasses
import logging
import math
from pathlib import Path

import click
from click.core import ParameterSource
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from probfusion.api import fit as fit_run
from probfusion.api import next_run_dir, resume_config
from probfusion.cli.options import (
    enum_choice,
    handle_errors,
    mkl_basis_rank_option,
    mkl_multiclass_option,
    quiet_option,
    seed_option,
    trust_pickle_option,
)
from probfusion.config import (
    BayesConfig,
    DataConfig,
    EvidentialConfig,
    FusionConfig,
    GPMKLConfig,
    JWAEConfig,
    RunConfig,
    TrainConfig,
)
from probfusion.errors import CheckpointError
from probfusion.options import (
    AlignmentKind,
    Calibration,
    DeviceKind,
    EvidentialFeatures,
    FusionKind,
    HeadKind,
    InferenceKind,
    KernelFeatures,
    MKLFormulation,
    MKLMulticlass,
    PriorPenalty,
    RankPrior,
    SplitKind,
)
from probfusion.runs.fit_folder import resumable
from probfusion.runs.resume import CHECKPOINT_SECONDS
from probfusion.runs.run_dir import RunDirectory

_DATA, _JWAE, _FUSION, _TRAIN = DataConfig(), JWAEConfig(), FusionConfig(), TrainConfig()
_POOL_DEFAULT = {None: "on where the training rows are in memory", True: "on", False: "off"}[_FUSION.linear_pool]
_BAYES, _GP, _EVID = BayesConfig(), GPMKLConfig(), EvidentialConfig()


def _not_nan(value: float, flag: str) -> float:
    """A usage error for NaN, which click's FloatRange lets through (every comparison with it is false)."""
    if value != value:
        raise click.BadParameter(f"{flag} must be a number of seconds, 0 or more; got nan.")
    return value


# The only options --resume takes: none of them changes the result.
_RESUME_OPTIONS = frozenset({"out", "resume", "quiet", "trust_pickle", "checkpoint_seconds"})


def _ard_prior(ctx: click.Context, param: click.Parameter, value: str) -> tuple[float, float]:
    """``A0,B0`` -> ``(a0, b0)``, both finite and positive."""
    parts = [p.strip() for p in value.split(",")]
    try:
        shape, rate = (float(p) for p in parts) if len(parts) == 2 else (math.nan, math.nan)
    except ValueError:
        shape = rate = math.nan
    if not (math.isfinite(shape) and math.isfinite(rate) and shape > 0 and rate > 0):
        raise click.BadParameter(
            f"expected the Gamma shape and rate as two positive numbers A0,B0 (such as 1,1 or 0.01,0.01); "
            f"got {value!r}.",
            ctx,
            param,
        )
    return shape, rate


def _rank(rank: int | None, max_rank: int | None) -> int | None:
    # None leaves the rank to FusionConfig's rule (resolve_config), as in the Python API: one intent, one model.
    return max_rank if max_rank is not None else rank


@click.command("fit")
@click.option(
    "--data",
    "data_name",
    default=_DATA.name,
    show_default=True,
    metavar="NAME|PATH",
    help="A dataset from `probfusion datasets`, or a path to an .npz (x_<modality>, y, optional split), a "
    "multi-view .mat (views in a cell array, labels) or a MultiBench .pkl.",
)
@click.option(
    "--modalities",
    default=None,
    metavar="A,B,...",
    help="Comma-separated modalities to use, in order (default: all). One modality gives a unimodal baseline.",
)
@click.option(
    "--split",
    type=enum_choice(SplitKind),
    default=_DATA.split.value,
    show_default=True,
    help="Train/validation/test split.",
)
@click.option("--held-out-speaker", default=None, help="Test speaker for --split speaker (default: the dataset's).")
@trust_pickle_option
@click.option(
    "--model",
    type=enum_choice(FusionKind),
    default=_FUSION.model.value,
    show_default=True,
    help="Fusion: low-rank (lmf), full tensor (tfn), concatenation (concat), the GP + MKL baseline (gp-mkl), or "
    "evidential late fusion of per-modality Dirichlet opinions: Dempster-Shafer (tmc) or averaged evidence (rcml).",
)
@click.option(
    "--rank",
    type=click.IntRange(min=1),
    default=_FUSION.rank,
    help="LMF rank r (number of rank components), also the maximum rank under a Bayesian rank prior "
    "[default: classes, clipped to 16..128, whatever the rank prior].",
)
@click.option(
    "--rank-prior",
    type=enum_choice(RankPrior),
    default=_FUSION.rank_prior.value,
    show_default=True,
    help="Prior on the LMF rank factors; 'none' gives point estimates.",
)
@click.option(
    "--max-rank",
    type=click.IntRange(min=1),
    default=None,
    help="Maximum rank under a Bayesian rank prior (ARD prunes it to the effective rank); sets --rank "
    "[default: as --rank].",
)
@click.option(
    "--ard-prior",
    default=f"{_BAYES.prior_shape:g},{_BAYES.prior_rate:g}",
    show_default=True,
    callback=_ard_prior,
    metavar="A0,B0",
    help="ard: shape a0 and rate b0 of the Gamma prior on each component's precision lambda_i (prior mean "
    "a0 / b0; 0.01,0.01 is the classic vague choice).",
)
@click.option(
    "--posterior-samples",
    type=click.IntRange(min=1),
    default=_BAYES.posterior_samples,
    show_default=True,
    help="Monte Carlo samples of the posterior predictive (Bayesian rank priors).",
)
@click.option(
    "--inference",
    type=enum_choice(InferenceKind),
    default=_BAYES.inference.value,
    show_default=True,
    help="Posterior approximation of the Bayesian head; nuts is for small problems only.",
)
@click.option(
    "--train-encoders/--frozen-encoders",
    default=_BAYES.train_encoders,
    help="svi: train the encoders with the head's variational posterior, end to end (--train-encoders), or fit the "
    "posterior on a deterministic stage's frozen latents (--frozen-encoders) [default: end to end for svi; laplace "
    "and nuts always use frozen latents].",
)
@click.option(
    "--gp-features",
    type=enum_choice(KernelFeatures),
    default=_GP.features.value,
    show_default=True,
    help="gp-mkl: kernels on the jWAE latents or on the standardised inputs.",
)
@click.option(
    "--mkl-formulation",
    type=enum_choice(MKLFormulation),
    default=_GP.formulation.value,
    show_default=True,
    help="gp-mkl: the convex problem setting the kernel weights (alignment is cheaper for large n).",
)
@mkl_multiclass_option
@mkl_basis_rank_option
@click.option(
    "--evidential-features",
    type=enum_choice(EvidentialFeatures),
    default=_EVID.features.value,
    show_default=True,
    help="tmc/rcml: evidence networks on the jWAE latents (encoders trained jointly with the jWAE loss) or on "
    "the standardised inputs (the papers' setting, no jWAE).",
)
@click.option(
    "--evidential-hidden-dim",
    type=click.IntRange(min=0),
    default=_EVID.hidden_dim,
    show_default=True,
    help="tmc/rcml: hidden width of each evidence network; 0 makes it linear.",
)
@click.option(
    "--annealing-epochs",
    type=click.IntRange(min=1),
    default=None,
    help="tmc/rcml: epochs T of the KL weight min(1, t/T) [default: 10 for tmc, 50 for rcml].",
)
@click.option(
    "--conflict-weight",
    type=click.FloatRange(min=0),
    default=_EVID.conflict_weight,
    show_default=True,
    help="rcml: weight of the conflictive-degree term between views.",
)
@click.option(
    "--head",
    type=enum_choice(HeadKind),
    default=_FUSION.head.value,
    show_default=True,
    help="Classifier head after fusion: mlp (ReLU, then linear) or linear; '--model concat --head linear' is "
    "additive late fusion. For Bayesian and gp-mkl runs: the head of the first stage, which trains the encoders.",
)
@click.option(
    "--input-linear/--no-input-linear",
    default=_FUSION.input_linear,
    help="lmf, tfn, concat, and --rank-prior with the SVI head trained end to end: add a logistic regression on "
    "the concatenated inputs to the logits (of every posterior draw); with a handful of rows per class and "
    "--no-linear-pool it carries the model [default: off; the pool brings the regression in instead].",
)
@click.option(
    "--linear-pool/--no-linear-pool",
    default=_FUSION.linear_pool,
    help="lmf (also with --rank-prior: every posterior draw), tfn, concat: pool the logits after training with a "
    "logistic regression on the concatenated inputs (its C, the pool weight and the temperature chosen on "
    "validation; metrics.json reports both models' scores) "
    f"[default: {_POOL_DEFAULT}].",
)
@click.option(
    "--fused-dim",
    type=click.IntRange(min=1),
    default=_FUSION.fused_dim,
    show_default=True,
    help="Width h of the fused representation [default: max(32, classes)].",
)
@click.option(
    "--latent-dim",
    type=click.IntRange(min=1),
    default=_JWAE.latent_dim,
    show_default=True,
    help="Latent width d of each modality's jWAE encoder [default: classes, clipped to 16..64].",
)
@click.option(
    "--prior-penalty",
    type=enum_choice(PriorPenalty),
    default=_JWAE.prior_penalty.value,
    show_default=True,
    help="jWAE divergence to the N(0, I) prior: sliced Wasserstein, IMQ-MMD, or none.",
)
@click.option(
    "--prior-weight",
    type=click.FloatRange(min=0),
    default=_JWAE.prior_weight,
    show_default=True,
    help="Weight of the prior penalty (0 switches it off).",
)
@click.option(
    "--alignment",
    type=enum_choice(AlignmentKind),
    default=_JWAE.alignment.value,
    show_default=True,
    help="jWAE term pulling the paired latents of a sample together.",
)
@click.option(
    "--alignment-weight",
    type=click.FloatRange(min=0),
    default=_JWAE.alignment_weight,
    show_default=True,
    help="Weight of the alignment term (0 switches it off).",
)
@click.option(
    "--reconstruction-weight",
    type=click.FloatRange(min=0),
    default=_JWAE.reconstruction_weight,
    show_default=True,
    help="Weight of the reconstruction term (0 switches it off).",
)
@click.option(
    "--epochs",
    type=click.IntRange(min=1),
    default=_TRAIN.epochs,
    show_default=True,
    help="Maximum number of epochs (early stopping on validation NLL may end sooner) [default: enough for "
    f"{_TRAIN.min_steps} optimizer steps, 60..1000].",
)
@click.option(
    "--patience",
    type=click.IntRange(min=1),
    default=_TRAIN.patience,
    show_default=True,
    help="Epochs without a better validation NLL before stopping [default: max(15, epochs // 10)].",
)
@click.option(
    "--calibration",
    type=enum_choice(Calibration),
    default=_TRAIN.calibration.value,
    show_default=True,
    help="temperature: early stopping on the validation NLL after temperature scaling (T >= 1), and the "
    "deterministic kinds' logits divided by that T; none: the raw validation NLL, no recalibration.",
)
@click.option(
    "--batch-size", type=click.IntRange(min=2), default=_TRAIN.batch_size, show_default=True, help="Minibatch size."
)
@click.option(
    "--lr",
    type=click.FloatRange(min=0, min_open=True),
    default=_TRAIN.learning_rate,
    show_default=True,
    help="Adam learning rate.",
)
@click.option(
    "--weight-decay",
    type=click.FloatRange(min=0),
    default=_TRAIN.weight_decay,
    help=f"Adam L2 weight decay [default: {_TRAIN.weight_decay_rows:g} / training rows, e.g. 1e-3 at 500 rows].",
)
@seed_option
@click.option(
    "--device",
    type=enum_choice(DeviceKind),
    default=DeviceKind.AUTO.value,
    show_default=True,
    help="Where to compute: auto picks CUDA when available.",
)
@click.option(
    "--out",
    type=click.Path(path_type=Path),
    default=None,
    help="Run directory to create [default: a new folder under runs/ named after data and model].",
)
@click.option("--overwrite", is_flag=True, help="Replace the run already in --out.")
@click.option("--resume", is_flag=True, help="Continue the unfinished run in --out with its stored config.")
@click.option(
    "--checkpoint-seconds",
    type=click.FloatRange(min=0),
    callback=lambda ctx, param, value: _not_nan(value, "--checkpoint-seconds"),
    default=CHECKPOINT_SECONDS,
    show_default=True,
    help="Least time between two resume checkpoints (0: every epoch); it does not change the result.",
)
@quiet_option
@click.pass_context
@handle_errors
def fit(
    ctx: click.Context,
    data_name: str,
    modalities: str | None,
    split: str,
    held_out_speaker: str | None,
    trust_pickle: bool,
    model: str,
    rank: int | None,
    rank_prior: str,
    max_rank: int | None,
    ard_prior: tuple[float, float],
    posterior_samples: int,
    inference: str,
    train_encoders: bool | None,
    gp_features: str,
    mkl_formulation: str,
    mkl_multiclass: MKLMulticlass,
    mkl_basis_rank: int | None,
    evidential_features: str,
    evidential_hidden_dim: int,
    annealing_epochs: int | None,
    conflict_weight: float,
    head: str,
    input_linear: bool | None,
    linear_pool: bool | None,
    fused_dim: int,
    latent_dim: int,
    prior_penalty: str,
    prior_weight: float,
    alignment: str,
    alignment_weight: float,
    reconstruction_weight: float,
    epochs: int,
    patience: int,
    calibration: str,
    batch_size: int,
    lr: float,
    weight_decay: float | None,
    seed: int,
    device: str,
    out: Path | None,
    overwrite: bool,
    resume: bool,
    checkpoint_seconds: float,
    quiet: bool,
) -> None:
    """Fit a fusion model and write a run directory; prints the run's path.

    With no option it fits low-rank fusion on the bundled av-digits data.
    """
    if resume:
        if out is None:
            raise click.UsageError("--resume needs --out: the folder of the run to continue.")
        if not RunDirectory(out).is_run and resumable(RunDirectory(out)) is None:
            raise CheckpointError(f"No run to resume at {out}; drop --resume to start a new run.")
        flags = {p.name: max(p.opts, key=len) for p in ctx.command.params}  # click names differ from the flags
        ignored = [
            flags[name]
            for name in ctx.params
            if name not in _RESUME_OPTIONS
            and ctx.get_parameter_source(name) in (ParameterSource.COMMANDLINE, ParameterSource.ENVIRONMENT)
        ]
        if ignored:  # the stored config wins; a silently ignored option would mislabel the resumed run
            raise click.UsageError(
                f"--resume continues the run with its stored config; drop {', '.join(ignored)} or start a new run."
            )
        config = resume_config(out)
    else:
        config = RunConfig(
            data=DataConfig(
                name=data_name,
                modalities=tuple(m.strip() for m in modalities.split(",") if m.strip()) if modalities else None,
                split=SplitKind(split),
                held_out_speaker=held_out_speaker,
            ),
            jwae=JWAEConfig(
                latent_dim=latent_dim,
                hidden_dim=_JWAE.hidden_dim,
                prior_penalty=PriorPenalty(prior_penalty),
                prior_weight=prior_weight,
                alignment=AlignmentKind(alignment),
                alignment_weight=alignment_weight,
                reconstruction_weight=reconstruction_weight,
            ),
            fusion=FusionConfig(
                model=FusionKind(model),
                rank=_rank(rank, max_rank),
                fused_dim=fused_dim,
                rank_prior=RankPrior(rank_prior),
                head=HeadKind(head),
                input_linear=input_linear,
                linear_pool=linear_pool,
            ),
            bayes=dataclasses.replace(
                _BAYES,
                posterior_samples=posterior_samples,
                inference=InferenceKind(inference),
                train_encoders=train_encoders,
                prior_shape=ard_prior[0],
                prior_rate=ard_prior[1],
            ),
            gp=dataclasses.replace(
                _GP,
                features=KernelFeatures(gp_features),
                formulation=MKLFormulation(mkl_formulation),
                multiclass=mkl_multiclass,
                basis_rank=mkl_basis_rank,
            ),
            evidential=EvidentialConfig(
                features=EvidentialFeatures(evidential_features),
                hidden_dim=evidential_hidden_dim,
                annealing_epochs=annealing_epochs,
                conflict_weight=conflict_weight,
            ),
            train=TrainConfig(
                epochs=epochs,
                patience=patience,
                batch_size=batch_size,
                learning_rate=lr,
                weight_decay=weight_decay,
                calibration=Calibration(calibration),
            ),
            seed=seed,
            device=DeviceKind(device),
        )
    out = out if out is not None else next_run_dir("runs", config)
    console = Console(stderr=True, quiet=quiet)
    with Progress(
        TextColumn("fit"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("epochs"),
        TimeElapsedColumn(),
        console=console,
        transient=True,
        disable=quiet or not console.is_terminal,
    ) as bar:
        task = bar.add_task("fit", total=config.train.epochs)
        run = fit_run(
            config,
            out,
            overwrite=overwrite,
            resume=resume,
            trust_pickle=trust_pickle,
            checkpoint_seconds=checkpoint_seconds,
            progress=lambda done, total: bar.update(task, completed=done, total=total),
        )
    test = run.metrics["test"]
    logging.getLogger("probfusion").debug("metrics: %s", run.metrics)
    console.print(
        f"{config.fusion.model.value} on {config.data.name}: test accuracy {test['accuracy']:.4f}, "
        f"NLL {test['nll']:.4f}, {run.metrics['fusion_parameters']} fusion parameters, "
        f"{run.metrics['epochs_run']} epochs"
    )
    pool = run.metrics.get("linear_pool")
    if pool is not None:  # how much of the predictive is the regression, and what each model scores alone
        console.print(
            f"logistic-regression pool: weight {pool['weight']:.2f} (C {pool['C']:g}); test accuracy of the fusion "
            f"model alone {pool['fusion_only']['test']['accuracy']:.4f}, of the regression alone "
            f"{pool['linear_only']['test']['accuracy']:.4f}"
        )
    click.echo(str(run.path))
