r"""The ``synthetic`` dataset: modalities whose label depends on a planted interaction of known CP rank.

The ground truth for rank recovery (hypothesis H4) and for multiplicative versus additive fusion (H5).

.. math::

    e_m \sim \mathcal{N}(0, I_d), \quad x_0 = e_0, \quad
    x_m = \sqrt{1 - \rho}\, e_m + \sqrt{\rho}\, x_0 \ (m \ge 1),

    s_k = \sum_{i=1}^{r^*} \theta_{k,i} \prod_{m=0}^{M-1} \big(u_m^{(i)} \cdot x_m\big), \qquad
    y = \arg\max_k (s_k + \sigma \varepsilon_k), \ \varepsilon_k \sim \mathcal{N}(0, 1)
    \quad \text{or} \quad y \sim \mathrm{Categorical}(\mathrm{softmax}(s / \sigma)),

with redundancy :math:`\rho`, noise :math:`\sigma`, unit-norm factors :math:`u_m^{(i)}` (orthonormal across
components when :math:`r^* \le d`) and rows :math:`\theta_k` of unit norm, so that each noise-free score has
unit variance and :math:`\sigma` is in units of it. The ``argmax`` labels (the default) have a probit link:
:math:`P(y = 1) = \Phi((s_1 - s_0) / (\sigma \sqrt 2))` for two classes, whose logit is a nonlinear function of
the scores, so the Bayes-optimal logit has a higher CP rank than r* and a rank read-out may rightly exceed it.
The ``softmax`` labels (``SyntheticConfig.labels``) use the logistic likelihood of the models themselves: the
Bayes-optimal logit is :math:`s / \sigma`, of CP rank exactly r* (what H4 tests). For two classes
:math:`\theta_1 = -\theta_0`, so the label follows the sign of :math:`\sum_i \theta_{0,i} \prod_m (u_m^{(i)}
\cdot x_m)`, flipped by the noise.

Each modality alone carries no label information when :math:`\rho = 0`: flipping the sign of any other
modality negates every noise-free score, so for two classes :math:`P(y \mid x_m) = 1/2` exactly. For more
classes :math:`P(y \mid x_m)` is an even function of :math:`x_m` (it depends on the magnitudes
:math:`|u_m^{(i)} \cdot x_m|` only), which no linear model can use. With :math:`\rho > 0` the modalities
share modality 0's signal, and single modalities start to carry (nonlinear) information.

Cost: O(n M d r*).
"""

from __future__ import annotations

import numpy as np

from probfusion.config import SyntheticConfig
from probfusion.data.dataset import MultimodalDataset
from probfusion.options import SyntheticLabels

__all__ = ["make_planted_interaction", "planted_scores"]

NAME = "synthetic"
DESCRIPTION = "Gaussian modalities; label from a planted multiplicative interaction of known CP rank"
LICENCE = "generated (no third-party data)"


def _unit_factors(rng: np.random.Generator, rank: int, dim: int) -> np.ndarray:
    """``(rank, dim)`` unit rows, orthonormal when ``rank <= dim``."""
    raw = rng.standard_normal((dim, rank))
    if rank <= dim:
        q, r = np.linalg.qr(raw)
        return (q * np.sign(np.diag(r))).T
    return (raw / np.linalg.norm(raw, axis=0)).T


def _softmax_draws(rng: np.random.Generator, score: np.ndarray, temperature: float) -> np.ndarray:
    """``(n,)`` labels drawn from ``softmax(score / temperature)`` row by row (inverse CDF of one uniform each)."""
    if temperature == 0:
        return score.argmax(axis=1)
    # Shift before scaling: score / temperature overflows to inf (and inf - inf to NaN) at a tiny temperature,
    # while the shifted scores are <= 0 and overflow only to -inf, whose exp is the intended 0.
    with np.errstate(over="ignore", under="ignore"):
        probs = np.exp((score - score.max(axis=1, keepdims=True)) / temperature)
    cdf = np.cumsum(probs / probs.sum(axis=1, keepdims=True), axis=1)
    draws = rng.random((score.shape[0], 1))
    return np.minimum((draws > cdf).sum(axis=1), score.shape[1] - 1)


def planted_scores(views: list[np.ndarray], factors: list[np.ndarray], theta: np.ndarray) -> np.ndarray:
    """Noise-free class scores of the planted interaction.

    Args:
        views: M arrays ``(n, d)``, one per modality, in order.
        factors: M arrays ``(r*, d)``: the rows ``u_m^(i)``.
        theta: ``(c, r*)`` weights of the rank components per class.

    Returns:
        ``(n, c)`` scores ``sum_i theta[k, i] prod_m (u_m^(i) . x_m)``.
    """
    projections = np.stack([x @ u.T for x, u in zip(views, factors, strict=True)])  # (M, n, r*)
    return projections.prod(axis=0) @ theta.T


def make_planted_interaction(config: SyntheticConfig, seed: int) -> MultimodalDataset:
    """Draw the synthetic dataset described in the module docstring.

    Args:
        config: Sample count n, modalities M, width d, planted rank r*, classes c, noise and redundancy.
        seed: Seed of the ``numpy.random.Generator`` that draws factors, features and noise.

    Returns:
        A dataset with views ``m0 .. m{M-1}``, each ``(n, d)`` float32, labels ``(n,)`` and ``ground_truth``
        holding ``u_m0 .. u_m{M-1}`` ``(r*, d)``, ``theta`` ``(c, r*)`` and the noise-free ``score``
        ``(n, c)`` (computed in float64 from the float32 features).

    Example:
        >>> data = make_planted_interaction(SyntheticConfig(num_samples=100, num_modalities=3), seed=0)
        >>> data.dims, data.ground_truth["u_m2"].shape, data.ground_truth["theta"].shape
        ({'m0': 8, 'm1': 8, 'm2': 8}, (2, 8), (2, 2))
    """
    rng = np.random.default_rng(seed)
    n, num_mod, d, rank, c = (
        config.num_samples,
        config.num_modalities,
        config.dim,
        config.rank,
        config.num_classes,
    )
    factors = [_unit_factors(rng, rank, d) for _ in range(num_mod)]
    if c == 2:
        row = rng.standard_normal(rank)
        theta = np.stack([row, -row])
    else:
        theta = rng.standard_normal((c, rank))
    theta /= np.linalg.norm(theta, axis=1, keepdims=True)

    independent = rng.standard_normal((num_mod, n, d))
    rho = config.redundancy
    views = [independent[0]] + [np.sqrt(1.0 - rho) * e + np.sqrt(rho) * independent[0] for e in independent[1:]]
    views = [x.astype(np.float32) for x in views]
    score = planted_scores([x.astype(np.float64) for x in views], factors, theta)
    if config.labels is SyntheticLabels.SOFTMAX:
        labels = _softmax_draws(rng, score, config.noise)
    else:
        labels = (score + config.noise * rng.standard_normal((n, c))).argmax(axis=1)

    names = [f"m{m}" for m in range(num_mod)]
    ground_truth = {f"u_{name}": u for name, u in zip(names, factors, strict=True)}
    ground_truth.update(theta=theta, score=score)
    return MultimodalDataset(
        name=NAME,
        views=dict(zip(names, views, strict=True)),
        labels=labels,
        num_classes=c,
        ground_truth=ground_truth,
        description=(
            f"{DESCRIPTION}: M={num_mod}, d={d}, rank={rank}, classes={c}, noise={config.noise}, redundancy={rho}"
        ),
        licence=LICENCE,
    )
