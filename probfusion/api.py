"""The Python API: fit a run, load it back. The CLI and the studies use only this module.

Example:
    >>> from probfusion import RunConfig, fit, load_run
    >>> run = fit(RunConfig(), "runs/example")          # doctest: +SKIP
    >>> loaded = load_run(run.path)                     # doctest: +SKIP
    >>> loaded.metrics["test"]["accuracy"]              # doctest: +SKIP
"""

from __future__ import annotations

import dataclasses
import logging
import platform
import re
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
import torch

from probfusion.config import FusionConfig, RunConfig, resolve_config
from probfusion.data.dataset import MultimodalDataset
from probfusion.data.registry import load_dataset
from probfusion.data.splits import split_dataset
from probfusion.data.transforms import Standardizer
from probfusion.errors import CheckpointError, ConfigError, ProbfusionError, RunExistsError
from probfusion.fusion.bayesian_classifier import BayesianFusionClassifier
from probfusion.fusion.classifier import MultimodalClassifier
from probfusion.inference.data import TensorData
from probfusion.inference.predictive import score_classifier
from probfusion.inference.svi import fit_bayesian_head
from probfusion.inference.training import TrainingState, train_classifier
from probfusion.options import DeviceKind, FusionKind, KernelFeatures, RankPrior
from probfusion.runs.atomic import atomic_write_csv, atomic_write_json
from probfusion.runs.checkpoint import load_module_state, read_tensors, write_tensors
from probfusion.runs.resume import load_training_state, save_training_state
from probfusion.runs.run_dir import RunDirectory
from probfusion.seeding import make_generator

__all__ = ["LoadedRun", "Run", "fit", "load_run", "next_run_dir", "read_run_config", "resolve_device"]

logger = logging.getLogger("probfusion")

_VERSIONED = ("probfusion", "torch", "pyro-ppl", "gpytorch", "cvxpy", "pot", "arviz", "numpy", "safetensors")


@dataclass(frozen=True)
class Run:
    """A finished fit: where it lives, its config and its metrics (the content of ``metrics.json``)."""

    path: Path
    config: RunConfig
    metrics: dict[str, Any]


@dataclass(frozen=True, eq=False)
class LoadedRun:
    """A run loaded back from disk, ready to predict.

    Attributes:
        path: The run directory.
        config: Its configuration.
        model: The fitted predictor in eval mode (a ``MultimodalClassifier``, a ``BayesianFusionClassifier`` or a
            ``GPMKLClassifier``); every one answers ``predictive_logits(views, num_samples) -> (s, n, c)``.
        standardizer: The per-modality standardisation fitted on the training split.
        metrics: The content of ``metrics.json``.
    """

    path: Path
    config: RunConfig
    model: torch.nn.Module
    standardizer: Standardizer
    metrics: dict[str, Any]

    def splits(self) -> tuple[MultimodalDataset, MultimodalDataset, MultimodalDataset]:
        """Rebuild the run's (train, validation, test) datasets; deterministic under the run's seed."""
        return _load_splits(self.config)

    def tensors(self, dataset: MultimodalDataset) -> TensorData:
        """Standardise ``dataset`` with the run's training statistics, on the model's device."""
        device = next(self.model.parameters()).device
        return TensorData.from_dataset(dataset, self.standardizer, device)


def resolve_device(kind: DeviceKind | str) -> torch.device:
    """Map ``auto``/``cpu``/``cuda`` to a ``torch.device``.

    Raises:
        ConfigError: If CUDA is asked for but not available.
    """
    kind = DeviceKind(kind)
    if kind is DeviceKind.CUDA and not torch.cuda.is_available():
        raise ConfigError("Device 'cuda' was asked for but no CUDA device is available; use --device cpu or auto.")
    if kind is DeviceKind.CPU or (kind is DeviceKind.AUTO and not torch.cuda.is_available()):
        return torch.device("cpu")
    return torch.device("cuda")


def next_run_dir(root: Path | str, config: RunConfig) -> Path:
    """Return a new folder under ``root`` named after the data and model (``av-digits-lmf-r4``, then ``-2``...)."""
    data = Path(config.data.name).stem if config.data.name.endswith((".npz", ".pkl", ".pickle")) else config.data.name
    stem = re.sub(r"[^A-Za-z0-9_.-]+", "-", f"{data}-{config.fusion.model.value}")
    if config.fusion.model.value == "lmf" and config.fusion.rank is not None:
        stem += f"-r{config.fusion.rank}"
    root = Path(root)
    candidate, k = root / stem, 1
    while candidate.exists():
        k += 1
        candidate = root / f"{stem}-{k}"
    return candidate


def _load_splits(config: RunConfig) -> tuple[MultimodalDataset, MultimodalDataset, MultimodalDataset]:
    dataset = load_dataset(config.data, seed=config.seed)
    return split_dataset(dataset, config.data, config.seed)


def _provenance(dims: dict[str, int], num_classes: int) -> dict[str, Any]:
    versions = {}
    for name in _VERSIONED:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    try:
        sha = (
            subprocess.run(
                ["git", "rev-parse", "HEAD"],  # noqa: S607 - git from PATH is the point
                cwd=Path(__file__).parent,
                capture_output=True,
                text=True,
                timeout=5,
                check=False,
            ).stdout.strip()
            or None
        )
    except (OSError, subprocess.SubprocessError):
        sha = None
    return {
        "versions": versions,
        "python": platform.python_version(),
        "git_sha": sha,
        "input_dims": dims,
        "num_classes": num_classes,
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }


def _stage_one_fusion(config: RunConfig) -> FusionConfig:
    """The deterministic fusion that trains the encoders; later stages (Bayesian head, GP) reuse its latents.

    For ``gp-mkl`` it is LMF at the same rank, so the GP sees exactly the latents of the LMF run with the same
    seed: the two are compared on the same latents, as the design asks.
    """
    if config.fusion.model is FusionKind.GP_MKL:
        return dataclasses.replace(config.fusion, model=FusionKind.LMF, rank_prior=RankPrior.NONE)
    return dataclasses.replace(config.fusion, rank_prior=RankPrior.NONE)


def _build_model(config: RunConfig, dims: dict[str, int], num_classes: int) -> MultimodalClassifier:
    # Initialisation draws from the global RNG inside the modules; fork it so the caller's state is untouched.
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(config.seed)
        return MultimodalClassifier(
            input_dims=dims, num_classes=num_classes, jwae=config.jwae, fusion=_stage_one_fusion(config)
        )


def _build_final_model(config: RunConfig, dims: dict[str, int], num_classes: int, num_train: int) -> torch.nn.Module:
    """An empty model of the run's final kind, ready for ``load_state_dict``."""
    if config.fusion.model is FusionKind.GP_MKL:
        from probfusion.baselines.gp import GPMKLClassifier  # cvxpy and GPyTorch: 2 s of imports only GP runs need

        return GPMKLClassifier(
            input_dims=dims, num_classes=num_classes, num_train=num_train, jwae=config.jwae, config=config.gp
        )
    if config.fusion.rank_prior is not RankPrior.NONE:
        return BayesianFusionClassifier(
            input_dims=dims,
            num_classes=num_classes,
            jwae=config.jwae,
            fusion=config.fusion,
            bayes=config.bayes,
            rank_prior=config.fusion.rank_prior,
        )
    return _build_model(config, dims, num_classes)


def _second_stage(
    config: RunConfig, model: MultimodalClassifier, tensors: dict[str, TensorData], num_classes: int
) -> tuple[torch.nn.Module, int, dict[str, Any]]:
    """Fit the Bayesian head or the GP on the trained encoders; return (model, predictive samples, metrics)."""
    if config.fusion.model is FusionKind.GP_MKL:
        from probfusion.baselines.gp_fit import fit_gp_mkl  # lazy, as in _build_final_model

        latent = config.gp.features is KernelFeatures.LATENT
        gp = fit_gp_mkl(
            tensors["train"],
            encoder=model.jwae if latent else None,
            config=config.gp,
            seed=config.seed,
            num_classes=num_classes,
        )
        extra = {
            "kernel_weights": gp.kernel_weights,
            "mkl_solver_status": gp.solver_status,
            "mkl_solver_seconds": gp.solver_seconds,
            "gp_fit_seconds": gp.fit_seconds,
        }
        return gp.model, config.gp.posterior_samples, extra
    if config.fusion.rank_prior is not RankPrior.NONE:
        bayes = fit_bayesian_head(
            model,
            tensors["train"],
            tensors["val"],
            fusion=config.fusion,
            bayes=config.bayes,
            rank_prior=config.fusion.rank_prior,
            seed=config.seed,
        )
        summary = bayes.model.rank_summary(config.bayes.posterior_samples, make_generator(config.seed))
        extra = {
            key: summary[key]
            for key in ("effective_rank", "effective_rank_interval", "components", "effective_rank_distribution")
        }
        extra.update(
            max_rank=config.fusion.rank,
            inference=config.bayes.inference.value,
            elbo_final=bayes.elbo[-1] if bayes.elbo else None,
            bayes_seconds=bayes.seconds,
        )
        return bayes.model, config.bayes.posterior_samples, extra
    return model, 1, {}


def _score(model: torch.nn.Module, data: TensorData, num_samples: int, seed: int) -> dict[str, float]:
    # Stochastic predictives draw from the global RNG; a forked, seeded RNG makes the metrics reproducible.
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return score_classifier(model, data, num_samples=num_samples)


def read_run_config(path: Path | str) -> RunConfig:
    """The :class:`RunConfig` stored in a run's ``config.json``.

    Raises:
        CheckpointError: If the file is missing, not JSON, or not a valid run config.
    """
    run = RunDirectory(Path(path))
    stored = run.read_json(run.CONFIG)
    try:
        return RunConfig.from_dict(stored["config"])
    except (KeyError, TypeError, ProbfusionError) as error:
        raise CheckpointError(f"{run.file(run.CONFIG)} is not a valid run config ({error}); re-run fit.") from None


def _resolved_fields(config: RunConfig) -> dict[str, int]:
    """The values of the data-scaled fields as this run used them (for ``metrics.json``)."""
    return {
        "epochs": config.train.epochs,
        "patience": config.train.patience,
        "latent_dim": config.jwae.latent_dim,
        "hidden_dim": config.jwae.hidden_dim,
        "rank": config.fusion.rank,
        "fused_dim": config.fusion.fused_dim,
    }


_RESOLVED = {"train": ("epochs", "patience"), "jwae": ("latent_dim", "hidden_dim"), "fusion": ("rank", "fused_dim")}


def _stored_resolved_config(
    stored: dict[str, Any], config: RunConfig, dims: dict[str, int], num_classes: int, num_train: int
) -> RunConfig:
    """The stored config with its ``None`` fields set as the run was trained: from its record, else by the rules.

    Only the fields left ``None`` come from the ``"resolved"`` record, so an edit of ``"config"`` (a moved data
    file) still counts. Runs stored before the data-scaled defaults have every such field explicit.
    """
    record = stored.get("resolved")
    if record is None:
        return resolve_config(config, input_dims=dims, num_classes=num_classes, num_train=num_train)
    try:
        trained = RunConfig.from_dict(record)
    except (TypeError, ProbfusionError) as error:
        raise CheckpointError(f"The resolved config of the run is not valid ({error}); re-run fit.") from None
    parts = {}
    for section, names in _RESOLVED.items():
        given, used = getattr(config, section), getattr(trained, section)
        values = {n: getattr(used, n) for n in names if getattr(given, n) is None}
        parts[section] = dataclasses.replace(given, **values)
    return dataclasses.replace(config, **parts)


def _check_resumable(run: RunDirectory, config: RunConfig) -> None:
    stored = read_run_config(run.path)
    if stored != config:
        a, b = stored.to_dict(), config.to_dict()
        changed = sorted(k for k in a if a[k] != b[k])
        raise CheckpointError(
            f"Cannot resume {run.path}: its config differs in {changed}; resume with the stored config "
            "(omit the other options) or start a new run."
        )
    if run.is_complete:
        raise CheckpointError(f"{run.path} is already complete; nothing to resume.")


def fit(
    config: RunConfig,
    out: Path | str,
    *,
    overwrite: bool = False,
    resume: bool = False,
    progress: Callable[[int, int], None] | None = None,
    on_epoch_end: Callable[[TrainingState], None] | None = None,
) -> Run:
    """Fit a model as ``config`` says and write the run directory ``out``.

    Data and options are checked before anything is written: a bad input leaves ``out`` untouched.

    Args:
        config: The run's configuration.
        out: The run directory to create (or to resume).
        overwrite: Replace a run already in ``out``.
        resume: Continue the unfinished run in ``out`` (its stored config must equal ``config``).
        progress: Called with ``(epochs done, epochs total)`` after every epoch.
        on_epoch_end: Called with the training state after every epoch, after the checkpoint is written.

    Returns:
        The finished run.

    Raises:
        ProbfusionError: On bad data, options, an existing run, or a checkpoint that cannot be resumed.
    """
    if overwrite and resume:
        raise ConfigError("--overwrite and --resume exclude each other; pick one.")
    device = resolve_device(config.device)
    train_set, val_set, test_set = _load_splits(config)
    run = RunDirectory(Path(out))
    if resume:
        if not run.is_run:
            raise CheckpointError(f"No run to resume at {run.path}; drop --resume to start a new run.")
        _check_resumable(run, config)
    # Everything that can fail on bad data or options happens before the folder is touched.
    standardizer = Standardizer.fit(train_set.views)
    dims = train_set.dims
    num_classes = int(train_set.num_classes or 0)
    # Fields left None (data-scaled defaults) are set here; everything below sees the resolved config.
    given = config
    config = resolve_config(config, input_dims=dims, num_classes=num_classes, num_train=train_set.num_samples)
    model = _build_model(config, dims, num_classes).to(device)
    try:
        run.prepare(overwrite=overwrite, resume=resume)
    except OSError as error:
        if isinstance(error, ProbfusionError):
            raise
        raise RunExistsError(
            f"Cannot create the run folder {run.path} ({error.strerror}); choose another --out."
        ) from None
    if not resume:
        atomic_write_json(
            run.file(run.CONFIG),
            {"config": given.to_dict(), "resolved": config.to_dict(), "provenance": _provenance(dims, num_classes)},
        )
    state = load_training_state(run, model) if resume else None

    handler = logging.FileHandler(run.file(run.LOG), encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
    logger.addHandler(handler)
    previous_level = logger.level
    # INFO must reach train.log even when the caller (a script, a notebook) never configured logging.
    logger.setLevel(logging.INFO if logger.getEffectiveLevel() > logging.INFO else logger.level)
    try:
        logger.info("%s %s: %s", "resuming" if resume else "fitting", run.path, config.to_dict())
        tensors = {
            name: TensorData.from_dataset(part, standardizer, device)
            for name, part in (("train", train_set), ("val", val_set), ("test", test_set))
        }

        def checkpoint(current: TrainingState) -> None:
            save_training_state(run, model, current)
            if on_epoch_end is not None:
                on_epoch_end(current)

        result = train_classifier(
            model,
            tensors["train"],
            tensors["val"],
            config.train,
            seed=config.seed,
            state=state,
            on_epoch_end=checkpoint,
            progress=progress,
        )
        final, num_samples, extra = _second_stage(config, model, tensors, num_classes)
        metrics: dict[str, Any] = {
            name: _score(final, data, num_samples, config.seed) for name, data in tensors.items()
        }
        metrics.update(
            fusion_parameters=final.fusion_parameter_count(),
            total_parameters=final.parameter_count(),
            best_epoch=result.best_epoch,
            epochs_run=len(result.history),
            stopped_early=result.stopped_early,
            train_seconds=sum(r.seconds for r in result.history),
            dataset=config.data.name,
            modalities=list(dims),
            model=config.fusion.model.value,
            rank=config.fusion.rank,
            rank_prior=config.fusion.rank_prior.value,
            posterior_samples=num_samples,
            resolved=_resolved_fields(config),
            **extra,
        )
        weights = {f"model.{k}": v for k, v in final.state_dict().items()}
        weights.update({k: torch.as_tensor(v) for k, v in standardizer.state().items()})
        meta = {"format": "probfusion-classifier", "input_dims": dims, "num_classes": num_classes}
        write_tensors(run.file(run.WEIGHTS), weights, {**meta, "num_train": len(tensors["train"])})
        atomic_write_csv(run.file(run.HISTORY_CSV), [dataclasses.asdict(r) for r in result.history])
        atomic_write_csv(
            run.file(run.METRICS_CSV),
            [{"split": name, **metrics[name]} for name in ("train", "val", "test")],
        )
        # metrics.json last: its presence marks the run complete.
        atomic_write_json(run.file(run.METRICS_JSON), metrics)
        logger.info("test accuracy %.4f nll %.4f", metrics["test"]["accuracy"], metrics["test"]["nll"])
    finally:
        logger.setLevel(previous_level)
        logger.removeHandler(handler)
        handler.close()
    return Run(path=run.path, config=given, metrics=metrics)


def load_run(path: Path | str, *, device: DeviceKind | str = DeviceKind.CPU) -> LoadedRun:
    """Load a finished run: config, model with its weights, standardisation and metrics.

    Raises:
        CheckpointError: If ``path`` is not a complete run, or its files are corrupt or do not match.
    """
    run = RunDirectory(Path(path))
    if not run.path.is_dir():
        raise CheckpointError(f"No run directory at {run.path}; give the folder that `probfusion fit` printed.")
    if not run.is_run:
        raise CheckpointError(f"{run.path} is not a run (no {run.CONFIG}); give a folder made by `probfusion fit`.")
    if not run.is_complete:
        raise CheckpointError(
            f"{run.path} is an unfinished run; finish it with `probfusion fit --resume --out {run.path}`."
        )
    stored = run.read_json(run.CONFIG)
    tensors, meta = read_tensors(run.file(run.WEIGHTS))
    try:
        dims = {str(k): int(v) for k, v in dict(meta["input_dims"]).items()}
        num_classes = int(meta["num_classes"])
    except (KeyError, TypeError, ValueError):
        raise CheckpointError(
            f"{run.file(run.WEIGHTS)} lacks its input dims; it was not written by probfusion."
        ) from None
    num_train = int(meta.get("num_train", 0) or 0)
    config = _stored_resolved_config(stored, read_run_config(run.path), dims, num_classes, num_train)
    model = _build_final_model(config, dims, num_classes, num_train)
    load_module_state(model, tensors, prefix="model.", source=run.file(run.WEIGHTS))
    state = {k: v.numpy() for k, v in tensors.items() if k.startswith("standardizer.")}
    try:
        standardizer = Standardizer.from_state(state, tuple(dims))
    except KeyError:
        raise CheckpointError(f"{run.file(run.WEIGHTS)} lacks the training standardisation.") from None
    if any(np.asarray(v).shape != (dims[m],) for m, v in standardizer.mean.items()):
        raise CheckpointError(f"{run.file(run.WEIGHTS)}: standardisation widths do not match the input dims.")
    model = model.to(resolve_device(device)).eval()
    return LoadedRun(
        path=run.path, config=config, model=model, standardizer=standardizer, metrics=run.read_json(run.METRICS_JSON)
    )
