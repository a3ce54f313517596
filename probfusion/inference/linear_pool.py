r"""The tempered logarithmic opinion pool of a trained fusion classifier and a logistic regression.

After training, a multinomial logistic regression g is fitted on the standardised concatenated training inputs
(its C chosen on validation NLL, :func:`~probfusion.baselines.logistic.fit_logistic_regression`), and the
predictive becomes

.. math::
    p(y \mid x) = \mathrm{softmax}\big(((1 - w) f(x) + w g(x)) / T\big),

with f the fusion model's logits, ``w`` on the grid ``0, 1/k, ..., 1`` and ``T >= 1`` fitted together on
validation NLL (the smallest ``w`` among ties, so the fusion model is kept unless the regression helps). A
weighted sum of logits is a weighted geometric mean of the two distributions, renormalised: a logarithmic
opinion pool (Genest and Zidek, 1986, Statistical Science), which stacking on held-out rows (Wolpert, 1992)
sets here. At ``w = 0`` it is the fusion model with its validation-fitted temperature, so the pool can only
add what the validation rows support; ``metrics.json`` reports ``w``, ``C`` and both models' own scores.

Why pool after training rather than train the regression inside the model (``FusionConfig.input_linear``):
inside, the regression gets the deep model's weak weight decay and stops when the deep part does; apart, it
gets its own C, as the reference it is compared with does (``studies/results/real_benchmark/NOTES.md`` §20).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import torch
from torch import Tensor

from probfusion.config import FusionConfig
from probfusion.errors import ConfigError
from probfusion.fusion.classifier import MultimodalClassifier
from probfusion.inference.data import TensorData
from probfusion.metrics.temperature import fit_temperature

__all__ = ["PoolFit", "fit_linear_pool", "fit_pool_weight", "pool_state"]

_TIE = 1e-9  # NLLs this close (relative) count as equal


@dataclass(frozen=True)
class PoolFit:
    """The pool's validation fit.

    Attributes:
        weight: ``w``, the regression's share of the pooled logits.
        temperature: T of the pooled logits.
        val_nll: Validation NLL of the pool.
        fusion_val_nll: Validation NLL of the fusion model alone at its own best temperature (``w = 0``).
    """

    weight: float
    temperature: float
    val_nll: float
    fusion_val_nll: float


def fit_pool_weight(fusion_logits: Tensor, linear_logits: Tensor, labels: Tensor, *, steps: int) -> PoolFit:
    """The ``w`` of the grid ``0, 1/steps, ..., 1`` and the ``T >= 1`` of lowest validation NLL.

    For each ``w`` the NLL is convex in ``1 / T`` (:func:`~probfusion.metrics.temperature.fit_temperature`), so
    the search is exact in T and on the grid in ``w``.

    Args:
        fusion_logits: A `(n, c)` tensor of the fusion model's validation logits (at T = 1).
        linear_logits: A `(n, c)` tensor of the regression's validation logits.
        labels: A `(n,)` tensor of class indices.
        steps: Number of grid intervals k (``w`` in steps of ``1 / k``).

    Returns:
        The fit. Cost: ``(k + 1)`` temperature fits, each O(60 n c).
    """
    if steps < 1:
        raise ConfigError(f"The pool's weight grid needs at least one step; got {steps}.")
    if fusion_logits.shape != linear_logits.shape:
        raise ConfigError(
            f"The pool's two logits must have one shape; got {tuple(fusion_logits.shape)} and "
            f"{tuple(linear_logits.shape)}."
        )
    f, g = fusion_logits.detach().double(), linear_logits.detach().double()
    fits = [(k / steps, fit_temperature((1 - k / steps) * f + (k / steps) * g, labels)) for k in range(steps + 1)]
    # The smallest w within rounding of the lowest NLL: (1 - w) f + w f is f only up to float error.
    lowest = min(fit.nll for _, fit in fits)
    weight, best = next(item for item in fits if item[1].nll <= lowest + _TIE * max(1.0, lowest))
    return PoolFit(weight=weight, temperature=best.temperature, val_nll=best.nll, fusion_val_nll=fits[0][1].nll)


@contextmanager
def pool_state(model: MultimodalClassifier, *, weight: float, temperature: float) -> Iterator[None]:
    """Within the block, ``model`` predicts with pool weight ``weight`` and temperature ``temperature``."""
    saved = float(model.pool_weight), float(model.temperature)
    model.pool_weight.fill_(weight)
    model.temperature.fill_(temperature)
    try:
        yield
    finally:
        model.pool_weight.fill_(saved[0])
        model.temperature.fill_(saved[1])


@torch.no_grad()
def _fusion_logits(model: MultimodalClassifier, data: TensorData) -> Tensor:
    was_training = model.training
    model.eval()
    try:
        with pool_state(model, weight=0.0, temperature=1.0):
            return model(data.views)
    finally:
        model.train(was_training)


def fit_linear_pool(
    model: MultimodalClassifier, train: TensorData, val: TensorData, fusion: FusionConfig
) -> tuple[PoolFit, dict[str, object]]:
    """Fit the regression and the pool on ``train`` and ``val``, and set them in ``model``'s buffers.

    Args:
        model: The trained classifier, built with ``fusion.linear_pool`` on (it has the pool's buffers).
        train: Training tensors ``{m: (n, d_m)}`` and ``(n,)`` labels, standardised as the model sees them.
        val: Validation tensors: C, ``w`` and T are chosen on them.
        fusion: ``linear_pool_c_grid`` and ``linear_pool_steps``.

    Returns:
        The pool fit, and the entries that ``metrics.json`` reports under ``linear_pool``.
    """
    # Here, not at the top: importing the baselines package loads cvxpy, which a command that never fits need not.
    from probfusion.baselines.logistic import concatenated, fit_logistic_regression

    linear = fit_logistic_regression(
        concatenated(train.views, model.modalities),
        train.labels,
        concatenated(val.views, model.modalities),
        val.labels,
        num_classes=model.num_classes,
        c_grid=fusion.linear_pool_c_grid,
    )
    model.linear_weight.copy_(linear.weight)
    model.linear_bias.copy_(linear.bias)
    linear_logits = linear.logits(concatenated(val.views, model.modalities))
    pool = fit_pool_weight(_fusion_logits(model, val), linear_logits, val.labels, steps=fusion.linear_pool_steps)
    model.pool_weight.fill_(pool.weight)
    model.temperature.fill_(pool.temperature)
    record: dict[str, object] = {
        "weight": pool.weight,
        "temperature": pool.temperature,
        "C": linear.c,
        "val_nll": pool.val_nll,
        "fusion_val_nll": pool.fusion_val_nll,
        "linear_val_nll": linear.val_nll,
        "linear_val_nll_by_C": {str(c): nll for c, nll in linear.val_nll_by_c.items()},
    }
    return pool, record
