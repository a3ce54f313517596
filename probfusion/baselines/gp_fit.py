"""Fitting the GP + MKL baseline: features, per-modality kernels, MKL weights (cvxpy), then the GP's hyperparameters.

The model itself (:class:`~probfusion.baselines.gp.GPMKLClassifier`) is in :mod:`probfusion.baselines.gp`; the
regression targets are Milios et al.'s Dirichlet transform of the labels (see :func:`dirichlet_targets`).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import gpytorch  # imported (warning filtered) by probfusion.baselines.gp first
import torch
from torch import Tensor

from probfusion.baselines.gp import GPMKLClassifier, SharedKernelSystems
from probfusion.baselines.kernels import kernel_factor, kernel_scale
from probfusion.baselines.mkl import MKLResult, solve_mkl_dual
from probfusion.config import GPMKLConfig, JWAEConfig
from probfusion.encoders.jwae import JointWAE
from probfusion.errors import ConfigError
from probfusion.inference.data import TensorData
from probfusion.options import KernelFeatures

__all__ = ["GPMKLFit", "dirichlet_targets", "fit_gp_mkl"]


def dirichlet_targets(labels: Tensor, num_classes: int, *, alpha_epsilon: float = 0.01) -> tuple[Tensor, Tensor]:
    """Milios et al.'s regression targets and noise for class labels.

    Args:
        labels: ``(N,)`` int64 labels in ``0..c-1``.
        num_classes: c.
        alpha_epsilon: Pseudo-count of the classes other than the label.

    Returns:
        ``(c, N)`` targets and ``(c, N)`` noise variances.
    """
    alpha = torch.full((labels.shape[0], num_classes), alpha_epsilon, dtype=torch.float64, device=labels.device)
    alpha[torch.arange(labels.shape[0]), labels] += 1.0
    noise = torch.log1p(alpha.reciprocal())
    return (alpha.log() - 0.5 * noise).T.contiguous(), noise.T.contiguous()


@dataclass(frozen=True, eq=False)
class GPMKLFit:
    """A fitted GP + MKL baseline.

    Attributes:
        model: The classifier, in eval mode.
        kernel_weights: ``{m: beta_m}``, the MKL weights normalised to sum to one.
        solver_status: The cvxpy status of the MKL problem.
        solver_seconds: Wall-clock seconds of the MKL solve.
        fit_seconds: Wall-clock seconds of the whole fit (features, kernels, MKL, GP hyperparameters).
        mkl: The solver's full result.
        losses: The GP's negative marginal log likelihood (or ELBO) per step, per training point.
    """

    model: GPMKLClassifier
    kernel_weights: dict[str, float]
    solver_status: str
    solver_seconds: float
    fit_seconds: float
    mkl: MKLResult
    losses: list[float] = field(default_factory=list)


def fit_gp_mkl(
    train: TensorData,
    *,
    encoder: JointWAE | None,
    config: GPMKLConfig,
    seed: int,
    num_classes: int | None = None,
) -> GPMKLFit:
    """Fit the GP + MKL baseline: kernels, MKL weights (cvxpy), then the GP's remaining hyperparameters.

    Args:
        train: Standardised training views ``{m: (N, d_m)}`` and ``(N,)`` labels.
        encoder: The frozen jWAE of a trained classifier when ``config.features`` is ``latent``; ``None`` for
            ``input``. Its weights are copied into the returned model; the argument itself is not modified.
        config: The baseline's settings.
        seed: Seeds the median-heuristic subsets, Nystrom landmarks, inducing points and minibatches.
        num_classes: c; ``None`` takes ``max(label) + 1``.

    Returns:
        The fitted model with its kernel weights and solver record.

    Raises:
        ConfigError: If latent features are asked for without an encoder.
        MKLSolverError: If the MKL solver fails.
    """
    start = time.perf_counter()
    if config.features is KernelFeatures.LATENT and encoder is None:
        raise ConfigError(
            "GP-MKL features 'latent' need the trained jWAE encoder; got encoder=None. Pass it, or use features "
            "'input'."
        )
    labels = train.labels.cpu()
    c = int(labels.max()) + 1 if num_classes is None else num_classes
    n = len(train)
    generator = torch.Generator().manual_seed(seed)
    jwae_config = encoder.config if encoder is not None else JWAEConfig()
    dims = {m: int(x.shape[1]) for m, x in train.views.items()}
    model = GPMKLClassifier(input_dims=dims, num_classes=c, num_train=n, jwae=jwae_config, config=config)
    if model.jwae is not None and encoder is not None:
        model.jwae.load_state_dict(encoder.state_dict())
        model.jwae.requires_grad_(False)
    model.eval()
    with torch.no_grad():
        views = {m: x.detach().cpu().float() for m, x in train.views.items()}
        x = model.features(views).double()
    blocks = x.split(list(model.kernel.widths), dim=-1)
    scales = [kernel_scale(b, kind=config.kernel, generator=generator) for b in blocks]
    factors = [
        kernel_factor(b, kind=config.kernel, scale=s, max_rank=config.factor_rank, generator=generator)
        for b, s in zip(blocks, scales, strict=True)
    ]
    mkl = solve_mkl_dual(
        factors,
        labels,
        formulation=config.formulation,
        multiclass=config.multiclass,
        svm_c=config.svm_c,
        basis_rank=config.basis_rank,
    )
    beta = torch.as_tensor(mkl.beta, dtype=torch.float64)
    beta = beta / beta.sum()
    targets, noise = dirichlet_targets(labels, c, alpha_epsilon=config.alpha_epsilon)
    with torch.no_grad():
        model.kernel.beta.copy_(beta)
        model.kernel.scales.copy_(torch.as_tensor(scales))
        model.gp.mean_module.constant.copy_(targets.mean(-1))
        model.gp.covar_module.outputscale = targets.var(-1).float()
    losses = _train_hyperparameters(model, x.float(), targets.float(), noise.float(), config, generator)
    model.eval()
    model.clear_cache()
    return GPMKLFit(
        model=model,
        kernel_weights={m: float(b) for m, b in zip(model.modalities, beta, strict=True)},
        solver_status=mkl.status,
        solver_seconds=mkl.seconds,
        fit_seconds=time.perf_counter() - start,
        mkl=mkl,
        losses=losses,
    )


def _train_hyperparameters(
    model: GPMKLClassifier, x: Tensor, targets: Tensor, noise: Tensor, config: GPMKLConfig, generator: torch.Generator
) -> list[float]:
    """Adam on the GP's mean, scale, extra noise (and variational parameters); the kernel weights stay fixed."""
    n = x.shape[0]
    model.likelihood.noise_covar.noise = noise
    if model.exact:
        model.train_inputs.copy_(x)
        model.train_targets.copy_(targets)
        model.label_noise.copy_(noise)
        # Subset of data for the hyperparameters only: a few per class, well determined by p points.
        keep = torch.randperm(n, generator=generator)[: config.hyperparameter_points].sort().values
        return _train_exact(model, x[keep], targets[:, keep], noise[:, keep], config)
    inducing = x[torch.randperm(n, generator=generator)[: model.gp.variational_strategy.inducing_points.shape[0]]]
    model.gp.variational_strategy.inducing_points.copy_(inducing)
    gp = model.gp
    objective = gpytorch.mlls.VariationalELBO(model.likelihood, gp, num_data=n)
    parameters = [p for p in [*gp.parameters(), *model.likelihood.parameters()] if p.requires_grad]
    optimizer = torch.optim.Adam(list(dict.fromkeys(parameters)), lr=config.learning_rate)
    batch = min(n, 1024)
    losses = []
    gp.train()
    model.likelihood.train()
    with gpytorch.settings.debug(False):
        for _ in range(config.gp_steps):
            index = torch.randperm(n, generator=generator)[:batch] if batch < n else torch.arange(n)
            optimizer.zero_grad()
            output = gp(x[index])
            # The batch's Dirichlet noise is set on the likelihood, not passed as noise=: GPyTorch hands that keyword
            # to the learned extra-noise term too, which then returns it in place of its own (twice the noise, and
            # an extra noise that never moves).
            model.likelihood.noise_covar.noise = noise[:, index]
            loss = -objective(output, targets[:, index]).mean()
            loss.backward()
            optimizer.step()
            losses.append(float(loss.detach()))
    gp.eval()
    model.likelihood.eval()
    return losses


def _train_exact(model: GPMKLClassifier, x: Tensor, targets: Tensor, noise: Tensor, config: GPMKLConfig) -> list[float]:
    """Adam on the exact marginal likelihood of all c classes at once, through one eigendecomposition.

    The objective is the model's exact log marginal likelihood, Dirichlet noise plus each class's extra noise (per
    point, averaged over classes; what GPyTorch's ``ExactMarginalLogLikelihood`` gives for it, tested against
    separately trained single-output GPyTorch GPs). The classes share the kernel, so :class:`SharedKernelSystems`
    decomposes it once (O(p^3)) and each step costs O(c p r^2) instead of c Cholesky factorisations (O(c p^3)),
    which with their backward passes were 80 % of a 100-class fit at N = 1,088 (208 of 254 s).
    """
    with torch.no_grad():
        systems = SharedKernelSystems.build(model.kernel.forward(x, x), noise)
    mean, scale = model.gp.mean_module, model.gp.covar_module
    extra = model.likelihood.second_noise_covar
    parameters = [mean.raw_constant, scale.raw_outputscale, extra.raw_noise]
    optimizer = torch.optim.Adam(parameters, lr=config.learning_rate)
    losses = []
    for _ in range(config.gp_steps):
        optimizer.zero_grad()
        log_marginal = systems.log_marginal(
            targets, mean.constant.double(), scale.outputscale.double(), extra.noise.double().reshape(-1)
        )
        loss = -(log_marginal / x.shape[0]).mean()
        loss.backward()
        optimizer.step()
        losses.append(float(loss.detach()))
    return losses
