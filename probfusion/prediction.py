r"""Apply a fitted run to new rows: classes, probabilities, uncertainties, and a flag for rows to hand to a person.

For every row the predictive probabilities :math:`\bar p = \frac1s \sum_j p_j` (s posterior draws; s = 1 for
deterministic models) give the predicted class, the predictive entropy :math:`H[\bar p]` and, for Bayesian
models, the mutual information :math:`H[\bar p] - \frac1s \sum_j H[p_j]`. A row is **flagged** when its entropy
exceeds the threshold that answers the target coverage of the run's own validation rows
(:func:`~probfusion.metrics.selective.coverage_threshold`): on rows like those, about ``coverage`` of them are
answered and the rest handed on.

A modality absent from a row (an all-NaN row, or its array left out) is handled per
:class:`~probfusion.options.PredictImputation`: ``marginal`` (default) averages the predictive over training rows
of the missing modality, as ``evaluate --shift missing`` does
(:func:`~probfusion.robustness.shifts.marginal_missing_probabilities`); ``mean`` puts the modality at its
training mean. Models that fuse per-modality opinions (``tmc``, ``rcml``:
:class:`~probfusion.fusion.protocol.PartialViewPredictor`) instead drop the view from their combination, whatever
the imputation. Rows with the same modalities absent are predicted together. Evidential models also report the
vacuity of the combined opinion per row. Cost: one forward pass per row and
draw, times the number of donor rows (32) for the marginal rows.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from probfusion.api import LoadedRun
from probfusion.data.features import FeatureBatch, label_key
from probfusion.data.fingerprint import batch_fingerprint
from probfusion.errors import ConfigError, InputDataError
from probfusion.fusion.protocol import PartialViewPredictor, VacuityPredictor
from probfusion.inference.predictive import SCORING_SEED_OFFSET, common_draw_probabilities
from probfusion.inference.reference import DONORS, prediction_reference
from probfusion.metrics import coverage_threshold, mutual_information, predictive_entropy
from probfusion.options import PredictImputation, parse_option
from probfusion.robustness.shifts import marginal_missing_probabilities

__all__ = ["Prediction", "PredictionConfig", "predict"]

_BATCH = 1024


@dataclass(frozen=True)
class PredictionConfig:
    """How ``probfusion predict`` scores rows.

    Attributes:
        coverage: Share of the run's validation rows that the flag threshold answers, in (0, 1].
        imputation: How an absent modality is handled: ``marginal`` or ``mean``.
        samples: Posterior draws per row; ``None`` takes the run's own ``posterior_samples``.
        seed: Seed of the posterior draws and of the donor rows.
    """

    coverage: float = 0.95
    imputation: PredictImputation = PredictImputation.MARGINAL
    samples: int | None = None
    seed: int = 0

    def __post_init__(self) -> None:
        object.__setattr__(self, "imputation", parse_option(self.imputation, PredictImputation, name="imputation"))
        if not (isinstance(self.coverage, int | float) and 0.0 < self.coverage <= 1.0):
            raise ConfigError(f"PredictionConfig.coverage must lie in (0, 1]; got {self.coverage!r}.")
        if self.samples is not None and not 1 <= self.samples <= 10_000:
            raise ConfigError(f"PredictionConfig.samples must lie in [1, 10000]; got {self.samples}.")


@dataclass(frozen=True)
class Prediction:
    """One row per input row.

    Attributes:
        classes: The class labels, as the run's data stored them, in probability-column order.
        probabilities: ``(n, c)`` posterior-mean predictive probabilities.
        entropy: ``(n,)`` predictive entropy (nats).
        mutual_information: ``(n,)`` mutual information (nats); zero for deterministic models.
        vacuity: ``(n,)`` uncertainty mass ``c / S`` of the combined opinion (evidential models), else None.
        flag: ``(n,)`` whether the row's entropy exceeds ``threshold``.
        threshold: The entropy threshold chosen on the run's validation rows.
        absent: ``{m: (n,) bool}`` rows where modality ``m`` was missing.
        labels: ``(n,)`` labels given with the rows, or None.
        summary: What was scored and how (run, data fingerprint, coverage, counts, accuracy when labelled).
    """

    classes: tuple[Any, ...]
    probabilities: np.ndarray
    entropy: np.ndarray
    mutual_information: np.ndarray
    vacuity: np.ndarray | None
    flag: np.ndarray
    threshold: float
    absent: Mapping[str, np.ndarray]
    labels: np.ndarray | None
    summary: dict[str, Any] = field(default_factory=dict)

    @property
    def label(self) -> np.ndarray:
        """``(n,)`` predicted class labels (the run's original label values)."""
        return np.asarray(self.classes, dtype=object)[self.probabilities.argmax(axis=1)]

    def rows(self) -> list[dict[str, Any]]:
        """Plain rows for a CSV: index, predicted class, each class's probability, uncertainties, flag, missing."""
        out = []
        for i, label in enumerate(self.label):
            row: dict[str, Any] = {"row": i, "predicted": label}
            row.update({f"p_{c}": float(p) for c, p in zip(self.classes, self.probabilities[i], strict=True)})
            row.update(entropy=float(self.entropy[i]), mutual_information=float(self.mutual_information[i]))
            if self.vacuity is not None:
                row["vacuity"] = float(self.vacuity[i])
            row.update(flag=bool(self.flag[i]), missing=";".join(m for m, a in self.absent.items() if a[i]))
            if self.labels is not None:
                row.update(label=self.labels[i], correct=label_key(self.labels[i]) == label_key(label))
            out.append(row)
        return out


def _standardised(run: LoadedRun, batch: FeatureBatch) -> dict[str, torch.Tensor]:
    if list(batch.views) != list(run.input_dims):
        raise InputDataError(f"{batch.source} was checked against other modalities; expected {list(run.input_dims)}.")
    out = {}
    for m, x in batch.views.items():
        mean, std = (np.asarray(s[m], dtype=np.float64) for s in (run.standardizer.mean, run.standardizer.std))
        z = (x - mean) / std
        z[~batch.present[m]] = 0.0  # the training mean; replaced below for the marginal
        if not np.isfinite(z).all() or np.abs(z).max(initial=0.0) > np.finfo(np.float32).max:
            raise InputDataError(
                f"{batch.source}: modality {m!r} is too large to standardise in float32; check its units."
            )
        out[m] = torch.from_numpy(z.astype(np.float32)).to(run.device)
    return out


def _reference(run: LoadedRun, samples: int, seed: int) -> tuple[np.ndarray, dict[str, torch.Tensor]]:
    """The validation entropies (for the flag threshold) and standardised donor rows of the training split.

    Stored with the run at fit time for the default draws and seed; recomputed from the run's data the same way
    (:func:`~probfusion.inference.reference.prediction_reference`) for runs stored without them, or when other
    draws or another seed are asked for.
    """
    stored = run.reference
    if stored is None or samples != int(run.metrics.get("posterior_samples", 1) or 1) or seed != 0:
        train, val, _ = run.splits()
        stored = prediction_reference(run.model, run.tensors(train), run.tensors(val), samples=samples, seed=seed)
    return stored[0].cpu().numpy(), {m: x.to(run.device) for m, x in stored[1].items()}


def predict(run: LoadedRun, batch: FeatureBatch, config: PredictionConfig | None = None) -> Prediction:
    """Predict every row of ``batch`` with ``run``'s model (see the module docstring).

    Args:
        run: A loaded run (:func:`probfusion.api.load_run`); its data is read for the validation threshold and
            the donor rows (the SHA-256 check of the run applies).
        batch: Rows checked against the run's modalities (:func:`probfusion.data.features.load_features`).
        config: Coverage, imputation, draws and seed.

    Returns:
        The predictions, with a summary of what was scored.
    """
    config = config or PredictionConfig()
    samples = config.samples or int(run.metrics.get("posterior_samples", 1) or 1)
    run.model.eval()
    views = _standardised(run, batch)
    val_entropy, donors = _reference(run, samples, config.seed)
    seed = config.seed + SCORING_SEED_OFFSET  # the draws evaluate scores its rows under
    threshold = coverage_threshold(val_entropy, config.coverage)
    absent = {m: ~p for m, p in batch.present.items()}
    patterns: dict[tuple[str, ...], list[int]] = {}
    for i in range(batch.num_rows):
        patterns.setdefault(tuple(m for m in views if absent[m][i]), []).append(i)
    n = batch.num_rows
    probs = torch.empty(samples, n, 0)
    vacuity = np.full(n, np.nan) if isinstance(run.model, VacuityPredictor) else None
    for gone, rows in patterns.items():
        index = torch.as_tensor(rows)
        part = {m: x[index.to(x.device)] for m, x in views.items()}
        if gone and isinstance(run.model, PartialViewPredictor):  # drop the view from the combination
            with torch.no_grad():
                logits = run.model.partial_predictive_logits({m: x for m, x in part.items() if m not in gone})
            got = logits.softmax(dim=-1).double()
            if vacuity is not None:  # logits are log alpha: the vacuity is c / sum(alpha)
                vacuity[rows] = (logits.shape[-1] / logits[0].exp().sum(-1)).double().cpu().numpy()
        elif gone and config.imputation is PredictImputation.MARGINAL:
            chunks = [
                marginal_missing_probabilities(
                    run.model,
                    {m: x[i : i + _BATCH // DONORS] for m, x in part.items()},
                    modalities=gone,
                    donors=donors,
                    num_samples=samples,
                    generator=torch.Generator().manual_seed(seed),
                ).double()
                for i in range(0, len(rows), _BATCH // DONORS)
            ]
            got = torch.cat(chunks, dim=1)
        else:
            got = common_draw_probabilities(run.model, part, samples, seed)
        if vacuity is not None and not gone:
            with torch.no_grad():
                vacuity[rows] = run.model.vacuity(part).double().cpu().numpy()
        if probs.shape[-1] == 0:
            probs = torch.zeros(got.shape[0], n, got.shape[-1], dtype=torch.float64)
        probs[:, index] = got.cpu()
    mean = probs.mean(dim=0)
    entropy = predictive_entropy(probs).numpy()
    classes = tuple(run.class_labels) or tuple(range(mean.shape[-1]))
    result = Prediction(
        classes=classes,
        probabilities=mean.numpy(),
        entropy=entropy,
        mutual_information=mutual_information(probs).numpy(),
        vacuity=vacuity,
        flag=entropy > threshold,
        threshold=threshold,
        absent=absent,
        labels=batch.labels,
    )
    result.summary.update(_summary(run, batch, result, config, samples))
    return result


def _summary(run: LoadedRun, batch: FeatureBatch, result: Prediction, config: PredictionConfig, samples: int) -> dict:
    summary: dict[str, Any] = {
        "run": str(run.path),
        "run_data_sha256": (run.data_fingerprint or {}).get("sha256"),
        "data": batch.source,
        "data_sha256": batch_fingerprint(batch),
        "rows": batch.num_rows,
        "flagged": int(result.flag.sum()),
        "coverage_target": config.coverage,
        "threshold_entropy": result.threshold,
        "imputation": config.imputation.value,
        "posterior_draws": samples,
        "missing_rows": {m: int(a.sum()) for m, a in result.absent.items()},
    }
    if batch.labels is not None:
        correct = np.array([label_key(a) == label_key(b) for a, b in zip(batch.labels, result.label, strict=True)])
        answered = ~result.flag
        summary["accuracy"] = float(correct.mean())
        summary["accuracy_answered"] = float(correct[answered].mean()) if answered.any() else math.nan
    return summary
