r"""Bayesian low-rank fusion head: random rank factors with ARD (or fixed Gaussian) priors, and its guide.

The head works on the frozen jWAE latents ``z_m`` (the encoders are trained first as point estimates, then
frozen: the posterior is over the r M (d_m + 1) + c r + c head parameters only, which keeps SVI cheap and makes
NUTS on the head possible; a posterior over the encoders' thousands of weights would be neither).

This is the seed form of LMF (DESIGN.md part 2): one scalar per rank component, weighed per class by Theta. A
head mixing h fused units would make the rank unidentifiable; here component i is used only through column i
of Theta, so pruning component i removes exactly one CP term of the weight tensor.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import pyro
import pyro.distributions as dist
import torch
from pyro.nn import PyroModule
from torch import Tensor, nn
from torch.nn import functional as F

from probfusion.errors import ConfigError
from probfusion.fusion._common import append_one, check_count, check_dims
from probfusion.options import GuideKind, LMFInit, RankPrior, parse_option

__all__ = ["BayesianLowRankFusion", "HeadGuide", "component_activations", "head_logits"]

BIAS_SCALE = 3.0
"""Prior standard deviation of the class biases (logits of standardised data rarely need more)."""


def head_logits(latents: Sequence[Tensor], sites: dict[str, Tensor]) -> Tensor:
    """Logits of the seed-form LMF head for a batch of parameter draws, vectorised over draws.

    Args:
        latents: M tensors of shape `(n, d_m)`.
        sites: ``factor_k`` `(s, r, d_k + 1)` for k = 0..M-1, ``theta`` `(s, c, r)` and ``bias`` `(s, c)`.

    Returns:
        A `(s, n, c)` tensor ``Theta (prod_m W_m z~_m) + bias`` per draw.
    """
    activations = component_activations(latents, sites)
    return torch.einsum("snr,scr->snc", activations, sites["theta"]) + sites["bias"].unsqueeze(-2)


def component_activations(latents: Sequence[Tensor], sites: dict[str, Tensor]) -> Tensor:
    """Each rank component's scalar interaction ``prod_m (w_m^(i) . z~_m)``, per draw.

    Args:
        latents: M tensors of shape `(n, d_m)`.
        sites: ``factor_k`` `(s, r, d_k + 1)` for k = 0..M-1.

    Returns:
        A `(s, n, r)` tensor.
    """
    out: Tensor | None = None
    for k, z in enumerate(latents):  # a loop over modalities; draws and components go through one einsum
        projected = torch.einsum("nd,srd->snr", append_one(z), sites[f"factor_{k}"])
        out = projected if out is None else out * projected
    return out  # type: ignore[return-value]


class BayesianLowRankFusion(PyroModule):
    r"""Seed-form LMF head with random factors; ARD precisions shared by a component's factors and output weights.

    .. math::
        \lambda_i \sim \mathrm{Gamma}(a_0, b_0), \quad
        w_m^{(i)} \sim \mathcal{N}(0, \lambda_i^{-1} I_{d_m + 1}), \quad
        \Theta_{:, i} \sim \mathcal{N}(0, \lambda_i^{-1} I_c), \quad b \sim \mathcal{N}(0, 3^2 I_c),

        y_j \mid z_j \sim \mathrm{Categorical}\Big(\mathrm{softmax}\big(
            \Theta \big( \textstyle\prod_m W_m \tilde z_{m,j} \big) + b \big)\Big)

    with :math:`\tilde z_m = [z_m; 1]` and the product elementwise over the r components. Under the ``gaussian``
    prior :math:`\lambda_i` is fixed to ``prior_precision``. The likelihood sits in a plate of size
    ``total_size``, so a minibatch is scaled to the full data set.

    Cost: O(s n r sum_m (d_m + 1) + s n r c) per pass over s draws; r (sum_m (d_m + 1) + c + 1) + c latent
    variables. Reference: Z. Liu et al., "Efficient Low-rank Multimodal Fusion with Modality-Specific Factors",
    ACL 2018; D. MacKay, "Bayesian non-linear modelling for the prediction competition", 1994 (ARD); Q. Zhao,
    L. Zhang, A. Cichocki, "Bayesian CP factorization of incomplete tensors with automatic rank determination",
    TPAMI 2015.

    Args:
        input_dims: Latent widths d_m, one per modality, in order (M >= 2).
        rank: Maximum rank r.
        num_classes: Number of classes c.
        rank_prior: ``ard`` or ``gaussian``.
        prior_shape: Gamma shape a0 (ARD).
        prior_rate: Gamma rate b0 (ARD).
        prior_precision: The fixed precision (``gaussian``).

    Example:
        >>> head = BayesianLowRankFusion(input_dims=[3, 4], rank=2, num_classes=5, rank_prior="ard")
        >>> {k: v for k, v in head.site_shapes().items()}
        {'precision': (2,), 'factor_0': (2, 4), 'factor_1': (2, 5), 'theta': (5, 2), 'bias': (5,)}
    """

    def __init__(
        self,
        *,
        input_dims: Sequence[int],
        rank: int,
        num_classes: int,
        rank_prior: RankPrior | str = RankPrior.ARD,
        prior_shape: float = 1.0,
        prior_rate: float = 1.0,
        prior_precision: float = 1.0,
    ) -> None:
        super().__init__()
        self.input_dims = check_dims("BayesianLowRankFusion", input_dims, num_classes)
        self.rank_prior = parse_option(rank_prior, RankPrior, name="rank prior")
        if self.rank_prior is RankPrior.NONE:
            raise ConfigError(
                "BayesianLowRankFusion needs rank prior 'ard' or 'gaussian'; got 'none'. "
                "Use the deterministic LowRankFusion for point estimates."
            )
        if len(self.input_dims) < 2:
            raise ConfigError(f"BayesianLowRankFusion fuses M >= 2 modalities; got {len(self.input_dims)}.")
        if rank < 1 or num_classes < 2:
            raise ConfigError(f"Rank must be >= 1 and classes >= 2; got rank {rank}, classes {num_classes}.")
        self.rank, self.num_classes = int(rank), int(num_classes)
        self.register_buffer("prior_shape", torch.tensor(float(prior_shape)))
        self.register_buffer("prior_rate", torch.tensor(float(prior_rate)))
        self.register_buffer("prior_precision", torch.tensor(float(prior_precision)))

    @property
    def is_ard(self) -> bool:
        """Whether the component precisions are random (ARD) rather than fixed."""
        return self.rank_prior is RankPrior.ARD

    def site_shapes(self) -> dict[str, tuple[int, ...]]:
        """The latent sites, in the order the guide packs them, with their shapes (no sample dimension)."""
        shapes: dict[str, tuple[int, ...]] = {"precision": (self.rank,)} if self.is_ard else {}
        shapes.update({f"factor_{k}": (self.rank, d + 1) for k, d in enumerate(self.input_dims)})
        shapes.update(theta=(self.num_classes, self.rank), bias=(self.num_classes,))
        return shapes

    # The priors, next to the factors they describe.
    def precision_prior(self) -> dist.Distribution:
        """Gamma(a0, b0) on each of the r precisions, `(r,)` event."""
        return dist.Gamma(self.prior_shape, self.prior_rate).expand([self.rank]).to_event(1)

    def factor_prior(self, k: int, precision: Tensor) -> dist.Distribution:
        """N(0, lambda_i^-1) on row i of modality k's factor, `(r, d_k + 1)` event."""
        scale = precision.rsqrt().unsqueeze(-1).expand(*precision.shape, self.input_dims[k] + 1)
        return dist.Normal(torch.zeros_like(scale), scale).to_event(2)

    def theta_prior(self, precision: Tensor) -> dist.Distribution:
        """N(0, lambda_i^-1) on column i of Theta, `(c, r)` event."""
        scale = precision.rsqrt().unsqueeze(-2).expand(*precision.shape[:-1], self.num_classes, self.rank)
        return dist.Normal(torch.zeros_like(scale), scale).to_event(2)

    def bias_prior(self) -> dist.Distribution:
        """N(0, 3^2) on each class bias, `(c,)` event."""
        loc = self.prior_rate.new_zeros(self.num_classes)
        return dist.Normal(loc, torch.full_like(loc, BIAS_SCALE)).to_event(1)

    def fixed_precision(self) -> Tensor:
        """The `(r,)` precisions of the ``gaussian`` prior."""
        return self.prior_precision.expand(self.rank)

    def forward(
        self,
        latents: Sequence[Tensor],
        labels: Tensor | None = None,
        *,
        total_size: int | None = None,
        offset: Tensor | None = None,
    ) -> Tensor:
        """The Pyro model: sample the head's parameters, then the labels of one (mini)batch.

        Args:
            latents: M tensors of shape `(n, d_m)`.
            labels: `(n,)` class labels, or ``None`` to sample them.
            total_size: Size N of the full data set; the likelihood is scaled by N / n. ``None``: n.
            offset: `(n, c)` logits added to the head's, a point-estimated part of the model (the input skip of
                :class:`~probfusion.fusion.bayesian_classifier.BayesianFusionClassifier`); ``None``: none.

        Returns:
            A `(n, c)` tensor of logits.
        """
        check_count("BayesianLowRankFusion", latents, len(self.input_dims))
        precision = pyro.sample("precision", self.precision_prior()) if self.is_ard else self.fixed_precision()
        sites = {
            f"factor_{k}": pyro.sample(f"factor_{k}", self.factor_prior(k, precision)).unsqueeze(0)
            for k in range(len(self.input_dims))
        }
        sites["theta"] = pyro.sample("theta", self.theta_prior(precision)).unsqueeze(0)
        sites["bias"] = pyro.sample("bias", self.bias_prior()).unsqueeze(0)
        logits = head_logits(latents, sites)[0]
        if offset is not None:
            logits = logits + offset
        n = logits.shape[0]
        with pyro.plate("data", size=total_size or n, subsample=torch.arange(n, device=logits.device)):
            pyro.sample("obs", dist.Categorical(logits=logits), obs=labels)
        return logits


class HeadGuide(nn.Module):
    r"""Variational posterior of the head: one Gaussian over the flat unconstrained vector u of all sites.

    u packs ``log lambda`` (ARD only; so q(lambda) is log-normal), the factors, Theta and the bias in the order
    of :meth:`BayesianLowRankFusion.site_shapes`. ``mean-field``: :math:`q(u) = \mathcal{N}(\mu, \mathrm{diag}
    \, \sigma^2)`; ``low-rank``: :math:`q(u) = \mathcal{N}(\mu, F F^\top + \mathrm{diag}\, \sigma^2)` with
    :math:`F = \mathrm{diag}(\sigma) C` of width k = ``min(10, D)``, C the parameter ``cov_factor`` (Pyro's
    ``AutoLowRankMultivariateNormal`` parameterisation: C is relative to each coordinate's scale, so an Adam step
    on C changes a coordinate's variance in proportion to it; an absolute F, with Adam steps of the learning rate
    on coordinates of scale 0.02, blew the variance up: 38.6 % test accuracy on mfeat against 98.0 % mean-field,
    ``studies/inference_choice.py``; 97.5 % now).
    Calling the module is the Pyro guide (an auxiliary site plus one Delta per site, as Pyro's ``AutoContinuous``);
    :meth:`sample` draws s parameter sets at once with an explicit generator.

    Cost: O(D) parameters (O(D k) for low-rank), D = r (sum_m (d_m + 1) + c + 1) + c; a draw costs O(s D k).

    Args:
        model: The head whose sites this guide covers.
        guide: ``mean-field`` or ``low-rank``.
        init_scale: Initial posterior standard deviation of every coordinate of u.
        init: How :meth:`initialise` sets the factor means (``random`` or ``additive``, as the deterministic LMF).
    """

    def __init__(
        self,
        *,
        model: BayesianLowRankFusion,
        guide: GuideKind | str,
        init_scale: float = 0.02,
        init: LMFInit | str = LMFInit.RANDOM,
    ) -> None:
        super().__init__()
        self.kind = parse_option(guide, GuideKind, name="guide")
        self.init = parse_option(init, LMFInit, name="LMF init")
        self.shapes = model.site_shapes()
        self.size = sum(math.prod(s) for s in self.shapes.values())
        self.init_scale = init_scale
        self.loc = nn.Parameter(torch.zeros(self.size))
        self.raw_scale = nn.Parameter(torch.full((self.size,), math.log(math.expm1(init_scale))))
        width = min(10, self.size) if self.kind is GuideKind.LOW_RANK else 0
        self.cov_factor = nn.Parameter(torch.zeros(self.size, width))
        # 1: cov_factor is relative to the scales (C above). Files written before it held F itself; they load
        # with 0 and are converted once (C = F / sigma, exact), so they give the distribution they were fitted to.
        self.register_buffer("relative_factor", torch.ones(()))
        self.legacy_state = {"relative_factor": 0.0}
        self.register_load_state_dict_post_hook(lambda module, _: module._convert_absolute_factor())

    @torch.no_grad()
    def _convert_absolute_factor(self) -> None:
        if float(self.relative_factor) == 0.0:
            self.cov_factor.div_(self.scale().unsqueeze(-1))
            self.relative_factor.fill_(1.0)

    def initialise(self, *, generator: torch.Generator | None = None) -> None:
        """Random factor means with LMF's variance-preserving scale; precisions 1, bias 0.

        ``random``: factors and Theta get N(0, r^(-1/(M+1)) / width) so each component starts small but not zero
        (a product of zeros is a saddle point of the ELBO). ``additive``: as the deterministic LMF's additive
        start, each factor's constant coordinate is 1 (modality 0's with a random sign) and the others
        N(0, 1 / (M d_m)), so every component starts as ``+-prod_m (1 + u_m . z_m)``, near a sum of unimodal
        terms, and Theta N(0, 1 / r). Random rather than copied from the deterministic stage: that stage trains
        Liu's h-unit form with a mixing head, which has no seed-form counterpart to copy.
        """
        num_factors = sum(1 for n in self.shapes if n.startswith("factor_")) + 1
        with torch.no_grad():
            init = {}
            for name, shape in self.shapes.items():
                if name == "precision":
                    init[name] = torch.ones(shape, dtype=self.loc.dtype)
                elif name == "bias":
                    init[name] = torch.zeros(shape, dtype=self.loc.dtype)
                elif self.init is LMFInit.ADDITIVE:
                    init[name] = self._additive_mean(name, shape, num_factors - 1, generator)
                else:
                    rank = shape[0] if name != "theta" else shape[1]
                    width = shape[1] if name != "theta" else shape[0]
                    std = math.sqrt(rank ** (-1.0 / num_factors) / width)
                    init[name] = std * torch.randn(shape, generator=generator, dtype=self.loc.dtype)
            self.loc.copy_(self.pack(init))
            if self.cov_factor.shape[1]:
                # Pyro's start: sigma = init_scale / sqrt(2) and C ~ N(0, 1/k), so each coordinate's marginal
                # standard deviation starts near init_scale, as the mean-field guide's (drawn after the means,
                # which stay those of the same seed).
                width = self.cov_factor.shape[1]
                scale = self.init_scale / math.sqrt(2.0)
                self.raw_scale.fill_(math.log(math.expm1(scale)))
                self.cov_factor.copy_(
                    torch.randn(self.cov_factor.shape, generator=generator, dtype=self.loc.dtype) / math.sqrt(width)
                )

    def _additive_mean(
        self, name: str, shape: tuple[int, ...], num_modalities: int, generator: torch.Generator | None
    ) -> Tensor:
        """The additive start of one site: Theta N(0, 1 / r); a factor with constant coordinate +-1 (see above)."""
        if name == "theta":
            return torch.randn(shape, generator=generator, dtype=self.loc.dtype) / math.sqrt(shape[1])
        factor = torch.randn(shape, generator=generator, dtype=self.loc.dtype)
        factor /= math.sqrt(num_modalities * max(shape[1] - 1, 1))
        factor[:, -1] = 1.0
        if name == "factor_0":
            signs = torch.randint(0, 2, (shape[0],), generator=generator).mul(2).sub(1)
            factor[:, -1] = signs.to(factor.dtype)
        return factor

    def scale(self) -> Tensor:
        """The `(D,)` diagonal standard deviations (softplus of the raw parameter)."""
        return F.softplus(self.raw_scale)

    def distribution(self) -> dist.Distribution:
        """q(u) with a `(D,)` event."""
        if self.kind is GuideKind.LOW_RANK:
            return dist.LowRankMultivariateNormal(self.loc, self.covariance_factor(), self.scale().square())
        return dist.Normal(self.loc, self.scale()).to_event(1)

    def covariance_factor(self) -> Tensor:
        """The `(D, k)` factor F of the covariance ``F F^T + diag(sigma^2)``: ``diag(sigma) C``."""
        return self.scale().unsqueeze(-1) * self.cov_factor

    def unpack(self, flat: Tensor, *, constrain: bool = True) -> dict[str, Tensor]:
        """Split `(s, D)` unconstrained vectors into sites `(s, *shape)`; precisions exponentiated if ``constrain``."""
        out, start = {}, 0
        for name, shape in self.shapes.items():
            size = math.prod(shape)
            value = flat[..., start : start + size].reshape(*flat.shape[:-1], *shape)
            out[name] = value.exp() if constrain and name == "precision" else value
            start += size
        return out

    def pack(self, sites: dict[str, Tensor], *, constrained: bool = True) -> Tensor:
        """Inverse of :meth:`unpack` for one parameter set (no sample dimension): a `(D,)` vector."""
        parts = [(sites[n].log() if constrained and n == "precision" else sites[n]).reshape(-1) for n in self.shapes]
        return torch.cat(parts)

    def sample(self, num_samples: int, *, generator: torch.Generator | None = None) -> dict[str, Tensor]:
        """Draw ``num_samples`` parameter sets by reparameterisation (differentiable in the guide's parameters).

        Returns:
            ``{site: (s, *shape)}``.
        """
        # Noise is drawn on the generator's device (CPU generators serve CUDA models too), then moved.
        device = generator.device if generator is not None else self.loc.device
        width = self.size + self.cov_factor.shape[1]
        eps = torch.randn(num_samples, width, generator=generator, dtype=self.loc.dtype, device=device)
        eps = eps.to(self.loc.device)
        scale = self.scale()
        flat = self.loc + eps[:, : self.size] * scale
        if self.cov_factor.shape[1]:
            flat = flat + (eps[:, self.size :] @ self.cov_factor.T) * scale
        return self.unpack(flat)

    def means(self) -> dict[str, Tensor]:
        """Sites at the mean of u (precisions at the median of their log-normal)."""
        return {k: v[0] for k, v in self.unpack(self.loc.unsqueeze(0)).items()}

    def forward(
        self,
        latents: Sequence[Tensor],
        labels: Tensor | None = None,
        *,
        total_size: int | None = None,
        offset: Tensor | None = None,
    ) -> None:
        """The Pyro guide (same signature as the model; the offset does not enter q)."""
        flat = pyro.sample("_head_u", self.distribution(), infer={"is_auxiliary": True})
        for name, value in self.unpack(flat.unsqueeze(0)).items():
            value = value[0]
            # Delta sites carry log|du/dvalue| so the ELBO is that of q(u): -log(lambda) for lambda = exp(u).
            log_density = -value.log().sum() if name == "precision" else value.new_zeros(())
            pyro.sample(name, dist.Delta(value, log_density=log_density, event_dim=value.dim()))
