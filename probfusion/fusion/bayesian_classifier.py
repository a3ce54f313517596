r"""The fitted Bayesian fusion classifier: frozen jWAE encoders and a posterior over the seed-form LMF head."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import torch
from torch import Tensor, nn

from probfusion._shapes import Views
from probfusion.config import BayesConfig, FusionConfig, JWAEConfig
from probfusion.encoders.jwae import JointWAE
from probfusion.errors import ConfigError
from probfusion.fusion._common import add_linear_pool, concatenated, input_skip, linear_pool_active, pool_logits
from probfusion.fusion.bayesian_lmf import BayesianLowRankFusion, HeadGuide, component_activations, head_logits
from probfusion.fusion.rank import read_components, summarise_rank
from probfusion.inference.laplace import LaplaceFit, component_sites, linearised_logits, sites_from_components
from probfusion.options import InferenceKind, RankPrior, parse_option

__all__ = ["REFERENCE_SIZE", "BayesianFusionClassifier"]

REFERENCE_SIZE = 512
"""Rows of training latents kept with the model to read the components' variance shares off the posterior."""


class BayesianFusionClassifier(nn.Module):
    r"""jWAE encoders (frozen point estimates) and a Bayesian seed-form LMF head (ARD or Gaussian prior).

    .. math::
        z_m = f_m(x_m), \qquad
        p(y \mid x) \approx \frac{1}{s} \sum_{k=1}^{s} \mathrm{softmax}\Big(\Theta^{(k)}
            \big(\textstyle\prod_m W_m^{(k)} \tilde z_m\big) + b^{(k)}\Big),
        \quad (W^{(k)}, \Theta^{(k)}, b^{(k)}) \sim q \text{ or NUTS draws}

    The encoders are frozen (trained in the deterministic stage): the posterior covers only the head, so SVI
    costs about as much as a deterministic head and NUTS on the head is possible; the price is that encoder
    uncertainty is not represented. The posterior is held as the guide's variational parameters (SVI; every
    call draws fresh samples), as stored draws (NUTS; each call picks s of them), or as the MAP and the Cholesky
    factors of its block-diagonal covariance (Laplace; the predictive is the linearised one, see
    :mod:`probfusion.inference.laplace`), all in ``state_dict``. With ``fusion.input_linear`` (SVI trained end to
    end only) every draw's logits gain ``A [x_1; ...; x_M] + a``, a point estimate trained with the encoders inside
    the ELBO's likelihood (the wide-and-deep skip of the deterministic kinds). With ``fusion.linear_pool`` every
    draw's logits are pooled with a logistic regression's, ``(1 - w) f_k + w g``
    (:mod:`probfusion.inference.linear_pool`); the posterior diagnostics read the head alone.
    Implements the :class:`~probfusion.fusion.protocol.Predictor` protocol.

    Cost: encoders O(hidden_dim sum_m (d_m + d)); the predictive costs O(s n r (M (d + 1) + c)) beyond one
    encoder pass, vectorised over the s draws. Reference: Liu et al., ACL 2018 (LMF); Tolstikhin et al., ICLR
    2018 (WAE); MacKay 1994 (ARD).

    Args:
        input_dims: ``{m: d_m}`` in modality order.
        num_classes: Number of classes c.
        jwae: Encoder settings (the weights come from the deterministic stage).
        fusion: ``fusion.rank`` is the maximum rank r.
        bayes: Inference route, prior hyperparameters and read-out settings.
        rank_prior: ``ard`` or ``gaussian``.
        train_encoders: Leave the encoders trainable (SVI with ``bayes.train_encoders``: the model is then its own
            first stage, trained end to end on the ELBO; :meth:`freeze_encoders` ends that). ``False`` freezes them.

    Example:
        >>> from probfusion.config import BayesConfig, FusionConfig, JWAEConfig
        >>> model = BayesianFusionClassifier(
        ...     input_dims={"a": 5, "b": 3}, num_classes=2, jwae=JWAEConfig(latent_dim=2, hidden_dim=8),
        ...     fusion=FusionConfig(rank=3), bayes=BayesConfig(), rank_prior="ard")
        >>> model.predictive_logits({"a": torch.randn(6, 5), "b": torch.randn(6, 3)}, 4).shape
        torch.Size([4, 6, 2])
    """

    def __init__(
        self,
        *,
        input_dims: Mapping[str, int],
        num_classes: int,
        jwae: JWAEConfig,
        fusion: FusionConfig,
        bayes: BayesConfig,
        rank_prior: RankPrior | str,
        train_encoders: bool = False,
    ) -> None:
        super().__init__()
        self.jwae = JointWAE(input_dims=input_dims, config=jwae)
        self.train_encoders = bool(train_encoders)
        self.jwae.requires_grad_(self.train_encoders)
        self.modalities: tuple[str, ...] = self.jwae.modalities
        self.num_classes = num_classes
        self.bayes = bayes
        self.head = BayesianLowRankFusion(
            input_dims=[jwae.latent_dim] * len(self.modalities),
            rank=fusion.rank,
            num_classes=num_classes,
            rank_prior=parse_option(rank_prior, RankPrior, name="rank prior"),
            prior_shape=bayes.prior_shape,
            prior_rate=bayes.prior_rate,
            prior_precision=bayes.prior_precision,
        )
        self.inference = bayes.inference
        self.guide: HeadGuide | None = None
        if self.inference is InferenceKind.SVI:
            self.guide = HeadGuide(model=self.head, guide=bayes.guide, init=fusion.lmf_init)
        elif self.inference is InferenceKind.NUTS:
            stored = bayes.num_chains * bayes.num_draws
            for name, shape in self.head.site_shapes().items():
                self.register_buffer(f"draws_{name}", torch.zeros(stored, *shape))
        else:  # Laplace: the MAP sites, the precisions, and the Cholesky factors of the covariance blocks
            for name, shape in self.head.site_shapes().items():
                self.register_buffer(f"map_{name}", torch.zeros(*shape))
            block = sum(d + 1 for d in self.head.input_dims) + num_classes
            self.register_buffer("laplace_component_tril", torch.zeros(fusion.rank, block, block))
            self.register_buffer("laplace_bias_tril", torch.zeros(num_classes, num_classes))
        self.register_buffer("reference_latents", torch.zeros(len(self.modalities), REFERENCE_SIZE, jwae.latent_dim))
        # The input skip (fusion.input_linear; the SVI head trained end to end only): a point estimate trained with
        # the encoders, its logits added to every draw's inside the likelihood and the predictive.
        if fusion.input_linear and not bayes.end_to_end:
            raise ConfigError(
                "FusionConfig.input_linear with a rank prior needs the SVI head trained end to end (BayesConfig "
                "inference 'svi', train_encoders unset or true); Laplace and NUTS fit a frozen head on the latents."
            )
        self.input_linear = input_skip(
            enabled=bool(fusion.input_linear), num_inputs=sum(input_dims.values()), num_classes=num_classes
        )
        if self.input_linear is not None:
            self.input_linear.requires_grad_(self.train_encoders)
        # The logistic-regression pool, fitted after the posterior: every draw's logits become (1 - w) f_k + w g.
        add_linear_pool(
            self, enabled=bool(fusion.linear_pool), num_inputs=sum(input_dims.values()), num_classes=num_classes
        )
        self.jwae.eval()

    def train(self, mode: bool = True) -> BayesianFusionClassifier:
        """Set training mode; frozen encoders always stay in eval mode (no dropout at prediction)."""
        super().train(mode)
        if not self.train_encoders:
            self.jwae.eval()
        return self

    def freeze_encoders(self) -> None:
        """End end-to-end training: the encoders become fixed point estimates, in eval mode."""
        self.train_encoders = False
        self.jwae.requires_grad_(False)
        if self.input_linear is not None:
            self.input_linear.requires_grad_(False)
        self.jwae.eval()

    def parameter_groups(self) -> list[dict[str, Any]]:
        """Optimiser groups for end-to-end training.

        The encoders take the trainer's settings; the guide SVI's learning rate and no weight decay (its prior is
        in the ELBO, so decay would count it twice).
        """
        guide = [] if self.guide is None else list(self.guide.parameters())
        own = {id(p) for p in guide}
        rest = [p for p in self.parameters() if id(p) not in own]
        return [{"params": rest}, {"params": guide, "lr": self.bayes.learning_rate, "weight_decay": 0.0}]

    @property
    def validation_samples(self) -> int:
        """Draws of the posterior predictive that early stopping scores the validation rows with."""
        return int(self.bayes.posterior_samples)

    def store_draws(self, draws: Mapping[str, Tensor]) -> None:
        """Keep NUTS draws ``{site: (chain * draw, *shape)}`` as the posterior (NUTS route only)."""
        for name in self.head.site_shapes():
            buffer = getattr(self, f"draws_{name}")
            if tuple(draws[name].shape) != tuple(buffer.shape):
                raise ConfigError(
                    f"Draws of {name!r} have shape {tuple(draws[name].shape)}; expected {tuple(buffer.shape)} "
                    "(num_chains * num_draws first). Sample with the model's BayesConfig."
                )
            buffer.copy_(draws[name])

    def store_laplace(self, fit: LaplaceFit) -> None:
        """Keep a Laplace fit (MAP, precisions, covariance factors) as the posterior (Laplace route only)."""
        sites = {**fit.mean, "precision": fit.precision}
        for name in self.head.site_shapes():
            getattr(self, f"map_{name}").copy_(sites[name])
        self.laplace_component_tril.copy_(fit.component_tril)
        self.laplace_bias_tril.copy_(fit.bias_tril)

    def _laplace_offsets(self, num_samples: int, generator: torch.Generator | None) -> dict[str, Tensor]:
        """Draws of (theta - theta*) under the Laplace covariance, ``{site: (s, *shape)}`` (no precision)."""
        tril, bias_tril = self.laplace_component_tril, self.laplace_bias_tril
        device = generator.device if generator is not None else tril.device
        noise = torch.randn(num_samples, *tril.shape[:2], generator=generator, device=device).to(tril)
        bias_noise = torch.randn(num_samples, bias_tril.shape[0], generator=generator, device=device).to(tril)
        offsets = sites_from_components(torch.einsum("rij,srj->sri", tril, noise), self.head.input_dims)
        offsets["bias"] = bias_noise @ bias_tril.T
        return offsets

    def laplace_log_density(self, draws: Mapping[str, Tensor]) -> Tensor:
        """``log q(theta)`` of draws under the Laplace Gaussian (Laplace route only), a `(s,)` float64 tensor.

        Args:
            draws: ``factor_k`` `(s, r, d_k + 1)`, ``theta`` `(s, c, r)` and ``bias`` `(s, c)`; the precisions are
                fixed under Laplace and not part of q.
        """
        if self.inference is not InferenceKind.LAPLACE:
            raise ConfigError(f"laplace_log_density needs a Laplace posterior; this one is {self.inference.value}.")
        centre = self._laplace_centre()
        offsets = {name: (draws[name] - centre[name]).double() for name in centre}
        tril, bias_tril = self.laplace_component_tril.double(), self.laplace_bias_tril.double()
        blocks = component_sites(offsets, len(self.head.input_dims))  # (s, r, n_i)
        # Whitened offsets L^-1 (theta - theta*) per block: q's log density is -|eps|^2 / 2 - log|L| - D log(2 pi) / 2.
        eps = torch.linalg.solve_triangular(tril, blocks.unsqueeze(-1), upper=False).squeeze(-1)
        bias_eps = torch.linalg.solve_triangular(bias_tril, offsets["bias"].unsqueeze(-1), upper=False).squeeze(-1)
        log_det = tril.diagonal(dim1=-2, dim2=-1).log().sum() + bias_tril.diagonal().log().sum()
        dim = blocks.shape[-2] * blocks.shape[-1] + bias_eps.shape[-1]
        squares = eps.square().sum((-1, -2)) + bias_eps.square().sum(-1)
        return -0.5 * squares - log_det - 0.5 * dim * math.log(2 * math.pi)

    def _laplace_centre(self) -> dict[str, Tensor]:
        """The Laplace posterior's mean sites, one set without a draw dimension (no precision)."""
        return {n: getattr(self, f"map_{n}") for n in self.head.site_shapes() if n != "precision"}

    def posterior_draws(self, num_samples: int, generator: torch.Generator | None = None) -> dict[str, Tensor]:
        """Draws of the head's parameters, sample dimension first.

        Args:
            num_samples: Number of draws s.
            generator: Source of randomness; ``None`` uses the global RNG (fresh draws on every call).

        Returns:
            ``precision`` `(s, r)` (fixed values repeated under the Gaussian prior), ``factor_k``
            `(s, r, d + 1)`, ``theta`` `(s, c, r)` and ``bias`` `(s, c)`.
        """
        if num_samples < 1:
            raise ConfigError(f"num_samples must be a positive integer; got {num_samples}.")
        if self.guide is not None:
            draws = self.guide.sample(num_samples, generator=generator)
        elif self.inference is InferenceKind.LAPLACE:
            centre, offsets = self._laplace_centre(), self._laplace_offsets(num_samples, generator)
            draws = {name: centre[name] + offsets[name] for name in centre}  # broadcast over the s draws
            if self.head.is_ard:
                draws["precision"] = self.map_precision.expand(num_samples, -1)
        else:
            stored = self.draws_bias.shape[0]
            device = self.draws_bias.device
            if num_samples <= stored:
                index = torch.randperm(stored, generator=generator)[:num_samples].to(device)
            else:
                index = torch.randint(stored, (num_samples,), generator=generator).to(device)
            draws = {name: getattr(self, f"draws_{name}")[index] for name in self.head.site_shapes()}
        if "precision" not in draws:
            draws["precision"] = self.head.fixed_precision().expand(num_samples, -1)
        return draws

    def predictive_logits(
        self, views: Views, num_samples: int | None = None, *, generator: torch.Generator | None = None
    ) -> Tensor:
        """Per-draw logits of the posterior predictive.

        Args:
            views: ``{m: (n, d_m)}`` inputs holding the model's modalities.
            num_samples: Number of posterior draws s; ``None`` takes ``bayes.posterior_samples``.
            generator: Fixes the draws; ``None`` draws fresh ones from the global RNG on every call.

        Returns:
            A `(s, n, c)` tensor, differentiable in the inputs.
        """
        encoded = self.jwae.encode(views)
        latents = [encoded[m] for m in self.modalities]
        count = self.bayes.posterior_samples if num_samples is None else num_samples
        skip = self.skip_logits(views)
        if self.inference is not InferenceKind.LAPLACE:
            logits = head_logits(latents, self.posterior_draws(count, generator))
        else:
            if count < 1:
                raise ConfigError(f"num_samples must be a positive integer; got {count}.")
            # The linearised (GLM) predictive of the GGN Laplace: logits(theta*) + J (theta - theta*).
            logits = linearised_logits(latents, self._laplace_centre(), self._laplace_offsets(count, generator))
        if skip is not None:  # the same (n, c) for every draw
            logits = logits + skip
        if linear_pool_active(self):  # the regression's (n, c) logits are the same for every draw
            logits = pool_logits(self, logits, concatenated(views, self.modalities))
        return logits

    def skip_logits(self, views: Views) -> Tensor | None:
        """The input skip's `(n, c)` logits ``A [x_1; ...; x_M] + a``, or ``None`` without one."""
        return None if self.input_linear is None else self.input_linear(concatenated(views, self.modalities))

    def forward(self, views: Views) -> Tensor:
        """Log of the posterior-mean predictive probabilities, `(n, c)` (``bayes.posterior_samples`` draws)."""
        probs = self.predictive_logits(views).softmax(dim=-1).mean(dim=0)
        return probs.clamp_min(torch.finfo(probs.dtype).tiny).log()

    @torch.no_grad()
    def rank_summary(self, num_samples: int | None = None, generator: torch.Generator | None = None) -> dict[str, Any]:
        """The effective rank read off the posterior (on the stored reference training latents).

        Per draw, :func:`~probfusion.fusion.rank.read_components`: collinear components merged, a group active
        when removing it moves more than ``bayes.activity_threshold`` of the logits' variance.

        Returns:
            ``effective_rank`` (posterior median), ``effective_rank_interval`` (90% equal-tailed, [lo, hi]),
            ``effective_rank_distribution`` (probabilities of 0..r), ``components`` (one dict per component:
            ``precision_mean``, ``activity_probability``, ``variance_share`` (Shapley), ``removal_share``,
            ``merged_probability``), ``component_order``, ``sorted_variance_shares`` and ``sorted_precisions``
            (label-invariant: per draw sorted by share, then averaged), ``threshold``. For NUTS the
            ``components`` table is sorted within each draw (entry k: the k-th component of each draw, active
            ones first), since each chain may label the components differently; for SVI it is in index order.
        """
        draws = self.posterior_draws(self.bayes.posterior_samples if num_samples is None else num_samples, generator)
        activations = component_activations(list(self.reference_latents), draws)
        readout = read_components(activations, draws["theta"], threshold=self.bayes.activity_threshold)
        shares = readout.shares
        summary = summarise_rank(
            shares,
            draws["precision"],
            threshold=self.bayes.activity_threshold,
            readout=readout,
            sort_within_draw=self.inference is InferenceKind.NUTS,
        )
        order = shares.argsort(dim=-1, descending=True)
        summary["sorted_variance_shares"] = shares.gather(-1, order).mean(0).tolist()
        summary["sorted_precisions"] = draws["precision"].gather(-1, order).mean(0).tolist()
        summary["threshold"] = self.bayes.activity_threshold
        return summary

    def fusion_parameter_count(self) -> int:
        """Number of random variables of the head, r (M (d + 1) + c + 1) + c (r fewer under the Gaussian prior).

        Returns:
            The count (comparable with the deterministic LMF's fusion parameters).
        """
        return sum(int(torch.Size(s).numel()) for s in self.head.site_shapes().values())

    def parameter_count(self) -> int:
        """Number of stored numbers that define the model: encoders, decoders and posterior (variational or draws).

        Returns:
            The count.
        """
        return sum(p.numel() for p in self.parameters()) + sum(
            b.numel() for name, b in self.named_buffers() if name.startswith(("draws_", "map_", "laplace_"))
        )
