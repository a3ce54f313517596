r"""The tempered logarithmic opinion pool of a trained fusion classifier and a logistic regression.

After training, a multinomial logistic regression g is fitted on the standardised concatenated training inputs
(its C chosen on validation NLL, :func:`~probfusion.baselines.logistic.fit_logistic_regression`), and the
predictive becomes

.. math::
    p(y \mid x) = \mathrm{softmax}\big(((1 - w) f(x) + w g(x)) / T\big),

with f the fusion model's logits, ``w`` on the grid ``0, 1/k, ..., 1`` and ``T >= 1`` fitted together on
validation NLL (the smallest ``w`` among ties, so the fusion model is kept unless the regression helps). For a
Bayesian model each posterior draw's logits are pooled, ``(1 - w) f_k + w g``, and the predictive stays the mean
of the draws' softmax; there T = 1 (the model has no temperature), and ``w`` is chosen on the validation NLL of
that mixture over a fixed set of draws. A
weighted sum of logits is a weighted geometric mean of the two distributions, renormalised: a logarithmic
opinion pool (Genest and Zidek, 1986, Statistical Science), which stacking on held-out rows (Wolpert, 1992)
sets here. At ``w = 0`` it is the fusion model with its validation-fitted temperature, so the pool can only
add what the validation rows support; ``metrics.json`` reports ``w``, ``C`` and both models' own scores.

Why pool after training rather than train the regression inside the model (``FusionConfig.input_linear``):
inside, the regression gets the deep model's weak weight decay and stops when the deep part does; apart, it
gets its own C, as the reference it is compared with does (``studies/results/real_benchmark/NOTES.md`` §20).
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from probfusion.config import FusionConfig
from probfusion.errors import ConfigError
from probfusion.fusion._common import concatenated
from probfusion.inference.data import TensorData
from probfusion.metrics.temperature import fit_temperature
from probfusion.robustness.attacks import sample_logits
from probfusion.seeding import make_generator

__all__ = ["PoolFit", "fit_linear_pool", "fit_pool_weight", "pool_state"]

_TIE = 1e-9  # NLLs this close (relative) count as equal


@dataclass(frozen=True)
class PoolFit:
    """The pool's validation fit.

    Attributes:
        weight: ``w``, the regression's share of the pooled logits.
        temperature: T of the pooled logits (1 for a model of several draws).
        val_nll: Validation NLL of the pool.
        fusion_val_nll: Validation NLL of the fusion model alone (``w = 0``, at its best T for one draw).
    """

    weight: float
    temperature: float
    val_nll: float
    fusion_val_nll: float


def _mixture_nll(logits: Tensor, labels: Tensor) -> float:
    """Mean NLL of the mean over draws of ``softmax(logits)``; ``logits`` is `(s, n, c)`."""
    log_probs = torch.logsumexp(torch.log_softmax(logits, dim=-1), dim=0) - math.log(logits.shape[0])
    return float(-log_probs.gather(-1, labels[:, None]).mean())


def fit_pool_weight(fusion_logits: Tensor, linear_logits: Tensor, labels: Tensor, *, steps: int) -> PoolFit:
    """The ``w`` of the grid ``0, 1/steps, ..., 1`` (and the ``T >= 1``) of lowest validation NLL.

    With one draw (`(n, c)` or `(1, n, c)` logits) T is fitted for each ``w``: the NLL is convex in ``1 / T``
    (:func:`~probfusion.metrics.temperature.fit_temperature`), so the search is exact in T and on the grid in
    ``w``. With s > 1 draws, T = 1 and the NLL is that of the mean of the draws' pooled softmax.

    Args:
        fusion_logits: A `(n, c)` or `(s, n, c)` tensor of the fusion model's validation logits (at T = 1).
        linear_logits: A `(n, c)` tensor of the regression's validation logits.
        labels: A `(n,)` tensor of class indices.
        steps: Number of grid intervals k (``w`` in steps of ``1 / k``).

    Returns:
        The fit. Cost: ``(k + 1)`` temperature fits, each O(60 n c), or ``(k + 1)`` O(s n c) evaluations.
    """
    if steps < 1:
        raise ConfigError(f"The pool's weight grid needs at least one step; got {steps}.")
    f, g = fusion_logits.detach().double(), linear_logits.detach().double()
    f = f if f.ndim == 3 else f.unsqueeze(0)
    if f.shape[1:] != g.shape:
        raise ConfigError(
            f"The pool's fusion logits (s, n, c) and regression logits (n, c) must agree in (n, c); got "
            f"{tuple(fusion_logits.shape)} and {tuple(linear_logits.shape)}."
        )
    labels = labels.long()
    fits: list[tuple[float, float, float]] = []  # (w, T, NLL)
    for k in range(steps + 1):
        w = k / steps
        pooled = (1 - w) * f + w * g
        if f.shape[0] == 1:
            tempered = fit_temperature(pooled[0], labels)
            fits.append((w, tempered.temperature, tempered.nll))
        else:
            fits.append((w, 1.0, _mixture_nll(pooled, labels)))
    # The smallest w within rounding of the lowest NLL: (1 - w) f + w f is f only up to float error.
    lowest = min(nll for _, _, nll in fits)
    weight, temperature, nll = next(item for item in fits if item[2] <= lowest + _TIE * max(1.0, lowest))
    return PoolFit(weight=weight, temperature=temperature, val_nll=nll, fusion_val_nll=fits[0][2])


@contextmanager
def pool_state(model: nn.Module, *, weight: float, temperature: float | None = None) -> Iterator[None]:
    """Within the block, ``model`` predicts with pool weight ``weight`` (and ``temperature``, if it has one)."""
    buffers = {"pool_weight": weight, "temperature": temperature}
    saved = {name: float(getattr(model, name)) for name, value in buffers.items() if value is not None}
    for name in saved:
        getattr(model, name).fill_(buffers[name])
    try:
        yield
    finally:
        for name, value in saved.items():
            getattr(model, name).fill_(value)


def _has_temperature(model: nn.Module) -> bool:
    return isinstance(getattr(model, "temperature", None), Tensor)  # the deterministic kinds; not the Bayesian


@torch.no_grad()
def _fusion_logits(model: nn.Module, data: TensorData, num_samples: int, seed: int) -> Tensor:
    """`(s, n, c)` logits of ``model`` alone (pool weight 0, T = 1) on ``data``, from draws fixed by ``seed``."""
    was_training = model.training
    model.eval()
    try:
        with pool_state(model, weight=0.0, temperature=1.0 if _has_temperature(model) else None):
            return sample_logits(model, data.views, num_samples, generator=make_generator(seed))
    finally:
        model.train(was_training)


def fit_linear_pool(
    model: nn.Module, train: TensorData, val: TensorData, fusion: FusionConfig, *, num_samples: int = 1, seed: int = 0
) -> tuple[PoolFit, dict[str, object]]:
    """Fit the regression and the pool on ``train`` and ``val``, and set them in ``model``'s buffers.

    Args:
        model: The trained final predictor, built with ``fusion.linear_pool`` on (it has the pool's buffers):
            the deterministic classifier or the Bayesian one.
        train: Training tensors ``{m: (n, d_m)}`` and ``(n,)`` labels, standardised as the model sees them.
        val: Validation tensors: C, ``w`` and T are chosen on them.
        fusion: ``linear_pool_c_grid`` and ``linear_pool_steps``.
        num_samples: Posterior draws s of the validation predictive (1 for a point estimate).
        seed: Seed of those draws.

    Returns:
        The pool fit, and the entries that ``metrics.json`` reports under ``linear_pool``.
    """
    # Here, not at the top: importing the baselines package loads cvxpy, which a command that never fits need not.
    from probfusion.baselines.logistic import fit_logistic_regression

    x_val = concatenated(val.views, model.modalities)
    linear = fit_logistic_regression(
        concatenated(train.views, model.modalities),
        train.labels,
        x_val,
        val.labels,
        num_classes=model.num_classes,
        c_grid=fusion.linear_pool_c_grid,
    )
    model.linear_weight.copy_(linear.weight)
    model.linear_bias.copy_(linear.bias)
    linear_logits = linear.logits(x_val)
    fused = _fusion_logits(model, val, num_samples, seed)
    pool = fit_pool_weight(fused, linear_logits, val.labels, steps=fusion.linear_pool_steps)
    model.pool_weight.fill_(pool.weight)
    if _has_temperature(model):
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
