"""``probfusion predict RUN --data FILE``: classes, probabilities, uncertainties and review flags for new rows."""

from __future__ import annotations

import json
import math
from pathlib import Path

import click
from rich.console import Console

from probfusion.api import load_run
from probfusion.cli.options import (
    check_run_dir,
    device_option,
    enum_choice,
    handle_errors,
    quiet_option,
    trust_pickle_option,
)
from probfusion.data.features import load_features
from probfusion.errors import RunExistsError
from probfusion.options import PredictImputation
from probfusion.prediction import PredictionConfig, predict
from probfusion.runs.atomic import atomic_write_csv, atomic_write_json
from probfusion.runs.lock import run_lock

_CONFIG = PredictionConfig()


@click.command("predict")
@click.argument("run", type=click.Path(path_type=Path))
@click.option(
    "--data",
    "data_path",
    required=True,
    type=click.Path(path_type=Path, dir_okay=False),
    help="Rows to predict: an .npz with x_<modality> arrays of the run's widths (y optional), or a .mat file. "
    "An all-NaN row, or a modality's array left out, marks that modality missing.",
)
@click.option(
    "--out",
    type=click.Path(path_type=Path, dir_okay=False),
    default=None,
    help="CSV to write (a JSON summary goes beside it) [default: RUN/predictions/<data name>.csv].",
)
@click.option(
    "--coverage",
    type=click.FloatRange(min=0, max=1, min_open=True),
    default=_CONFIG.coverage,
    show_default=True,
    help="Share of the run's validation rows answered at the flag threshold; rows above it are flagged for review.",
)
@click.option(
    "--impute",
    type=enum_choice(PredictImputation),
    default=_CONFIG.imputation.value,
    show_default=True,
    help="Missing modality: average over training rows of it (marginal) or its training mean.",
)
@click.option(
    "--samples",
    type=click.IntRange(min=1, max=10_000),
    default=None,
    help="Posterior draws per row [default: the run's posterior samples; 1 for deterministic models].",
)
@click.option(
    "--seed",
    type=click.IntRange(min=0, max=2**31 - 2),
    default=_CONFIG.seed,
    show_default=True,
    help="Seed of the posterior draws and the donor rows.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON on stdout instead of the CSV path.")
@click.option("--overwrite", is_flag=True, help="Replace an existing --out file.")
@trust_pickle_option
@device_option
@quiet_option
@handle_errors
def predict_command(
    run: Path,
    data_path: Path,
    out: Path | None,
    coverage: float,
    impute: str,
    samples: int | None,
    seed: int,
    as_json: bool,
    overwrite: bool,
    trust_pickle: bool,
    device: str,
    quiet: bool,
) -> None:
    """Predict the rows of --data with RUN's model; prints the CSV's path.

    One CSV row per input row: predicted class (in the data's own labels), each class's probability, predictive
    entropy, mutual information, a review flag, and the modalities that were missing.
    """
    config = PredictionConfig(coverage=coverage, imputation=PredictImputation(impute), samples=samples, seed=seed)
    loaded = load_run(check_run_dir(run), trust_pickle=trust_pickle, device=device)
    batch = load_features(data_path, loaded.input_dims)
    out = out if out is not None else run / "predictions" / f"{data_path.stem}.csv"
    summary_path = out.with_suffix(".json")
    if not overwrite and (out.exists() or summary_path.exists()):
        raise RunExistsError(f"{out} already exists; pass --overwrite or choose another --out.")
    result = predict(loaded, batch, config)
    summary = {**result.summary, "predictions": str(out)}
    with run_lock(out):
        out.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_csv(out, result.rows())
        atomic_write_json(summary_path, summary)
    line = (
        f"predicted {summary['rows']} rows: {summary['flagged']} flagged for review (entropy above "
        f"{summary['threshold_entropy']:.3g}, {coverage:.0%} of validation rows answered)"
    )
    if "accuracy" in summary:
        answered = summary["accuracy_answered"]
        line += f"; accuracy {summary['accuracy']:.4f}" + ("" if math.isnan(answered) else f", {answered:.4f} answered")
    Console(stderr=True, quiet=quiet).print(line, markup=False, highlight=False, soft_wrap=True)
    click.echo(json.dumps(summary, indent=2, sort_keys=True, default=str) if as_json else str(out))
