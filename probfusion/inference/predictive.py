"""Predictive probabilities of any :class:`~probfusion.fusion.protocol.Predictor`, in minibatches."""

from __future__ import annotations

from collections.abc import Mapping

import torch

from probfusion.fusion.protocol import Predictor
from probfusion.inference.data import StreamingData, TensorData
from probfusion.metrics import accuracy, brier_score, negative_log_likelihood

__all__ = [
    "EXACT_SCORING_LIMIT",
    "SCORING_SEED_OFFSET",
    "common_draw_probabilities",
    "predict_probabilities",
    "score_classifier",
]

# Scoring draws are seeded at ``seed + SCORING_SEED_OFFSET``: independent of an attack's draws from ``seed``, and
# the same in ``evaluate`` and ``predict``, so both score a row under the same posterior draws.
SCORING_SEED_OFFSET = 1_000_003

_BATCH = 1024

EXACT_SCORING_LIMIT = 1 << 20
"""Most predictive probabilities (s * n * c) a streamed split's scoring keeps (4 MiB of float32; the metrics'
temporaries take a few times that)."""


@torch.no_grad()
def predict_probabilities(
    model: Predictor, data: TensorData, *, num_samples: int = 1, batch_size: int = 1024
) -> torch.Tensor:
    """Return ``(s, n, c)`` predictive probabilities per sample of the posterior (``s = 1`` if deterministic).

    The model is put in eval mode for the call and restored afterwards.
    """
    was_training = model.training  # type: ignore[attr-defined]
    model.eval()  # type: ignore[attr-defined]
    try:
        chunks = [model.predictive_logits(views, num_samples).softmax(dim=-1) for views, _ in data.batches(batch_size)]
    finally:
        model.train(was_training)  # type: ignore[attr-defined]
    return torch.cat(chunks, dim=1)


@torch.no_grad()
def common_draw_probabilities(
    model: Predictor, views: Mapping[str, torch.Tensor], samples: int, seed: int, *, batch_size: int = _BATCH
) -> torch.Tensor:
    """``(s, n, c)`` float64 probabilities in minibatches of rows, every row under the same ``s`` posterior draws.

    The model is in eval mode for the call. Each chunk restarts a generator from ``seed``, so every row and every
    call (clean, attacked, shifted, new rows) is scored under one fixed set of draws: common random numbers, which
    keep the differences between rows of a table free of Monte Carlo scoring noise.
    """
    from probfusion.robustness.attacks import sample_logits  # robustness builds on inference, not the reverse

    n = next(iter(views.values())).shape[0]
    was_training = getattr(model, "training", False)
    model.eval()  # type: ignore[attr-defined]  # no dropout in a prediction, whoever calls
    try:
        chunks = [
            sample_logits(
                model,
                {m: x[i : i + batch_size] for m, x in views.items()},
                samples,
                generator=torch.Generator().manual_seed(seed),
            )
            .softmax(dim=-1)
            .double()
            for i in range(0, n, batch_size)
        ]
    finally:
        model.train(was_training)  # type: ignore[attr-defined]
    return torch.cat(chunks, dim=1)


def score_classifier(model: Predictor, data: TensorData, *, num_samples: int = 1) -> dict[str, float]:
    """Accuracy, NLL and Brier score of the posterior-mean predictive probabilities on ``data``.

    ``n`` is the number of rows scored; ``num_samples`` is the same number under its historical name (it is not
    the number of posterior draws, which is ``posterior_draws``).
    """
    if isinstance(data, StreamingData):
        return _score_in_minibatches(model, data, num_samples=num_samples)
    draws = predict_probabilities(model, data, num_samples=num_samples)
    probs = draws.mean(dim=0)
    return {
        "accuracy": accuracy(probs, data.labels),
        "nll": negative_log_likelihood(probs, data.labels),
        "brier": brier_score(probs, data.labels),
        "num_samples": len(data),
        "n": len(data),
        "posterior_draws": draws.shape[0],
    }


@torch.no_grad()
def _score_in_minibatches(model: Predictor, data: StreamingData, *, num_samples: int) -> dict[str, float]:
    """:func:`score_classifier` on streamed rows, holding at most :data:`EXACT_SCORING_LIMIT` probabilities.

    Up to that many ``(s, n, c)`` probabilities are kept and scored as in memory, so a split that fits gives
    the very numbers :class:`TensorData` gives. Beyond it, the metrics come from per-batch sums in float64:
    accuracy is still the exact count of correct rows over n (in float32, as the in-memory mean), and NLL and
    Brier agree with in-memory float32 means to float32 rounding (about 1e-7).
    """
    was_training = model.training  # type: ignore[attr-defined]
    model.eval()  # type: ignore[attr-defined]
    kept: list[torch.Tensor] | None = []
    size, correct, nll, brier, draws = 0, 0, 0.0, 0.0, 1
    try:
        for views, labels in data.batches(_BATCH):
            batch = model.predictive_logits(views, num_samples).softmax(dim=-1)
            probs, b, draws = batch.mean(dim=0), len(labels), batch.shape[0]
            correct += int((probs.argmax(dim=-1) == labels).sum())
            nll += negative_log_likelihood(probs.double(), labels) * b
            brier += brier_score(probs.double(), labels) * b
            size += batch.numel()
            if kept is not None and size <= EXACT_SCORING_LIMIT:
                kept.append(batch)
            else:
                kept = None
    finally:
        model.train(was_training)  # type: ignore[attr-defined]
    n = len(data)
    scores = {"accuracy": float(torch.tensor(float(correct)) / n), "nll": nll / n, "brier": brier / n}
    if kept is not None:
        probs = torch.cat(kept, dim=1).mean(dim=0)
        labels = data.labels
        scores = {
            "accuracy": accuracy(probs, labels),
            "nll": negative_log_likelihood(probs, labels),
            "brier": brier_score(probs, labels),
        }
    return {**scores, "num_samples": n, "n": n, "posterior_draws": draws}
