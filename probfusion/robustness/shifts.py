r"""Distribution shifts of standardised test inputs: Gaussian noise, feature dropout and a missing modality.

Severities run from 1 to 5 on a linear grid so that MultiBench's trapezoid area over the grid is meaningful:

* noise: ``x + sigma * e`` with ``e ~ N(0, I)`` and ``sigma = NOISE_LEVELS[severity - 1]`` in units of each
  feature's training standard deviation;
* dropout: each feature independently set to its training mean (0 after standardisation) with probability
  ``DROPOUT_RATES[severity - 1]``;
* missing: a whole modality replaced, by its training mean (``mean``), by raw zeros as a dead sensor would send
  (``zero``: ``-mean / std`` after standardisation), or integrated out (``marginal``):

.. math::
    p(y \mid x_{\mathrm{obs}}) \approx \frac{1}{K} \sum_{k=1}^{K} p(y \mid x_{\mathrm{obs}}, x^{(k)}_{\mathrm{miss}}),
    \qquad x^{(k)}_{\mathrm{miss}} \sim \hat p_{\mathrm{train}}(x_{\mathrm{miss}})

The marginal treats the missing modality as independent of the observed ones (the training marginal, not the
conditional): a model-agnostic baseline that also averages a Bayesian model's posterior draws. Cost: K times a
forward pass.

The held-out-speaker shift of av-digits is a real shift of the data, not a transformation; see
:func:`probfusion.evaluation.evaluate`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from enum import StrEnum
from typing import TYPE_CHECKING

import torch
from torch import Tensor

from probfusion.errors import ConfigError
from probfusion.robustness.attacks import sample_logits

if TYPE_CHECKING:
    from probfusion.fusion.protocol import Predictor

__all__ = [
    "DROPOUT_RATES",
    "NOISE_LEVELS",
    "Imputation",
    "feature_dropout",
    "gaussian_noise",
    "marginal_missing_probabilities",
    "missing_modality",
]

NOISE_LEVELS = (0.2, 0.4, 0.6, 0.8, 1.0)
"""Noise standard deviation per severity 1..5, in units of each feature's training standard deviation."""
DROPOUT_RATES = (0.1, 0.2, 0.3, 0.4, 0.5)
"""Probability that a feature is dropped (set to its training mean) per severity 1..5."""


class Imputation(StrEnum):
    """What replaces a missing modality."""

    MEAN = "mean"
    """Its training mean (0 in standardised units)."""
    ZERO = "zero"
    """Raw zeros, as a dead sensor sends them (``-mean / std`` in standardised units)."""
    MARGINAL = "marginal"
    """Integrated out by Monte Carlo over training rows of the modality."""


def _draw(sample: Callable[..., Tensor], like: Tensor, generator: torch.Generator | None) -> Tensor:
    """``sample(like.shape)`` drawn on the generator's device, then moved to ``like``'s (CPU generators on CUDA)."""
    device = generator.device if generator is not None else like.device
    return sample(like.shape, generator=generator, dtype=like.dtype, device=device).to(like.device)


def _check_severity(severity: int) -> int:
    if isinstance(severity, bool) or int(severity) != severity or not 1 <= severity <= 5:
        raise ConfigError(f"Shift severity must be an integer from 1 to 5; got {severity!r}.")
    return int(severity)


def _check_modalities(views: Mapping[str, Tensor], modalities: Sequence[str]) -> None:
    unknown = [m for m in modalities if m not in views]
    if not modalities or unknown:
        raise ConfigError(f"Cannot shift modalities {list(modalities)}; expected a non-empty subset of {list(views)}.")


def _corrupt(
    views: Mapping[str, Tensor], modalities: Sequence[str], corruption: Callable[[Tensor], Tensor]
) -> dict[str, Tensor]:
    """Apply ``corruption`` to the chosen modalities, in the views' order; the others pass through unchanged."""
    _check_modalities(views, modalities)
    return {m: corruption(x) if m in modalities else x for m, x in views.items()}


def gaussian_noise(
    views: Mapping[str, Tensor],
    *,
    severity: int,
    modalities: Sequence[str],
    generator: torch.Generator | None = None,
) -> dict[str, Tensor]:
    """Add Gaussian noise of standard deviation ``NOISE_LEVELS[severity - 1]`` to the chosen modalities.

    Args:
        views: ``{m: (n, d_m)}`` standardised inputs.
        severity: 1 (mild) to 5 (severe).
        modalities: The modalities to corrupt.
        generator: Source of the noise.

    Returns:
        ``{m: (n, d_m)}`` shifted inputs (the other modalities unchanged).
    """
    sigma = NOISE_LEVELS[_check_severity(severity) - 1]
    return _corrupt(
        views,
        modalities,
        lambda x: x + sigma * _draw(torch.randn, x, generator),
    )


def feature_dropout(
    views: Mapping[str, Tensor],
    *,
    severity: int,
    modalities: Sequence[str],
    generator: torch.Generator | None = None,
) -> dict[str, Tensor]:
    """Set each feature of the chosen modalities to its training mean with probability ``DROPOUT_RATES[...]``.

    Args:
        views: ``{m: (n, d_m)}`` standardised inputs.
        severity: 1 (mild) to 5 (severe).
        modalities: The modalities to corrupt.
        generator: Source of the dropout masks.

    Returns:
        ``{m: (n, d_m)}`` shifted inputs (the other modalities unchanged).
    """
    rate = DROPOUT_RATES[_check_severity(severity) - 1]
    return _corrupt(
        views,
        modalities,
        lambda x: x * (_draw(torch.rand, x, generator) >= rate),
    )


def missing_modality(
    views: Mapping[str, Tensor],
    *,
    modalities: Sequence[str],
    imputation: Imputation | str,
    raw_zero: Mapping[str, Tensor] | None = None,
) -> dict[str, Tensor]:
    """Replace whole modalities by their training mean or by raw zeros.

    Args:
        views: ``{m: (n, d_m)}`` standardised inputs.
        modalities: The missing modalities.
        imputation: ``mean`` or ``zero`` (``marginal`` needs the model: :func:`marginal_missing_probabilities`).
        raw_zero: ``{m: (d_m,)}`` the standardised value of a raw zero, ``-mean / std``; needed for ``zero``.

    Returns:
        ``{m: (n, d_m)}`` inputs with the chosen modalities imputed.
    """
    imputation = Imputation(imputation)
    _check_modalities(views, modalities)
    if imputation is Imputation.MARGINAL:
        raise ConfigError("Imputation 'marginal' needs the model; call marginal_missing_probabilities instead.")
    if imputation is Imputation.ZERO and (raw_zero is None or any(m not in raw_zero for m in modalities)):
        raise ConfigError("Imputation 'zero' needs raw_zero = {m: -mean / std} for every missing modality.")
    out = dict(views)
    for m in modalities:
        fill = torch.zeros_like(views[m]) if imputation is Imputation.MEAN else raw_zero[m].expand_as(views[m])  # type: ignore[index]
        out[m] = fill.to(views[m].dtype)
    return out


@torch.no_grad()
def marginal_missing_probabilities(
    model: Predictor,
    views: Mapping[str, Tensor],
    *,
    modalities: Sequence[str],
    donors: Mapping[str, Tensor],
    num_samples: int = 1,
    generator: torch.Generator | None = None,
) -> Tensor:
    """Predictive probabilities with the chosen modalities integrated out over ``K`` donor rows.

    Every test row is paired with every donor row (one batch of ``n K`` rows, no loop over donors), and the
    probabilities are averaged over the donors.

    Args:
        model: Any predictor.
        views: ``{m: (n, d_m)}`` standardised inputs.
        modalities: The missing modalities.
        donors: ``{m: (K, d_m)}`` standardised training rows of the missing modalities (drawn jointly).
        num_samples: Posterior draws s.
        generator: Source of the posterior draws.

    Returns:
        A `(s, n, c)` tensor of probabilities.
    """
    _check_modalities(views, modalities)
    k = next(iter(donors[m] for m in modalities)).shape[0]
    n = next(iter(views.values())).shape[0]
    tiled = {m: donors[m].repeat(n, 1) if m in modalities else x.repeat_interleave(k, dim=0) for m, x in views.items()}
    probs = sample_logits(model, tiled, num_samples, generator=generator).softmax(dim=-1)
    return probs.view(probs.shape[0], n, k, -1).mean(dim=2)
