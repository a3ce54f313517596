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

Cost: exact, through one eigendecomposition of the shared kernel (:class:`SharedKernelSystems`): O(N^3) once
whatever c, then O(n N^2 + c n N r) per batch of n test points, r the rows of the largest class; above
``max_exact_points`` a variational GP with m inducing points (Titsias, 2009; Hensman et al., 2015), O(c n m^2).

References: D. Milios, R. Camoriano, P. Michiardi, L. Rosasco, M. Filippone, "Dirichlet-based Gaussian Processes
for Large-scale Calibrated Classification", NeurIPS 2018; J. Gardner et al., "GPyTorch", NeurIPS 2018.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
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

__all__ = ["FixedWeightSumKernel", "GPMKLClassifier", "SharedKernelSystems"]


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


@dataclass(frozen=True, eq=False)
class SharedKernelSystems:
    r"""The c Dirichlet-GP systems :math:`A_c = s_c K + \operatorname{diag}(\nu_c)` through one eigendecomposition.

    All classes share the kernel :math:`K = U \operatorname{diag}(\lambda) U^\top`; they differ in the scale
    :math:`s_c` and the noise :math:`\nu_c` (Dirichlet noise plus the class's extra noise), which takes one value
    :math:`b_c` on most rows and other values on a few (the rows of class c): :math:`\operatorname{diag}(\nu_c) =
    b_c I + E_c D_c E_c^\top`, :math:`E_c` the ``(N, r)`` columns of those rows. Then
    :math:`A^0_c = s_c K + b_c I = U \operatorname{diag}(s_c \lambda + b_c) U^\top` is diagonal in U, and Woodbury's
    identity and the determinant lemma give :math:`A_c^{-1}` and :math:`\log |A_c|` exactly:

    .. math::
        A_c^{-1} = A^{0\,-1}_c - A^{0\,-1}_c E_c (I + D_c C_c)^{-1} D_c E_c^\top A^{0\,-1}_c, \qquad
        \log |A_c| = \textstyle\sum_j \log(s_c \lambda_j + b_c) + \log |I + D_c C_c|,

    with :math:`C_c = E_c^\top A^{0\,-1}_c E_c` (``(r, r)``). Cost: O(N^3) once for U, then O(c N r^2) per
    evaluation of all c marginal likelihoods (the Adam steps of the hyperparameters), instead of c Cholesky
    factorisations of ``(N, N)`` (O(c N^3)) and their backward passes. Any noise is exact; r is the most rows of a
    class whose noise differs from the class's most common value (for Dirichlet targets, the rows of class c).

    Attributes:
        values: ``(N,)`` eigenvalues of K.
        vectors: ``(N, N)`` eigenvectors U (columns).
        base: ``(c,)`` the most common noise value b_c of each class.
        rows: ``(c, r)`` the rows whose noise differs from b_c (padded with row 0).
        delta: ``(c, r)`` their noise minus b_c (0 at the padding, which then adds nothing).
    """

    values: Tensor
    vectors: Tensor
    base: Tensor
    rows: Tensor
    delta: Tensor

    @classmethod
    def build(cls, gram: Tensor, noise: Tensor) -> SharedKernelSystems:
        """Decompose the shared kernel and the per-class noise.

        Args:
            gram: The ``(N, N)`` kernel K (without scale).
            noise: ``(c, N)`` noise variances (without the extra noise, which :meth:`terms` adds to b_c).

        Returns:
            The systems, in float64.
        """
        values, vectors = torch.linalg.eigh(gram.detach().double())
        noise = noise.detach().double()
        base = noise.mode(dim=-1).values
        differs = noise != base.unsqueeze(-1)
        width = max(int(differs.sum(-1).max()), 1)
        # Stable sort puts the differing rows first, in order; the padding beyond each class's count gets delta 0.
        rows = torch.sort((~differs).to(torch.int8), dim=-1, stable=True).indices[:, :width]
        valid = torch.gather(differs, -1, rows)
        delta = torch.where(valid, torch.gather(noise, -1, rows) - base.unsqueeze(-1), 0.0)
        return cls(values=values, vectors=vectors, base=base, rows=torch.where(valid, rows, 0), delta=delta)

    def terms(self, outputscale: Tensor, extra: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """The per-class pieces of the solves, differentiable in the scales and extra noises.

        Args:
            outputscale: ``(c,)`` scales s_c.
            extra: ``(c,)`` extra noise variances, added to every row.

        Returns:
            ``w`` ``(c, N)`` = 1 / (s_c lambda + b_c + extra_c), the ``(c, r, N)`` rows of U, the ``(c, r, r)``
            core ``(I + D C)^{-1} D`` and ``(c,)`` ``log |A_c|``.
        """
        w = (outputscale.unsqueeze(-1) * self.values + (self.base + extra).unsqueeze(-1)).reciprocal()
        u_rows = self.vectors[self.rows]  # (c, r, N)
        small = (u_rows * w.unsqueeze(-2)) @ u_rows.transpose(-1, -2)  # C = E^T A0^-1 E, (c, r, r)
        inner = torch.eye(small.shape[-1], dtype=small.dtype, device=small.device) + self.delta.unsqueeze(-1) * small
        core = torch.linalg.solve(inner, torch.diag_embed(self.delta))
        logdet = -w.log().sum(-1) + torch.linalg.slogdet(inner).logabsdet
        return w, u_rows, core, logdet

    def log_marginal(self, targets: Tensor, mean: Tensor, outputscale: Tensor, extra: Tensor) -> Tensor:
        """Each class's exact log marginal likelihood ``log N(y_c; mu_c 1, A_c)``.

        Args:
            targets: ``(c, N)`` regression targets y.
            mean: ``(c,)`` constant means mu_c.
            outputscale: ``(c,)`` scales s_c.
            extra: ``(c,)`` extra noise variances.

        Returns:
            ``(c,)`` log likelihoods, differentiable in ``mean``, ``outputscale`` and ``extra``.
        """
        w, u_rows, core, logdet = self.terms(outputscale, extra)
        resid = targets.double() - mean.unsqueeze(-1)
        proj = resid @ self.vectors  # U^T r_c, (c, N)
        v = (u_rows @ (w * proj).unsqueeze(-1)).squeeze(-1)  # E^T A0^-1 r_c, (c, r)
        quad = (proj.pow(2) * w).sum(-1) - (v.unsqueeze(-2) @ core @ v.unsqueeze(-1)).squeeze((-1, -2))
        return -0.5 * (quad + logdet + targets.shape[-1] * math.log(2 * math.pi))

    def solve(self, rhs: Tensor, outputscale: Tensor, extra: Tensor) -> Tensor:
        """``A_c^{-1} rhs_c`` for every class.

        Args:
            rhs: ``(c, N)`` right-hand sides.
            outputscale: ``(c,)`` scales s_c.
            extra: ``(c,)`` extra noise variances.

        Returns:
            ``(c, N)`` solutions.
        """
        w, u_rows, core, _ = self.terms(outputscale, extra)
        first = w * (rhs.double() @ self.vectors)  # U^T A0^-1 rhs, (c, N)
        v = (u_rows @ first.unsqueeze(-1)).squeeze(-1)  # E^T A0^-1 rhs, (c, r)
        back = (w.unsqueeze(-2) * u_rows).transpose(-1, -2) @ (core @ v.unsqueeze(-1))  # U^T A0^-1 E core v
        return (first - back.squeeze(-1)) @ self.vectors.T


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
        self._cache: tuple[Tensor, ...] | None = None
        self.register_load_state_dict_post_hook(lambda module, _: module.clear_cache())

    @property
    def kernel(self) -> FixedWeightSumKernel:
        """The fixed-weight sum kernel (``beta`` and ``scales`` buffers)."""
        return self.gp.covar_module.base_kernel  # type: ignore[return-value]

    def clear_cache(self) -> None:
        """Forget the cached posterior factors (after new weights, a device move or training)."""
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

    def _exact_cache(self) -> tuple[Tensor, ...]:
        """``(U, w, U rows, core, weights, scale)`` of :class:`SharedKernelSystems` on the training rows."""
        if self._cache is None:
            with torch.no_grad():
                x = self.train_inputs
                systems = SharedKernelSystems.build(self.kernel.forward(x, x), self.label_noise)
                scale = self.gp.covar_module.outputscale.double()
                extra = self.likelihood.second_noise_covar.noise.double().reshape(-1)
                resid = self.train_targets.double() - self.gp.mean_module.constant.double().unsqueeze(-1)
                w, u_rows, core, _ = systems.terms(scale, extra)
                weights = systems.solve(resid, scale, extra)  # A_c^-1 (y_c - mu_c), (c, N)
                dtype = x.dtype
                self._cache = tuple(
                    t.to(dtype) for t in (systems.vectors, w, u_rows * w.unsqueeze(-2), core, weights, scale)
                )
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
        vectors, w, rows_w, core, weights, scale = self._exact_cache()
        cross = self.kernel.forward(x, self.train_inputs)  # K(x, X) without the class scales, (n, N)
        mean = self.gp.mean_module(x) + scale.unsqueeze(-1) * (cross @ weights.T).T
        proj = cross @ vectors  # (n, N): U^T k_* per test point
        quad = (proj.pow(2) @ w.T).T  # k_*^T A0_c^-1 k_*, (c, n)
        c, r, n_train = rows_w.shape
        g = (rows_w.reshape(c * r, n_train) @ proj.T).reshape(c, r, -1)  # E_c^T A0_c^-1 k_*, (c, r, n)
        quad = quad - ((core @ g) * g).sum(-2)  # Woodbury: k_*^T A_c^-1 k_*
        prior = self.gp.covar_module(x, diag=True)
        return mean, (prior - scale.pow(2).unsqueeze(-1) * quad).clamp_min(1e-10)

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
