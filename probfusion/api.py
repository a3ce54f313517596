"""The Python API: fit a run, load it back. The CLI and the studies use only this module.

Example:
    >>> from probfusion import RunConfig, fit, load_run
    >>> run = fit(RunConfig(), "runs/example")          # doctest: +SKIP
    >>> loaded = load_run(run.path)                     # doctest: +SKIP
    >>> loaded.metrics["test"]["accuracy"]              # doctest: +SKIP
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import platform
import re
import subprocess
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from probfusion.config import DATA_SCALED_FIELDS, RunConfig, data_scaled_values, resolve_config
from probfusion.data.dataset import MultimodalDataset
from probfusion.data.fingerprint import check_fingerprint, dataset_fingerprint, split_fingerprint
from probfusion.data.folder import FolderSubset
from probfusion.data.registry import load_dataset, registered_names
from probfusion.data.splits import split_indices
from probfusion.data.streaming import fit_standardizer
from probfusion.data.transforms import Standardizer
from probfusion.errors import CheckpointError, ConfigError, InputDataError, ProbfusionError
from probfusion.inference.data import TensorData, tensor_data
from probfusion.inference.linear_pool import fit_linear_pool, pool_state
from probfusion.inference.predictive import score_classifier
from probfusion.inference.reference import prediction_reference, reference_tensors, split_reference
from probfusion.inference.training import Objective, TrainingState, train_classifier
from probfusion.model_size import check_model_size
from probfusion.models.registry import model_spec
from probfusion.options import DeviceKind
from probfusion.runs.atomic import atomic_write_csv, atomic_write_json
from probfusion.runs.checkpoint import load_module_state, read_tensors, write_tensors
from probfusion.runs.fit_folder import begin_fit, discard, publish, resumable
from probfusion.runs.lock import run_lock
from probfusion.runs.manifest import verify_manifest, write_manifest
from probfusion.runs.resume import CHECKPOINT_SECONDS, load_training_state, save_training_state
from probfusion.runs.run_dir import RunDirectory
from probfusion.runs.weights import metadata_count, stored_standardizer, weights_header

if TYPE_CHECKING:
    from probfusion.prediction import Prediction, PredictionConfig

__all__ = [
    "LoadedRun",
    "Run",
    "fit",
    "load_run",
    "next_run_dir",
    "read_run_config",
    "resolve_device",
    "resume_config",
]

logger = logging.getLogger("probfusion")

# The files of a finished run that manifest.json fingerprints (train.log is a log, not a result).
_MANIFEST_FILES = (
    RunDirectory.CONFIG,
    RunDirectory.WEIGHTS,
    RunDirectory.CHECKPOINT,
    RunDirectory.METRICS_JSON,
    RunDirectory.METRICS_CSV,
    RunDirectory.HISTORY_CSV,
)
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
        model: The fitted predictor in eval mode (a ``MultimodalClassifier``, a ``BayesianFusionClassifier``, a
            ``GPMKLClassifier`` or an ``EvidentialClassifier``); every one answers
            ``predictive_logits(views, num_samples) -> (s, n, c)``.
        standardizer: The per-modality standardisation fitted on the training split.
        metrics: The content of ``metrics.json``.
        class_labels: The original label (int or string) of each model output ``0..c-1``; ``0..c-1`` itself for
            runs written before labels were kept.
        trust_pickle: Whether the caller of :func:`load_run` allowed opening the run's data if it is a pickle
            (never read from the run's files).
        data_fingerprint: The SHA-256 of the data and split recorded at fit time (None for older runs).
        reference: ``(val_entropy (n_val,), {m: donors (K, d_m)})`` stored at fit time for ``predict``
            (:mod:`probfusion.inference.reference`); None for older runs, which recompute it from their data.
    """

    path: Path
    config: RunConfig
    model: torch.nn.Module
    standardizer: Standardizer
    metrics: dict[str, Any]
    class_labels: tuple[int | str, ...] = ()
    trust_pickle: bool = False
    data_fingerprint: dict[str, Any] | None = None
    reference: tuple[torch.Tensor, dict[str, torch.Tensor]] | None = None

    @property
    def input_dims(self) -> dict[str, int]:
        """``{m: d_m}``: the run's modalities and input widths, in order."""
        return {m: int(np.asarray(mean).shape[0]) for m, mean in self.standardizer.mean.items()}

    @functools.cached_property
    def _splits(self) -> tuple[MultimodalDataset, MultimodalDataset, MultimodalDataset]:
        *parts, fingerprint = _load_splits(
            self.config, trust_pickle=self.trust_pickle, class_labels=self.class_labels or None
        )
        check_fingerprint(self.data_fingerprint, fingerprint, run=str(self.path), data=self.config.data.name)
        return parts[0], parts[1], parts[2]

    def predict(
        self,
        views: Mapping[str, np.ndarray],
        *,
        labels: np.ndarray | None = None,
        num_samples: int | None = None,
        config: PredictionConfig | None = None,
    ) -> Prediction:
        """Predict raw (unstandardised) rows: see :func:`probfusion.prediction.predict`.

        Args:
            views: ``{m: (n, d_m)}`` raw features of some or all of the run's modalities; an all-NaN row or a
                modality left out is predicted from the other modalities.
            labels: Optional ``(n,)`` labels, to score accuracy.
            num_samples: Posterior draws per row (overrides ``config.samples``).
            config: Coverage of the review flag, imputation, draws and seed.

        Returns:
            Probabilities ``(n, c)``, label, entropy, mutual information and flag per row.
        """
        from probfusion.data.features import check_features  # the prediction stack loads only when used
        from probfusion.prediction import PredictionConfig, predict

        config = config or PredictionConfig()
        if num_samples is not None:
            config = dataclasses.replace(config, samples=num_samples)
        return predict(self, check_features(views, self.input_dims, labels=labels, source="the given rows"), config)

    def splits(self) -> tuple[MultimodalDataset, MultimodalDataset, MultimodalDataset]:
        """Rebuild the run's (train, validation, test) datasets; deterministic under the run's seed.

        Raises:
            InputDataError: If the data or its split is not the one the run was fitted on (SHA-256 check), or
                now holds other classes than the run was trained on.
            UntrustedFileError: If the data is a pickle and :func:`load_run` was not given ``trust_pickle``.
        """
        return self._splits

    @property
    def device(self) -> torch.device:
        """Where the model's parameters live."""
        return next(self.model.parameters()).device

    def tensors(self, dataset: MultimodalDataset) -> TensorData:
        """Standardise ``dataset`` with the run's training statistics, on the model's device."""
        return TensorData.from_dataset(dataset, self.standardizer, self.device)


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
    data = config.data.name if _is_registered(config.data.name) else Path(config.data.name).stem
    stem = re.sub(r"[^A-Za-z0-9_.-]+", "-", f"{data}-{config.fusion.model.value}")
    if config.fusion.model.value == "lmf" and config.fusion.rank is not None:
        stem += f"-r{config.fusion.rank}"
    root = Path(root)
    candidate, k = root / stem, 1
    while candidate.exists() or RunDirectory(candidate).partial.path.exists():
        k += 1
        candidate = root / f"{stem}-{k}"
    return candidate


def _load_splits(
    config: RunConfig, *, trust_pickle: bool, class_labels: tuple[int | str, ...] | None = None
) -> tuple[MultimodalDataset, MultimodalDataset, MultimodalDataset, dict[str, Any]]:
    """(train, validation, test, fingerprint) of the run's data; the fingerprint holds its path and SHA-256s.

    Also checks that the model the config implies fits, and (for a stored run) that the classes are its own.
    """
    dataset = load_dataset(config.data, seed=config.seed, trust_pickle=trust_pickle)
    if class_labels is not None and tuple(dataset.classes or ()) != tuple(class_labels):
        raise InputDataError(
            f"The data {config.data.name!r} now holds the classes {list(dataset.classes or ())[:10]}, but the run was "
            f"trained on {list(class_labels)[:10]}; its outputs would be read as the wrong classes. Re-run fit on "
            "this data."
        )
    parts = split_indices(dataset, config.data, config.seed)
    subsets = dataset.subset(parts.train), dataset.subset(parts.val), dataset.subset(parts.test)
    check_model_size(config, dataset.dims, int(dataset.num_classes or 0), max(len(p.labels) for p in subsets))
    fingerprint = {
        "name": config.data.name,
        "path": None if _is_registered(config.data.name) else config.data.name,
        "sha256": dataset_fingerprint(dataset),
        "split_sha256": split_fingerprint((parts.train, parts.val, parts.test)),
        "num_samples": dataset.num_samples,
    }
    return *subsets, fingerprint


def _is_registered(name: str) -> bool:
    return name.strip().lower() in registered_names()


def _with_absolute_data_path(config: RunConfig) -> RunConfig:
    """``config`` with a data path made absolute, so the run reads the same file from any working directory."""
    if _is_registered(config.data.name):
        return config
    absolute = str(Path(config.data.name).expanduser().resolve())
    return dataclasses.replace(config, data=dataclasses.replace(config.data, name=absolute))


def _provenance(dims: dict[str, int], num_classes: int, data: dict[str, Any]) -> dict[str, Any]:
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
        "data": data,
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }


def _build_model(config: RunConfig, dims: dict[str, int], num_classes: int) -> torch.nn.Module:
    """The first-stage model of the run's kind (:mod:`probfusion.models`), which trains the encoders."""
    # Initialisation draws from the global RNG inside the modules; fork it so the caller's state is untouched.
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(config.seed)
        return model_spec(config).build(config, dims, num_classes)


def _build_final_model(config: RunConfig, dims: dict[str, int], num_classes: int, num_train: int) -> torch.nn.Module:
    """An empty model of the run's final kind, ready for ``load_state_dict``."""
    return model_spec(config).load(config, dims, num_classes, num_train)


def _second_stage(
    config: RunConfig, model: torch.nn.Module, tensors: dict[str, TensorData], num_classes: int
) -> tuple[torch.nn.Module, int, dict[str, Any]]:
    """The kind's second stage (Bayesian head, GP) on the trained encoders: (model, predictive samples, metrics)."""
    stage = model_spec(config).second_stage
    if stage is None:
        return model, 1, {}
    result = stage(config, model, tensors, num_classes)
    return result.model, result.posterior_samples, result.metrics


def _objective(config: RunConfig, num_train: int) -> Objective | None:
    make = model_spec(config).objective
    return None if make is None else make(config, num_train)


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
    for section, names in DATA_SCALED_FIELDS.items():
        given, used = getattr(config, section), getattr(trained, section)
        values = {n: getattr(used, n) for n in names if getattr(given, n) is None}
        parts[section] = dataclasses.replace(given, **values)
    return dataclasses.replace(config, **parts)


def _stored_fingerprint(run: RunDirectory, stored: dict[str, Any] | None = None) -> dict[str, Any] | None:
    """The data fingerprint in a run's ``config.json`` (``stored``, if already read); None for older runs."""
    stored = run.read_json(run.CONFIG) if stored is None else stored
    provenance = stored.get("provenance")
    data = provenance.get("data") if isinstance(provenance, dict) else None
    if data is None:
        return None
    if not isinstance(data, dict) or not all(isinstance(data.get(k), str) for k in ("sha256", "split_sha256")):
        raise CheckpointError(f"{run.file(run.CONFIG)} has a malformed data fingerprint; re-run fit.")
    return data


def resume_config(out: Path | str) -> RunConfig:
    """The stored config of the unfinished run that ``fit(..., resume=True)`` into ``out`` would continue.

    Raises:
        CheckpointError: If there is no unfinished run for ``out``, or its config is unreadable.
    """
    target = RunDirectory(Path(out))
    source = resumable(target)
    if source is None:
        if target.is_complete:
            raise CheckpointError(f"{target.path} is already complete; nothing to resume.")
        raise CheckpointError(f"No run to resume at {target.path}; drop --resume to start a new run.")
    return read_run_config(source.path)


def _check_resumable(work: RunDirectory, config: RunConfig, fingerprint: dict[str, Any]) -> None:
    stored = _with_absolute_data_path(read_run_config(work.path))
    if stored != config:
        a, b = stored.to_dict(), config.to_dict()
        changed = sorted(k for k in a if a[k] != b[k])
        raise CheckpointError(
            f"Cannot resume {work.path}: its config differs in {changed}; resume with the stored config "
            "(omit the other options) or start a new run."
        )
    check_fingerprint(_stored_fingerprint(work), fingerprint, run=str(work.path), data=config.data.name)


@contextmanager
def _run_log(work: RunDirectory) -> Iterator[None]:
    """Copy the ``probfusion`` log to ``train.log`` inside ``work`` for the block."""
    handler = logging.FileHandler(work.file(work.LOG), encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
    logger.addHandler(handler)
    previous_level = logger.level
    # INFO must reach train.log even when the caller (a script, a notebook) never configured logging.
    logger.setLevel(logging.INFO if logger.getEffectiveLevel() > logging.INFO else logger.level)
    try:
        yield
    finally:
        logger.setLevel(previous_level)
        logger.removeHandler(handler)
        handler.close()


def _fit_pool(
    model: torch.nn.Module,
    tensors: dict[str, TensorData],
    config: RunConfig,
    *,
    num_samples: int,
    fusion_temperature: float | None,
) -> dict[str, Any]:
    """Fit the logistic-regression pool into ``model``; ``{"linear_pool": ...}`` with each model's own scores.

    ``fusion_temperature`` is the deterministic model's T before the pool (``None`` for a Bayesian model).
    """
    pool, record = fit_linear_pool(
        model, tensors["train"], tensors["val"], config.fusion, num_samples=num_samples, seed=config.seed
    )
    tempered = fusion_temperature is not None
    alone = {"fusion_only": (0.0, fusion_temperature), "linear_only": (1.0, 1.0 if tempered else None)}
    for key, (weight, temperature) in alone.items():
        with pool_state(model, weight=weight, temperature=temperature):
            record[key] = {name: _score(model, data, num_samples, config.seed) for name, data in tensors.items()}
    record["fusion_temperature"] = fusion_temperature
    logger.info("linear pool: w %.2f, C %g, T %.3f", pool.weight, record["C"], pool.temperature)
    return {"linear_pool": record}


def _train_into(
    work: RunDirectory,
    config: RunConfig,
    model: torch.nn.Module,
    tensors: dict[str, TensorData],
    standardizer: Standardizer,
    *,
    class_labels: list[Any],
    progress: Callable[[int, int], None] | None,
    on_epoch_end: Callable[[TrainingState], None] | None,
    checkpoint_seconds: float,
) -> dict[str, Any]:
    """Train (or continue training) ``model`` in the staging folder ``work`` and write every file of the run."""
    dims, num_classes = {m: int(mean.shape[0]) for m, mean in standardizer.mean.items()}, model.num_classes
    state = load_training_state(work, model, train=config.train) if work.file(work.CHECKPOINT).is_file() else None
    last_write = time.monotonic()

    def checkpoint(current: TrainingState) -> None:
        nonlocal last_write
        # Every epoch's state is a valid resume point; writing it each epoch was about 30 % of a small set's fit
        # (MSRC-v1: 242 tensors serialised and fsynced per epoch), so at most one write per checkpoint_seconds,
        # and the last epoch's always: the finished run keeps it.
        if current.finished(config.train) or time.monotonic() - last_write >= checkpoint_seconds:
            save_training_state(work, model, current)
            last_write = time.monotonic()
        if on_epoch_end is not None:
            on_epoch_end(current)

    logger.info("%s %s: %s", "resuming" if state else "fitting", work.path, config.to_dict())
    result = train_classifier(
        model,
        tensors["train"],
        tensors["val"],
        config.train,
        seed=config.seed,
        state=state,
        on_epoch_end=checkpoint,
        progress=progress,
        objective=_objective(config, len(tensors["train"])),
    )
    final, num_samples, extra = _second_stage(config, model, tensors, num_classes)
    # The T the stored predictive divides by: a second stage (Bayesian head, GP) does not use the first's.
    temperature = result.temperature if final is model else 1.0
    pooled = {}
    if getattr(final, "linear_pool", False):  # the pool belongs to the final predictor, after any second stage
        # The deterministic model's T before the pool; a Bayesian predictive (no temperature buffer) has none.
        before = temperature if isinstance(getattr(final, "temperature", None), torch.Tensor) else None
        pooled = _fit_pool(final, tensors, config, num_samples=num_samples, fusion_temperature=before)
        temperature = pooled["linear_pool"]["temperature"]
    metrics: dict[str, Any] = {name: _score(final, data, num_samples, config.seed) for name, data in tensors.items()}
    metrics.update(
        fusion_parameters=final.fusion_parameter_count(),
        total_parameters=final.parameter_count(),
        best_epoch=result.best_epoch,
        temperature=temperature,
        epochs_run=len(result.history),
        stopped_early=result.stopped_early,
        train_seconds=sum(r.seconds for r in result.history),
        dataset=config.data.name,
        modalities=list(dims),
        model=config.fusion.model.value,
        rank=config.fusion.rank,
        rank_prior=config.fusion.rank_prior.value,
        posterior_samples=num_samples,
        class_labels=class_labels,
        resolved=data_scaled_values(config),
        **pooled,
        **extra,
    )
    weights = {f"model.{k}": v for k, v in final.state_dict().items()}
    weights.update({k: torch.as_tensor(v) for k, v in standardizer.state().items()})
    # What predict needs from the training data (validation entropies, donor rows), so a run predicts without it.
    reference = prediction_reference(final, tensors["train"], tensors["val"], samples=num_samples, seed=0)
    weights.update(reference_tensors(reference))
    meta = {"format": "probfusion-classifier", "input_dims": dims, "num_classes": num_classes}
    meta["class_labels"] = class_labels  # the original label of each output, in order
    write_tensors(work.file(work.WEIGHTS), weights, {**meta, "num_train": len(tensors["train"])})
    atomic_write_csv(work.file(work.HISTORY_CSV), [dataclasses.asdict(r) for r in result.history])
    atomic_write_csv(
        work.file(work.METRICS_CSV), [{"split": name, **metrics[name]} for name in ("train", "val", "test")]
    )
    atomic_write_json(work.file(work.METRICS_JSON), metrics)
    logger.info("test accuracy %.4f nll %.4f", metrics["test"]["accuracy"], metrics["test"]["nll"])
    return metrics


def fit(
    config: RunConfig,
    out: Path | str,
    *,
    overwrite: bool = False,
    resume: bool = False,
    trust_pickle: bool = False,
    progress: Callable[[int, int], None] | None = None,
    on_epoch_end: Callable[[TrainingState], None] | None = None,
    checkpoint_seconds: float = CHECKPOINT_SECONDS,
) -> Run:
    """Fit a model as ``config`` says and write the run directory ``out``.

    Data and options are checked before anything is written. The run is built in a staging folder beside
    ``out`` and renamed to ``out`` only when complete (:mod:`probfusion.runs.fit_folder`): a failed fit leaves
    ``out`` as it was, a killed or interrupted one can be resumed, and ``overwrite`` replaces the old run only
    at that final rename. An exclusive lock on ``out`` (:mod:`probfusion.runs.lock`) refuses a second writer.

    Args:
        config: The run's configuration. A data path in it is stored as an absolute path.
        out: The run directory to create (or to resume).
        overwrite: Replace a run already in ``out`` (or discard an interrupted fit of it).
        resume: Continue the unfinished run of ``out`` (its stored config must equal ``config``, and the data
            must be the data it was fitted on).
        trust_pickle: Allow opening the data if it is a pickle (which can run code). Only this argument grants
            it; nothing stored in a run does.
        progress: Called with ``(epochs done, epochs total)`` after every epoch.
        on_epoch_end: Called with the training state after every epoch, after any checkpoint is written.
        checkpoint_seconds: Write the resume checkpoint after an epoch when at least this many seconds have passed
            since the last one (or since training began), and after the last epoch; ``0`` writes one every epoch,
            ``math.inf`` only the last. An interrupted fit resumes from its last checkpoint (from the start when it
            wrote none), with the same result either way.

    Returns:
        The finished run.

    Raises:
        ProbfusionError: On bad data, options, an existing run, a locked run folder, or a checkpoint or data
            that cannot be resumed.
    """
    if overwrite and resume:
        raise ConfigError("--overwrite and --resume exclude each other; pick one.")
    if isinstance(checkpoint_seconds, bool) or not (
        isinstance(checkpoint_seconds, int | float) and checkpoint_seconds >= 0  # NaN fails too; inf: the last only
    ):
        raise ConfigError(f"checkpoint_seconds must be a non-negative number of seconds; got {checkpoint_seconds!r}.")
    config = _with_absolute_data_path(config)
    device = resolve_device(config.device)
    target = RunDirectory(Path(out))
    if resume:
        resume_config(target.path)  # nothing to resume: say so before the data is loaded
    *parts, fingerprint = _load_splits(config, trust_pickle=trust_pickle)
    if isinstance(parts[0], FolderSubset) and model_spec(config).second_stage is not None:
        raise ConfigError(
            f"Model {model_spec(config).name!r} fits its second stage on every training row in memory, which a "
            "folder source streams from disk; fit it from an .npz, or pick a model without a second stage (lmf, "
            "concat, tfn, tmc or rcml)."
        )
    standardizer = fit_standardizer(parts[0])  # in chunks for a folder source
    dims, num_classes = parts[0].dims, int(parts[0].num_classes or 0)
    # Fields left None (data-scaled defaults) are set here; everything below sees the resolved config.
    given = config
    streaming = isinstance(parts[0], FolderSubset)
    if streaming and config.fusion.linear_pool:
        raise ConfigError(
            "The logistic-regression pool (linear_pool) is fitted on every training row in memory, which a folder "
            "source streams from disk; leave linear_pool unset (None) or False for a folder source."
        )
    config = resolve_config(
        config, input_dims=dims, num_classes=num_classes, num_train=parts[0].num_samples, streaming=streaming
    )
    source = resumable(target) if resume else None
    if source is not None:  # the fields left None as the interrupted fit resolved them, not as today's rules would
        stored = source.read_json(source.CONFIG)
        config = _stored_resolved_config(stored, given, dims, num_classes, parts[0].num_samples)
    model = _build_model(config, dims, num_classes).to(device)
    with run_lock(target.path):
        work = begin_fit(target, overwrite=overwrite, resume=resume)
        try:
            if resume:
                _check_resumable(work, given, fingerprint)
            else:
                provenance = _provenance(dims, num_classes, fingerprint)
                record = {"config": given.to_dict(), "resolved": config.to_dict(), "provenance": provenance}
                atomic_write_json(work.file(work.CONFIG), record)
            if work.is_complete:  # a fit killed between its last write and the final rename
                metrics = work.read_json(work.METRICS_JSON)
            else:
                tensors = {
                    name: tensor_data(part, standardizer, device)
                    for name, part in zip(("train", "val", "test"), parts, strict=True)
                }
                with _run_log(work):
                    metrics = _train_into(
                        work,
                        config,
                        model,
                        tensors,
                        standardizer,
                        class_labels=list(parts[0].classes or ()),
                        progress=progress,
                        on_epoch_end=on_epoch_end,
                        checkpoint_seconds=checkpoint_seconds,
                    )
            write_manifest(work.path, _MANIFEST_FILES)
            publish(work, target)
        except KeyboardInterrupt:
            raise  # the staging folder stays: --resume continues it
        except BaseException:
            if not resume:  # a resumed fit keeps the state it started from
                discard(work)
            raise
    return Run(path=target.path, config=given, metrics=metrics)


def load_run(path: Path | str, *, device: DeviceKind | str = DeviceKind.CPU, trust_pickle: bool = False) -> LoadedRun:
    """Load a finished run: config, model with its weights, standardisation and metrics.

    Every file listed in the run's ``manifest.json`` is checked against its SHA-256 first.

    Args:
        path: The run folder.
        device: Where to put the model.
        trust_pickle: Allow :meth:`LoadedRun.splits` to open the run's data if it is a pickle (which can run
            code). Only this argument grants it; nothing stored in the run does.

    Raises:
        CheckpointError: If ``path`` is not a complete run, or its files are corrupt, changed after the fit, or
            do not match.
    """
    run = RunDirectory(Path(path))
    if not run.is_complete and resumable(run) is not None:
        raise CheckpointError(
            f"{run.path} is an unfinished run; finish it with `probfusion fit --resume --out {run.path}`."
        )
    if not run.path.is_dir():
        raise CheckpointError(f"No run directory at {run.path}; give the folder that `probfusion fit` printed.")
    if not run.is_run:
        raise CheckpointError(f"{run.path} is not a run (no {run.CONFIG}); give a folder made by `probfusion fit`.")
    if not run.is_complete:
        raise CheckpointError(
            f"{run.path} is an unfinished run; finish it with `probfusion fit --resume --out {run.path}`."
        )
    verify_manifest(run.path)
    stored = run.read_json(run.CONFIG)
    fingerprint = _stored_fingerprint(run, stored)
    weights = run.file(run.WEIGHTS)
    tensors, meta = read_tensors(weights)
    dims, num_classes, class_labels = weights_header(meta, weights)
    num_train = metadata_count(meta.get("num_train", 0), "num_train", weights)
    config = _stored_resolved_config(stored, read_run_config(run.path), dims, num_classes, num_train)
    try:
        check_model_size(config, dims, num_classes, 2)
    except ConfigError as error:
        raise CheckpointError(f"{weights} describes a model too large to build ({error}); re-run fit.") from None
    model = _build_final_model(config, dims, num_classes, num_train)
    # The head's output width is checked here too: its weights must have the shape a c-class head has.
    load_module_state(model, tensors, prefix="model.", source=weights)
    standardizer = stored_standardizer(tensors, dims, weights)
    reference = split_reference(tensors)
    if reference is not None and (
        set(reference[1]) != set(dims)
        or any(tuple(v.shape[1:]) != (dims[m],) for m, v in reference[1].items())
        or not all(bool(torch.isfinite(t).all()) for t in (reference[0], *reference[1].values()))
    ):
        raise CheckpointError(f"{weights}: the stored prediction reference does not fit the model; re-run fit.")
    model = model.to(resolve_device(device)).eval()
    return LoadedRun(
        path=run.path,
        config=config,
        model=model,
        standardizer=standardizer,
        metrics=run.read_json(run.METRICS_JSON),
        class_labels=class_labels,
        trust_pickle=trust_pickle,
        data_fingerprint=fingerprint,
        reference=reference,
    )
