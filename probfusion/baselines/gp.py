r"""GP classifier on a fixed MKL-weighted sum of per-modality kernels (GPyTorch, Dirichlet-based classification).

.. math::
    k(x, x') = \sigma_c^2 \sum_m \beta_m k_m(x_m, x'_m), \qquad
    f_c \sim \mathcal{GP}(\mu_c, k), \qquad \tilde y_{ic} = f_c(x_i) + \varepsilon_{ic},
    \quad \varepsilon_{ic} \sim \mathcal{N}(0, \sigma^2_{ic} + \sigma^2_{n,c}),

where :math:`\tilde y, \sigma^2_{ic}` are the Dirichlet-transformed one-hot labels (Milios et al., 2018):
:math:`a_{ic} = \alpha_\epsilon + [y_i = c]`, :math:`\sigma^2_{ic} = \log(1 / a_{ic} + 1)`,
:math:`\tilde y_{ic} = \log a_{ic} - \sigma^2_{ic} / 2`. The weights :math:`\beta` come from
:func:`~probfusion.baselines.mkl.solve_mkl_dual` and stay frozen, as do the bandwidths; only the per-class mean
:math:`\mu_c`, scale :math:`\sigma_c^2` and extra noise :math:`\sigma^2_{n,c}` are fitted (GPyTorch marginal
likelihood, in :mod:`probfusion.baselines.gp_fit`). The predictive softmax of samples of the latent :math:`f`
gives class probabilities.

Cost: exact, O(c N^3) once (a cached Cholesky) and O(c n N^2) per batch of n test points; above
``max_exact_points`` a variational GP with m inducing points (Titsias, 2009; Hensman et al., 2015), O(c n m^2).

References: D. Milios, R. Camoriano, P. Michiardi, L. Rosasco, M. Filippone, "Dirichlet-based Gaussian Processes
for Large-scale Calibrated Classification", NeurIPS 2018; J. Gardner et al., "GPyTorch", NeurIPS 2018.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import Tensor

# linear_operator (under gpytorch 1.15) decorates functions with torch.jit.script, which torch >= 2.10 deprecates
# at import time; nothing here can change that, so only that warning is silenced, only for this import.
with warnings.catch_warnings():
    warnings.filterwarnings("ignore", message=r".*torch\.jit\.script.*is deprecated", category=DeprecationWarning)
    import gpytorch
    from gpytorch.distributions import MultivariateNormal

from probfusion._shapes import Views
from probfusion.baselines.kernels import gram
from probfusion.config import GPMKLConfig, JWAEConfig
from probfusion.encoders.jwae import JointWAE
from probfusion.errors import ConfigError, InputDataError
from probfusion.options import KernelFeatures, KernelKind

__all__ = ["FixedWeightSumKernel", "GPMKLClassifier"]


class FixedWeightSumKernel(gpytorch.kernels.Kernel):
    """``sum_m beta_m k_m`` over the column blocks of concatenated modalities; weights and scales are buffers.

    Args:
        widths: Column width of each modality's block, in order.
        kind: The per-modality kernel (each normalised as in :mod:`probfusion.baselines.kernels`).
    """

    def __init__(self, *, widths: Sequence[int], kind: KernelKind) -> None:
        super().__init__()
        self.widths = tuple(int(w) for w in widths)
        self.kind = kind
        self.register_buffer("beta", torch.full((len(self.widths),), 1.0 / len(self.widths)))
        self.register_buffer("scales", torch.ones(len(self.widths)))

    def forward(self, x1: Tensor, x2: Tensor, diag: bool = False, **params: Any) -> Tensor:
        """A `(n1, n2)` kernel matrix, or its `(n1,)` diagonal when ``diag`` (``x1`` is ``x2`` then)."""
        parts1, parts2 = x1.split(self.widths, dim=-1), x2.split(self.widths, dim=-1)
        scales = self.scales.tolist()
        if diag:
            if self.kind is KernelKind.RBF:
                return self.beta.sum().expand(x1.shape[:-1]).to(x1.dtype)
            norms = torch.stack([(a * b).sum(-1) / s for a, b, s in zip(parts1, parts2, scales, strict=True)])
            return torch.einsum("m,m...->...", self.beta.to(x1.dtype), norms)
        # A loop over the M modalities (different widths), not over samples.
        grams = torch.stack(
            [gram(a, b, kind=self.kind, scale=s) for a, b, s in zip(parts1, parts2, scales, strict=True)]
        )
        return torch.einsum("m,m...->...", self.beta.to(x1.dtype), grams)


class _PriorGP(gpytorch.Module):
    """The per-class GP prior: constant mean and the scaled fixed-weight kernel, batched over classes."""

    def __init__(self, *, widths: Sequence[int], kind: KernelKind, num_classes: int) -> None:
        super().__init__()
        batch = torch.Size([num_classes])
        self.mean_module = gpytorch.means.ConstantMean(batch_shape=batch)
        self.covar_module = gpytorch.kernels.ScaleKernel(
            FixedWeightSumKernel(widths=widths, kind=kind), batch_shape=batch
        )

    def forward(self, x: Tensor) -> MultivariateNormal:
        return MultivariateNormal(self.mean_module(x), self.covar_module(x))


class _VariationalGP(gpytorch.models.ApproximateGP):
    """Batch-of-classes variational GP with fixed inducing inputs (a buffer)."""

    def __init__(self, *, widths: Sequence[int], kind: KernelKind, num_classes: int, num_inducing: int) -> None:
        batch = torch.Size([num_classes])
        distribution = gpytorch.variational.CholeskyVariationalDistribution(num_inducing, batch_shape=batch)
        strategy = gpytorch.variational.VariationalStrategy(
            self, torch.zeros(num_inducing, sum(widths)), distribution, learn_inducing_locations=False
        )
        super().__init__(strategy)
        prior = _PriorGP(widths=widths, kind=kind, num_classes=num_classes)
        self.mean_module, self.covar_module = prior.mean_module, prior.covar_module

    def forward(self, x: Tensor) -> MultivariateNormal:
        return MultivariateNormal(self.mean_module(x), self.covar_module(x))


class GPMKLClassifier(torch.nn.Module):
    r"""Gaussian-process classifier on the fixed kernel ``sum_m beta_m K_m`` (see the module docstring).

    Implements the :class:`~probfusion.fusion.protocol.Predictor` protocol: ``predictive_logits`` returns
    ``(s, n, c)`` samples of the latent function (marginally per test point), differentiable in the inputs
    through the kernel (and the frozen jWAE encoders for latent features). Everything needed to predict is a
    parameter or buffer, so ``state_dict`` round-trips through safetensors; fitting is
    :func:`fit_gp_mkl`.

    Args:
        input_dims: ``{m: d_m}`` in modality order.
        num_classes: c.
        num_train: N, the training rows; fixes the shapes of the stored training features and targets (exact
            GP, ``N <= config.max_exact_points``) or selects the variational GP above.
        jwae: The encoder settings (used for latent features only).
        config: Kernel, features and GP settings.

    Example:
        >>> import torch
        >>> from probfusion.config import GPMKLConfig, JWAEConfig
        >>> model = GPMKLClassifier(input_dims={"a": 2, "b": 3}, num_classes=3, num_train=10,
        ...                         jwae=JWAEConfig(), config=GPMKLConfig(features="input"))
        >>> model.predictive_logits({"a": torch.randn(4, 2), "b": torch.randn(4, 3)}, 5).shape
        torch.Size([5, 4, 3])
    """

    def __init__(
        self,
        *,
        input_dims: Mapping[str, int],
        num_classes: int,
        num_train: int,
        jwae: JWAEConfig,
        config: GPMKLConfig,
    ) -> None:
        super().__init__()
        if len(input_dims) < 1 or num_classes < 2 or num_train < 1:
            raise ConfigError(
                f"GPMKLClassifier needs modalities, c >= 2 and N >= 1; got {dict(input_dims)}, c={num_classes}, "
                f"N={num_train}."
            )
        self.config = config
        self.modalities: tuple[str, ...] = tuple(input_dims)
        self.input_dims = dict(input_dims)
        self.num_classes = num_classes
        self.num_train = num_train
        self.latent = config.features is KernelFeatures.LATENT
        self.jwae = JointWAE(input_dims=input_dims, config=jwae) if self.latent else None
        widths = [jwae.latent_dim if self.latent else d for d in input_dims.values()]
        self.exact = num_train <= config.max_exact_points
        self.likelihood = gpytorch.likelihoods.FixedNoiseGaussianLikelihood(
            noise=torch.ones(num_classes, num_train), learn_additional_noise=True, batch_shape=torch.Size([num_classes])
        )
        if self.exact:
            self.gp: gpytorch.Module = _PriorGP(widths=widths, kind=config.kernel, num_classes=num_classes)
            self.register_buffer("train_inputs", torch.zeros(num_train, sum(widths)))
            self.register_buffer("train_targets", torch.zeros(num_classes, num_train))
            self.register_buffer("label_noise", torch.ones(num_classes, num_train))
        else:
            inducing = min(config.num_inducing, num_train)
            self.gp = _VariationalGP(widths=widths, kind=config.kernel, num_classes=num_classes, num_inducing=inducing)
        self._cache: tuple[Tensor, Tensor] | None = None
        self.register_load_state_dict_post_hook(lambda module, _: module.clear_cache())

    @property
    def kernel(self) -> FixedWeightSumKernel:
        """The fixed-weight sum kernel (``beta`` and ``scales`` buffers)."""
        return self.gp.covar_module.base_kernel  # type: ignore[return-value]

    def clear_cache(self) -> None:
        """Forget the cached Cholesky factor (after new weights, a device move or training)."""
        self._cache = None
        if not self.exact:
            # gpytorch clears the variational strategy's memoised Cholesky when its mode toggles.
            self.gp.train(True)
            self.gp.train(False)

    def train(self, mode: bool = True) -> GPMKLClassifier:
        """Set the mode; the frozen encoders stay in eval mode (no dropout); entering training drops the cache."""
        super().train(mode)
        if self.jwae is not None:
            self.jwae.eval()
        if mode:
            self._cache = None
        return self

    def _apply(self, fn: Any, recurse: bool = True) -> GPMKLClassifier:
        self._cache = None
        return super()._apply(fn, recurse)  # type: ignore[return-value]

    def features(self, views: Views) -> Tensor:
        """Concatenated kernel features.

        Args:
            views: ``{m: (n, d_m)}`` inputs holding the model's modalities.

        Returns:
            A `(n, sum_m w_m)` tensor: the jWAE latents ``(n, d)`` or the inputs ``(n, d_m)``, side by side.

        Raises:
            InputDataError: If a modality is missing or has the wrong width.
        """
        missing = [m for m in self.modalities if m not in views]
        if missing:
            raise InputDataError(f"Views lack modalities {missing}; the model expects {list(self.modalities)}.")
        for m in self.modalities:
            if views[m].shape[-1] != self.input_dims[m]:
                raise InputDataError(
                    f"Modality {m!r} has {views[m].shape[-1]} features; the model expects {self.input_dims[m]}."
                )
        if self.jwae is not None:
            latents = self.jwae.encode(views)
            parts = [latents[m] for m in self.modalities]
        else:
            parts = [views[m] for m in self.modalities]
        dtype = self.gp.mean_module.constant.dtype
        return torch.cat(parts, dim=-1).to(dtype)

    def _exact_cache(self) -> tuple[Tensor, Tensor]:
        if self._cache is None:
            with torch.no_grad():
                x = self.train_inputs
                noise = self.label_noise + self.likelihood.second_noise_covar.noise
                system = self.gp.covar_module(x).to_dense() + torch.diag_embed(noise)
                chol = torch.linalg.cholesky(system)
                resid = (self.train_targets - self.gp.mean_module(x)).unsqueeze(-1)
                self._cache = (chol, torch.cholesky_solve(resid, chol).squeeze(-1))
        return self._cache

    def latent_posterior(self, views: Views) -> tuple[Tensor, Tensor]:
        """Posterior mean and variance of the latent functions at the inputs (no observation noise).

        Args:
            views: ``{m: (n, d_m)}`` inputs.

        Returns:
            ``(c, n)`` means and ``(c, n)`` variances, differentiable in the inputs.
        """
        x = self.features(views)
        if not self.exact:
            with gpytorch.settings.debug(False):
                posterior = self.gp(x)
            return posterior.mean, posterior.variance.clamp_min(1e-10)
        chol, weights = self._exact_cache()
        cross = self.gp.covar_module(x, self.train_inputs).to_dense()  # (c, n, N)
        mean = self.gp.mean_module(x) + (cross @ weights.unsqueeze(-1)).squeeze(-1)
        solved = torch.linalg.solve_triangular(chol, cross.transpose(-1, -2), upper=False)  # (c, N, n)
        prior = self.gp.covar_module(x, diag=True)
        return mean, (prior - solved.pow(2).sum(-2)).clamp_min(1e-10)

    def predictive_logits(
        self, views: Views, num_samples: int = 1, *, generator: torch.Generator | None = None
    ) -> Tensor:
        """Samples of the latent functions, whose softmax are predictive class probabilities.

        Args:
            views: ``{m: (n, d_m)}`` inputs holding the model's modalities.
            num_samples: s, the number of draws.
            generator: Source of the draws; ``None`` uses torch's global RNG.

        Returns:
            A `(s, n, c)` tensor, differentiable in the inputs.
        """
        if num_samples < 1:
            raise ConfigError(f"num_samples must be a positive integer; got {num_samples}.")
        mean, var = self.latent_posterior(views)
        noise = torch.randn((num_samples, *mean.shape), generator=generator, dtype=mean.dtype).to(mean.device)
        return (mean + var.sqrt() * noise).transpose(-1, -2)

    def fusion_parameter_count(self) -> int:
        """The M kernel weights plus the GP's fitted hyperparameters (mean, scale, noise, variational).

        Returns:
            The count.
        """
        fitted = sum(p.numel() for p in [*self.gp.parameters(), *self.likelihood.parameters()])
        return len(self.modalities) + fitted

    def parameter_count(self) -> int:
        """The fusion count plus the frozen encoders' parameters (latent features only).

        Returns:
            The count.
        """
        encoder = 0 if self.jwae is None else sum(p.numel() for p in self.jwae.parameters())
        return self.fusion_parameter_count() + encoder
