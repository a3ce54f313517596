"""Sanity checks of an attack evaluation: accuracy falls with the budget; an attack beats a weaker one.

Both checks take the evaluation's numbers and return a JSON-ready dict with ``passed`` and a one-line ``detail``.
An attack evaluation that fails them measures the optimiser, not the model (Carlini et al., 2019, "On Evaluating
Adversarial Robustness").
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch

__all__ = ["monotone_check", "strength_check"]


def monotone_check(curves: Mapping[str, Sequence[float]], tol: float) -> dict[str, Any]:
    """Check that no accuracy curve rises by more than ``tol`` from one budget (or severity) to the next.

    Args:
        curves: ``{label: accuracies}``, each clean first and in increasing budget.
        tol: Allowed rise (Monte Carlo and attack randomness).

    Returns:
        ``passed``, ``max_rise``, ``tolerance`` and ``detail``.

    Example:
        >>> monotone_check({"all": [0.9, 0.8, 0.81]}, tol=0.005)["passed"]
        False
    """
    worst = max((max(np.diff(y), default=0.0) for y in curves.values()), default=0.0)
    return {
        "passed": bool(worst <= tol),
        "max_rise": float(worst),
        "tolerance": tol,
        "detail": f"accuracy never rises with budget or severity (largest rise {worst:+.4f}, tolerance {tol:.4f})",
    }


def strength_check(
    strong: Mapping[tuple[str, float], torch.Tensor],
    weak: Mapping[tuple[str, float], torch.Tensor],
    *,
    strong_name: str,
    weak_name: str,
    tol: float,
) -> dict[str, Any]:
    """Check that the strong attack leaves no higher accuracy than the weak one on any (modality set, eps) cell.

    Both attacks are random (starts, posterior draws), so on each cell the excess accuracy may reach ``tol`` or two
    standard errors of the paired per-row difference, whichever is larger: a stronger attack can lose a handful
    of rows to chance, but not significantly.

    Args:
        strong: ``{(modality set, eps): (n,) bool}``, which rows the model still gets right under the strong attack.
        weak: The same under the weak attack, on the same cells and rows.
        strong_name: Name of the strong attack, for the message.
        weak_name: Name of the weak attack; also keys ``<weak_name>_accuracy`` in the result.
        tol: The smallest allowed excess.

    Returns:
        ``passed``, ``<weak_name>_accuracy`` per cell, and ``detail`` naming the worst cell.
    """
    excess, allowed = {}, {}
    for key, weak_correct in weak.items():
        diff = strong[key].double() - weak_correct.double()  # (n,) in {-1, 0, 1}
        excess[key] = float(diff.mean())
        paired_se = float(diff.std(correction=1)) / math.sqrt(len(diff)) if len(diff) > 1 else 0.0
        allowed[key] = max(tol, 2.0 * paired_se)
    worst = max(excess, key=lambda k: excess[k] - allowed[k])
    return {
        "passed": all(excess[k] <= allowed[k] for k in excess),
        f"{weak_name}_accuracy": {f"{k[0]}@{k[1]}": float(v.double().mean()) for k, v in weak.items()},
        "detail": f"{strong_name} at least as strong as {weak_name.upper()} (worst cell {worst[0]}@{worst[1]:g}: "
        f"excess accuracy {excess[worst]:+.4f}, allowed {allowed[worst]:.4f} = max(tol, 2 paired SE))",
    }
