"""Seeded training of a deterministic multimodal classifier: Adam, jWAE loss, validation early stopping.

Early stopping reads the validation NLL after temperature scaling by default (``TrainConfig.calibration``):
the epoch kept is the one whose predictive, recalibrated by one scalar, fits the validation rows best, and a
model with a ``temperature`` buffer gets the T fitted at that epoch (:mod:`probfusion.metrics.temperature`).

Training is a free function over a model (the Pyro / GPyTorch split of model and inference). Every epoch draws
its minibatch order, dropout masks and sliced-Wasserstein projections from a seed derived from
``(seed, epoch)``, so a run resumed from a checkpoint gives exactly the metrics of an uninterrupted one.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from probfusion._shapes import Views
from probfusion.config import TrainConfig
from probfusion.encoders.jwae import JWAELoss
from probfusion.errors import ConfigError, TrainingDivergedError
from probfusion.inference.data import TensorData
from probfusion.inference.predictive import predict_probabilities
from probfusion.metrics.classification import accuracy, negative_log_likelihood
from probfusion.metrics.temperature import fit_temperature
from probfusion.options import Calibration
from probfusion.seeding import make_generator

__all__ = [
    "EpochRecord",
    "FitResult",
    "Objective",
    "TrainingState",
    "cross_entropy_objective",
    "selection_nll",
    "train_classifier",
]

logger = logging.getLogger("probfusion")


@dataclass(frozen=True)
class EpochRecord:
    """Losses (means over the epoch's minibatches) and validation metrics after one epoch.

    ``val_calibrated_nll`` is the validation NLL at the temperature ``val_temperature`` (>= 1) that minimises it;
    records stored before these fields existed load with the raw NLL and 1.
    """

    epoch: int
    loss: float
    cross_entropy: float
    jwae: float
    reconstruction: float
    prior: float
    alignment: float
    val_nll: float
    val_accuracy: float
    seconds: float
    val_calibrated_nll: float = math.nan
    val_temperature: float = 1.0


def selection_nll(record: EpochRecord, calibration: Calibration) -> float:
    """The validation NLL that early stopping compares: calibrated (``temperature``) or raw (``none``)."""
    return record.val_calibrated_nll if calibration is Calibration.TEMPERATURE else record.val_nll


@dataclass
class TrainingState:
    """Everything needed to continue training: epoch counter, early-stopping state, weights, optimiser.

    Attributes:
        epoch: Epochs completed.
        best_epoch: Epoch (1-based) with the lowest validation NLL so far (:func:`selection_nll`); 0 before the
            first epoch.
        best_val_nll: That NLL.
        epochs_without_improvement: Epochs since the best one.
        history: One record per completed epoch.
        best_weights: The model's ``state_dict`` at the best epoch.
        optimizer_state: The optimiser's ``state_dict`` after the last epoch.
    """

    epoch: int = 0
    best_epoch: int = 0
    best_val_nll: float = math.inf
    epochs_without_improvement: int = 0
    history: list[EpochRecord] = field(default_factory=list)
    best_weights: dict[str, torch.Tensor] | None = None
    optimizer_state: dict | None = None

    def finished(self, config: TrainConfig) -> bool:
        """Whether training under ``config`` (epochs and patience resolved) has run its last epoch."""
        return self.epoch >= config.epochs or self.epochs_without_improvement >= config.patience


@dataclass(frozen=True)
class FitResult:
    """Result of :func:`train_classifier`; the model holds the best-validation weights on return.

    ``temperature`` is the T set on the model (1 when the model has no ``temperature`` or calibration is off).
    """

    history: list[EpochRecord]
    best_epoch: int
    best_val_nll: float
    stopped_early: bool
    seconds: float
    temperature: float = 1.0


class Objective(Protocol):
    """The first stage's loss on one minibatch: a supervised term and the jWAE parts (added to it).

    ``epoch`` is 1-based (annealed terms read it); ``generator`` feeds the jWAE's projections and prior samples.
    """

    def __call__(
        self, model: nn.Module, views: Views, labels: Tensor, *, epoch: int, generator: torch.Generator
    ) -> tuple[Tensor, JWAELoss]:
        """Return ``(supervised loss, jWAE loss parts)``, both on one minibatch."""
        ...


def cross_entropy_objective(
    model: nn.Module, views: Views, labels: Tensor, *, epoch: int, generator: torch.Generator
) -> tuple[Tensor, JWAELoss]:
    """Cross-entropy of the logits plus the jWAE loss on the latents of the same encoder pass (the default).

    Args:
        model: A classifier with ``forward_with_latents`` and a ``jwae`` (``MultimodalClassifier``).
        views: ``{m: (b, d_m)}`` minibatch.
        labels: ``(b,)`` labels.
        epoch: Unused (nothing is annealed).
        generator: Source of the jWAE's projections and prior samples.

    Returns:
        The cross-entropy and the jWAE loss parts.
    """
    logits, latents = model.forward_with_latents(views)  # type: ignore[operator]
    return F.cross_entropy(logits, labels), model.jwae.loss(views, latents, generator=generator)  # type: ignore[union-attr, operator]


def _validation_scores(model: nn.Module, val: TensorData) -> dict[str, float]:
    """Accuracy, NLL, and the NLL at the fitted temperature (>= 1) of the mean predictive on ``val``.

    A stochastic model (a Bayesian head trained end to end) is scored with its ``validation_samples`` draws.
    """
    samples = int(getattr(model, "validation_samples", 1))
    probs = predict_probabilities(model, val, num_samples=samples).mean(dim=0)  # type: ignore[arg-type]
    fit = fit_temperature(probs.clamp_min(torch.finfo(probs.dtype).tiny).log(), val.labels)
    return {
        "val_accuracy": accuracy(probs, val.labels),
        "val_nll": negative_log_likelihood(probs, val.labels),
        "val_calibrated_nll": fit.nll,
        "val_temperature": fit.temperature,
    }


def _epoch_seed(seed: int, epoch: int) -> int:
    # A fixed large odd multiplier spreads (seed, epoch) pairs apart; any injective map would do.
    return (seed * 1_000_003 + epoch * 7_919 + 17) % (2**63)


def train_classifier(
    model: nn.Module,
    train: TensorData,
    val: TensorData,
    config: TrainConfig,
    *,
    seed: int,
    state: TrainingState | None = None,
    on_epoch_end: Callable[[TrainingState], None] | None = None,
    progress: Callable[[int, int], None] | None = None,
    objective: Objective | None = None,
) -> FitResult:
    """Minimise cross-entropy (or ``objective``'s supervised term) plus the jWAE loss with Adam.

    The best validation-NLL weights are kept (calibrated or raw NLL, as ``config.calibration`` says); with
    ``temperature`` calibration a model that has a ``temperature`` buffer (the deterministic classifier) gets the
    best epoch's T. The ``cross_entropy`` column of the history holds the supervised term of ``objective`` (the
    evidential loss for ``tmc`` and ``rcml``).

    Args:
        model: The classifier (any predictor that ``objective`` knows); trained in place.
        train: Training tensors ``{m: (n, d_m)}`` and ``(n,)`` labels.
        val: Validation tensors, used for early stopping.
        config: Epochs, batch size, learning rate, weight decay, patience.
        seed: Seed of minibatch order, dropout and penalty projections.
        state: A state to resume from (its weights are loaded by the caller; its optimiser state here).
        on_epoch_end: Called with the updated state after every epoch (checkpointing, logging).
        progress: Called with ``(epochs done, epochs total)`` after every epoch.
        objective: The minibatch loss; ``None`` is :func:`cross_entropy_objective`.

    Returns:
        The loss history and early-stopping outcome. O(epochs * n * cost of one forward pass).
    """
    if config.epochs is None or config.patience is None or config.weight_decay is None:
        raise ConfigError(
            "train_classifier needs explicit epochs, patience and weight decay; resolve the data-scaled defaults "
            "first with probfusion.config.resolve_config (probfusion.fit does)."
        )
    state = state or TrainingState()
    objective = objective or cross_entropy_objective
    # A model may split its parameters into optimiser groups (a variational guide keeps its own learning rate).
    groups = model.parameter_groups() if hasattr(model, "parameter_groups") else model.parameters()
    optimizer = torch.optim.Adam(groups, lr=config.learning_rate, weight_decay=config.weight_decay)
    if state.optimizer_state is not None:
        optimizer.load_state_dict(state.optimizer_state)
    device = train.labels.device
    started = time.perf_counter()
    stopped_early = False
    while not state.finished(config):
        epoch = state.epoch + 1
        tick = time.perf_counter()
        generator = make_generator(_epoch_seed(seed, epoch))
        sums = dict.fromkeys(("loss", "cross_entropy", "jwae", "reconstruction", "prior", "alignment"), 0.0)
        batches = 0
        model.train()
        # fork_rng keeps the caller's global RNG untouched while dropout draws from the epoch's seed.
        with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
            torch.manual_seed(_epoch_seed(seed, epoch))
            for views, labels in train.batches(config.batch_size, generator=generator, min_size=2):
                cross_entropy, parts = objective(model, views, labels, epoch=epoch, generator=generator)
                loss = cross_entropy + parts.total
                if not torch.isfinite(loss):
                    raise TrainingDivergedError(
                        f"The training loss became {float(loss.detach())} at epoch {epoch}, batch {batches + 1}; "
                        "lower the learning rate (--lr) or the jWAE weights."
                    )
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                for key, value in (
                    ("loss", loss),
                    ("cross_entropy", cross_entropy),
                    ("jwae", parts.total),
                    ("reconstruction", parts.reconstruction),
                    ("prior", parts.prior),
                    ("alignment", parts.alignment),
                ):
                    sums[key] += float(value.detach())
                batches += 1
        # A stochastic predictive draws from the global RNG: fork and seed it, so a resumed run scores alike.
        with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
            torch.manual_seed(_epoch_seed(seed, epoch) + 1)
            scores = _validation_scores(model, val)
        record = EpochRecord(
            epoch=epoch,
            **{key: value / batches for key, value in sums.items()},
            **scores,
            seconds=time.perf_counter() - tick,
        )
        state.history.append(record)
        state.epoch = epoch
        criterion = selection_nll(record, config.calibration)
        if criterion < state.best_val_nll:
            state.best_epoch, state.best_val_nll = epoch, criterion
            state.epochs_without_improvement = 0
            state.best_weights = {k: v.detach().clone() for k, v in model.state_dict().items()}
        else:
            state.epochs_without_improvement += 1
        state.optimizer_state = optimizer.state_dict()
        logger.info(
            "epoch %d: loss %.4f (ce %.4f, jwae %.4f) val nll %.4f acc %.4f",
            epoch,
            record.loss,
            record.cross_entropy,
            record.jwae,
            record.val_nll,
            record.val_accuracy,
        )
        if on_epoch_end is not None:
            on_epoch_end(state)
        if progress is not None:
            progress(epoch, config.epochs)
    if state.epochs_without_improvement >= config.patience and state.epoch < config.epochs:
        stopped_early = True
    if state.best_weights is not None:
        model.load_state_dict(state.best_weights)
    temperature = 1.0
    buffer = getattr(model, "temperature", None)
    if config.calibration is Calibration.TEMPERATURE and isinstance(buffer, Tensor) and state.best_epoch > 0:
        temperature = state.history[state.best_epoch - 1].val_temperature
        buffer.fill_(temperature)
    return FitResult(
        history=list(state.history),
        best_epoch=state.best_epoch,
        best_val_nll=state.best_val_nll,
        stopped_early=stopped_early,
        seconds=time.perf_counter() - started,
        temperature=temperature,
    )
