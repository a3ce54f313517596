"""Predictive probabilities of any :class:`~probfusion.fusion.protocol.Predictor`, in minibatches."""

from __future__ import annotations

import torch

from probfusion.fusion.protocol import Predictor
from probfusion.inference.data import TensorData
from probfusion.metrics import accuracy, brier_score, negative_log_likelihood

__all__ = ["predict_probabilities", "score_classifier"]


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


def score_classifier(model: Predictor, data: TensorData, *, num_samples: int = 1) -> dict[str, float]:
    """Accuracy, NLL and Brier score of the posterior-mean predictive probabilities on ``data``.

    ``n`` is the number of rows scored; ``num_samples`` is the same number under its historical name (it is not
    the number of posterior draws, which is ``posterior_draws``).
    """
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
