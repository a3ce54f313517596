r"""White-box attacks in input space on any :class:`~probfusion.fusion.protocol.Predictor`: FGSM, PGD, EOT-PGD.

The attacks perturb one, several or all modalities of a batch at once and leave the others untouched. Budgets
are in units of each feature's training standard deviation (see :mod:`probfusion.robustness.budgets`); no
clamping to a data range is applied, because standardised features have none.

The loss is the predictive negative log-likelihood of the label under ``s`` posterior draws, minus an optional
weight on the mutual information (the adaptive attack against uncertainty-based detectors):

.. math::
    \bar p(y \mid x) = \frac{1}{s} \sum_{k=1}^{s} \mathrm{softmax}(f_{\theta_k}(x))_y, \qquad
    L(x) = -\log \bar p(y \mid x) - \lambda \Big( H[\bar p(\cdot \mid x)]
        - \frac{1}{s} \sum_k H[p_{\theta_k}(\cdot \mid x)] \Big)

PGD (Madry et al., 2018) starts from a uniform draw in the ball, takes ``steps`` steepest-ascent steps of size
``step_size * eps`` (default ``2.5 eps / steps``) with projection, runs ``restarts`` starts side by side (the
batch is tiled, not looped), and returns per sample the strongest iterate seen, not the last one: one that the
predictive misclassifies if there is any, else the one of highest loss. For a stochastic model every gradient
step draws fresh posterior samples: plain PGD uses one draw per step, EOT-PGD (Athalye et al., 2018)
``attack_samples`` draws whose predictive NLL averages the gradient over the posterior, so a Bayesian model's
robustness is not overstated by noisy (masked) gradients. The iterates themselves are compared under one fixed
set of ``selection_samples`` draws, the same at every step (common random numbers): judged on each step's own
fresh draws, a lucky draw would lock in a weak iterate as "misclassified".

Cost: ``restarts * (steps + 1)`` forward and ``restarts * steps`` backward passes of the model on the batch,
each with ``samples`` posterior draws; a stochastic model adds ``restarts * (steps + 1)`` forward passes with
``selection_samples`` draws (no backward) to judge the iterates.

References: Goodfellow et al., 2015 (ICLR), "Explaining and Harnessing Adversarial Examples"; Madry et al.,
2018 (ICLR), "Towards Deep Learning Models Resistant to Adversarial Attacks"; Athalye et al., 2018 (ICML),
"Obfuscated Gradients Give a False Sense of Security".
"""

from __future__ import annotations

import functools
import inspect
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch
from torch import Tensor

from probfusion.errors import ConfigError
from probfusion.options import AttackKind, parse_option
from probfusion.robustness.budgets import NormKind, project, random_start, steepest_ascent

if TYPE_CHECKING:  # a runtime import would pull in probfusion.fusion and, through it, probfusion.config
    from probfusion.fusion.protocol import Predictor

__all__ = ["AttackResult", "attack_loss", "fgsm", "is_stochastic", "pgd", "run_attack", "sample_logits"]


@functools.cache
def _takes_generator(method_owner: type) -> bool:
    params = inspect.signature(method_owner.predictive_logits).parameters
    return "generator" in params or any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())


def sample_logits(
    model: Predictor, views: Mapping[str, Tensor], num_samples: int, *, generator: torch.Generator | None = None
) -> Tensor:
    """Draw predictive logits, passing ``generator`` only to models whose ``predictive_logits`` accepts it.

    Args:
        model: Any predictor.
        views: ``{m: (n, d_m)}`` inputs.
        num_samples: Posterior draws s (deterministic models return one).
        generator: Source of the posterior draws, for models that take one.

    Returns:
        A `(s, n, c)` tensor of logits, differentiable in ``views``.
    """
    if generator is not None and _takes_generator(type(model)):
        return model.predictive_logits(views, num_samples, generator=generator)  # type: ignore[call-arg]
    return model.predictive_logits(views, num_samples)


@torch.no_grad()
def is_stochastic(model: Predictor, views: Mapping[str, Tensor]) -> bool:
    """Whether ``model`` returns more than one posterior draw (probed on the first row of ``views``).

    A throwaway generator is used, so the caller's random streams are untouched.
    """
    probe = {m: x[:1] for m, x in views.items()}
    return sample_logits(model, probe, 2, generator=torch.Generator().manual_seed(0)).shape[0] > 1


def attack_loss(logits: Tensor, labels: Tensor, *, mi_weight: float = 0.0) -> Tensor:
    """Per-sample predictive NLL minus ``mi_weight`` times the mutual information, computed in log space.

    Args:
        logits: A `(s, n, c)` tensor of per-draw logits.
        labels: A `(n,)` tensor of labels.
        mi_weight: Weight lambda of the mutual information (0: plain NLL).

    Returns:
        A `(n,)` tensor of losses (higher is worse for the model).

    Example:
        >>> logits = torch.tensor([[[0.0, 0.0]]])
        >>> round(float(attack_loss(logits, torch.tensor([0]))[0]), 4)
        0.6931
    """
    log_p = logits.log_softmax(dim=-1)
    log_mean = torch.logsumexp(log_p, dim=0) - math.log(log_p.shape[0])
    loss = -log_mean.gather(-1, labels.unsqueeze(-1)).squeeze(-1)
    if mi_weight:
        entropy_of_mean = -(log_mean.exp() * log_mean).sum(dim=-1)
        mean_entropy = -(log_p.exp() * log_p).sum(dim=-1).mean(dim=0)
        loss = loss - mi_weight * (entropy_of_mean - mean_entropy)
    return loss


@dataclass(frozen=True, eq=False)
class AttackResult:
    """What an attack returns.

    Attributes:
        views: ``{m: (n, d_m)}`` adversarial inputs (every modality; the unattacked ones unchanged), detached.
        loss: A `(n,)` tensor: the attack loss at the returned inputs, as estimated during the search (for a
            stochastic model, under the search's fixed selection draws).
        zero_gradient_share: Share of exactly-zero entries of the first step's input gradient over the
            attacked features (a high share warns of masked gradients).
    """

    views: dict[str, Tensor]
    loss: Tensor
    zero_gradient_share: float


def _check(model: Predictor, views: Mapping[str, Tensor], modalities: Sequence[str], eps: float) -> None:
    unknown = [m for m in modalities if m not in views]
    if not modalities or unknown:
        raise ConfigError(f"Cannot attack modalities {list(modalities)}; expected a non-empty subset of {list(views)}.")
    if not math.isfinite(eps) or eps < 0:
        raise ConfigError(f"Attack budget eps must be a finite number >= 0; got {eps!r}.")


def _loss_and_grad(
    model: Predictor,
    views: Mapping[str, Tensor],
    delta: Mapping[str, Tensor],
    labels: Tensor,
    *,
    samples: int,
    mi_weight: float,
    generator: torch.Generator | None,
    need_grad: bool = True,
) -> tuple[Tensor, Tensor, dict[str, Tensor]]:
    """Loss ``(n,)``, whether the draws' mean prediction is wrong ``(n,)``, and input gradients (or ``{}``)."""
    leaves = {m: d.detach().requires_grad_(need_grad) for m, d in delta.items()}
    with torch.enable_grad():
        perturbed = {m: x + leaves[m] if m in leaves else x for m, x in views.items()}
        logits = sample_logits(model, perturbed, samples, generator=generator)
        loss = attack_loss(logits, labels, mi_weight=mi_weight)
        fooled = logits.detach().softmax(dim=-1).mean(dim=0).argmax(dim=-1) != labels
        if not need_grad:
            return loss.detach(), fooled, {}
        grads = torch.autograd.grad(loss.sum(), list(leaves.values()))
    return loss.detach(), fooled, dict(zip(leaves, grads, strict=True))


def _zero_share(grads: Mapping[str, Tensor]) -> float:
    total = sum(g.numel() for g in grads.values())
    return float(sum(int((g == 0).sum()) for g in grads.values()) / max(total, 1))


def fgsm(
    model: Predictor,
    views: Mapping[str, Tensor],
    labels: Tensor,
    *,
    eps: float,
    modalities: Sequence[str],
    norm: NormKind = NormKind.LINF,
    samples: int = 1,
    mi_weight: float = 0.0,
    generator: torch.Generator | None = None,
) -> AttackResult:
    """Fast gradient (sign) method: one step of length ``eps`` along the loss gradient, from the clean input.

    Args:
        model: Any predictor, differentiable in its inputs.
        views: ``{m: (n, d_m)}`` standardised clean inputs.
        labels: A `(n,)` tensor of true labels.
        eps: Budget in units of each feature's training standard deviation.
        modalities: The modalities to perturb.
        norm: L-inf (the sign of the gradient) or L2 (the normalised gradient).
        samples: Posterior draws per gradient (1 for plain, more for EOT).
        mi_weight: Weight of the mutual information subtracted from the loss (adaptive attack).
        generator: Source of posterior draws.

    Returns:
        The adversarial inputs, their loss and the share of zero gradients.
    """
    _check(model, views, modalities, eps)
    norm = NormKind(norm)
    zero = {m: torch.zeros_like(views[m]) for m in modalities}
    kwargs = {"samples": samples, "mi_weight": mi_weight, "generator": generator}
    _, _, grads = _loss_and_grad(model, views, zero, labels, **kwargs)  # type: ignore[arg-type]
    delta = {m: eps * d for m, d in steepest_ascent(grads, norm).items()}
    loss, _, _ = _loss_and_grad(model, views, delta, labels, need_grad=False, **kwargs)  # type: ignore[arg-type]
    adversarial = {m: (x + delta[m] if m in delta else x).detach() for m, x in views.items()}
    return AttackResult(views=adversarial, loss=loss, zero_gradient_share=_zero_share(grads))


def pgd(
    model: Predictor,
    views: Mapping[str, Tensor],
    labels: Tensor,
    *,
    eps: float,
    modalities: Sequence[str],
    steps: int = 10,
    step_size: float | None = None,
    restarts: int = 1,
    norm: NormKind = NormKind.LINF,
    samples: int = 1,
    mi_weight: float = 0.0,
    random_init: bool = True,
    selection_samples: int | None = None,
    generator: torch.Generator | None = None,
) -> AttackResult:
    """Projected gradient ascent with random starts, keeping each sample's strongest iterate.

    The strongest iterate is one misclassified by the step's predictive if any, else the highest-loss one, so the
    result is at least as strong as every point the search visited.

    Args:
        model: Any predictor, differentiable in its inputs.
        views: ``{m: (n, d_m)}`` standardised clean inputs.
        labels: A `(n,)` tensor of true labels.
        eps: Budget in units of each feature's training standard deviation.
        modalities: The modalities to perturb.
        steps: Gradient steps per start.
        step_size: Step length as a multiple of ``eps``; ``None`` takes Madry et al.'s ``2.5 / steps``, so the
            steps together can cross the ball from a random start.
        restarts: Independent random starts, run side by side; the best per sample is kept.
        norm: The budget's norm.
        samples: Fresh posterior draws per step (1: PGD; more: EOT-PGD). Ignored by deterministic models.
        mi_weight: Weight of the mutual information subtracted from the loss (adaptive attack).
        random_init: Start from a uniform draw in the ball (else from the clean input).
        selection_samples: Fixed posterior draws under which a stochastic model's iterates are compared (``None``:
            ``max(samples, 16)``). Ignored by deterministic models.
        generator: Source of the random starts and posterior draws.

    Returns:
        The adversarial inputs, their loss and the share of zero gradients at the first step.
    """
    _check(model, views, modalities, eps)
    norm = NormKind(norm)
    step_size = 2.5 / steps if step_size is None and steps >= 1 else step_size
    if steps < 1 or restarts < 1 or not (step_size or 0) > 0:
        raise ConfigError(f"PGD needs steps >= 1, restarts >= 1, step_size > 0; got {steps}, {restarts}, {step_size}.")
    n = labels.shape[0]
    tiled = {m: x.repeat(restarts, 1) for m, x in views.items()}
    tiled_labels = labels.repeat(restarts)
    attacked = {m: tiled[m] for m in modalities}
    if random_init:
        delta = random_start(attacked, eps, norm, generator=generator)
    else:
        delta = {m: torch.zeros_like(x) for m, x in attacked.items()}
    kwargs = {"samples": samples, "mi_weight": mi_weight, "generator": generator}
    stochastic = is_stochastic(model, views)
    select_seed = int(torch.randint(2**62, (1,), generator=generator)) if stochastic else 0
    select_kwargs = {"samples": selection_samples or max(samples, 16), "mi_weight": mi_weight}
    best_loss = torch.full((restarts * n,), -math.inf, dtype=views[modalities[0]].dtype, device=labels.device)
    best_fooled = torch.zeros_like(tiled_labels, dtype=torch.bool)
    best = {m: d.clone() for m, d in delta.items()}
    zero_share = 0.0
    for step in range(steps + 1):
        if stochastic:  # judge the iterate on the fixed draws, step on fresh ones
            fixed = torch.Generator().manual_seed(select_seed)
            loss, fooled, _ = _loss_and_grad(
                model, tiled, delta, tiled_labels, generator=fixed, need_grad=False, **select_kwargs
            )  # type: ignore[arg-type]
            grads = _loss_and_grad(model, tiled, delta, tiled_labels, **kwargs)[2] if step < steps else {}  # type: ignore[arg-type]
        else:
            loss, fooled, grads = _loss_and_grad(model, tiled, delta, tiled_labels, need_grad=step < steps, **kwargs)  # type: ignore[arg-type]
        # An iterate that fools the model beats one that does not; among equals, the higher loss wins.
        improved = (fooled & ~best_fooled) | ((fooled == best_fooled) & (loss > best_loss))
        best_loss = torch.where(improved, loss, best_loss)
        best_fooled = best_fooled | fooled
        best = {m: torch.where(improved.unsqueeze(-1), delta[m], best[m]) for m in delta}
        if not grads:
            break
        if step == 0:
            zero_share = _zero_share(grads)
        direction = steepest_ascent(grads, norm)
        delta = project({m: delta[m] + step_size * eps * direction[m] for m in delta}, eps, norm)
    # Pick, per sample, the restart that fools the model, else the one with the highest loss: (restarts, n) -> (n,).
    finite = best_loss.view(restarts, n)
    key = finite + torch.where(best_fooled.view(restarts, n), 2.0 * finite.abs().max() + 1.0, 0.0)
    winner = key.argmax(dim=0)
    rows = winner * n + torch.arange(n, device=winner.device)
    adversarial = {m: (x + best[m][rows] if m in best else x).detach() for m, x in views.items()}
    return AttackResult(views=adversarial, loss=best_loss[rows], zero_gradient_share=zero_share)


def run_attack(
    model: Predictor,
    views: Mapping[str, Tensor],
    labels: Tensor,
    *,
    kind: AttackKind | str,
    eps: float,
    modalities: Sequence[str],
    steps: int = 10,
    step_size: float | None = None,
    restarts: int = 1,
    norm: NormKind | str = NormKind.LINF,
    attack_samples: int = 8,
    mi_weight: float = 0.0,
    generator: torch.Generator | None = None,
) -> AttackResult:
    """Run the attack ``kind`` with the settings of an evaluation.

    ``none`` returns the clean inputs, ``fgsm`` and ``pgd`` use one posterior draw per gradient, ``eot-pgd``
    uses ``attack_samples`` fresh draws per step.

    Args:
        model: Any predictor.
        views: ``{m: (n, d_m)}`` standardised clean inputs.
        labels: A `(n,)` tensor of true labels.
        kind: The attack.
        eps: Budget in units of each feature's training standard deviation.
        modalities: The modalities to perturb.
        steps: PGD steps.
        step_size: PGD step as a multiple of ``eps`` (``None``: ``2.5 / steps``).
        restarts: PGD random starts.
        norm: The budget's norm.
        attack_samples: Posterior draws per EOT-PGD step.
        mi_weight: Weight of the mutual information subtracted from the loss (adaptive attack).
        generator: Source of randomness.

    Returns:
        The attack's result.
    """
    kind = parse_option(kind, AttackKind, name="attack")
    norm = parse_option(norm, NormKind, name="norm")
    if kind is AttackKind.NONE:
        _check(model, views, modalities, eps)
        loss, _, _ = _loss_and_grad(
            model, views, {}, labels, samples=1, mi_weight=mi_weight, generator=generator, need_grad=False
        )
        return AttackResult(views={m: x.detach() for m, x in views.items()}, loss=loss, zero_gradient_share=0.0)
    if kind is AttackKind.FGSM:
        return fgsm(
            model, views, labels, eps=eps, modalities=modalities, norm=norm, mi_weight=mi_weight, generator=generator
        )
    return pgd(
        model,
        views,
        labels,
        eps=eps,
        modalities=modalities,
        steps=steps,
        step_size=step_size,
        restarts=restarts,
        norm=norm,
        samples=attack_samples if kind is AttackKind.EOT_PGD else 1,
        mi_weight=mi_weight,
        generator=generator,
    )
