"""The logistic regression on the concatenated views: the reference a user would otherwise pick.

A multinomial logistic regression (scikit-learn's L-BFGS solver) on the standardised inputs
``[x_1; ...; x_M]``, with the inverse regularisation strength C chosen on validation NLL from a grid. Its fitted
map is returned as tensors, so the fusion classifier can hold it as buffers and stay differentiable in the
inputs (:mod:`probfusion.inference.linear_pool`).

Why scikit-learn: its L-BFGS multinomial solver is the implementation the real-data benchmark's references use
(``studies/real_benchmark.py``), so the regression inside a run and the one it is compared with are the same.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from sklearn.linear_model import LogisticRegression
from torch import Tensor

from probfusion.errors import ConfigError

__all__ = ["LogisticFit", "fit_logistic_regression"]

_MAX_ITER = 2000
# Classes absent from the training rows get this logit below the lowest bias (probability ~1e-13 of the rest):
# the regression never saw them, and a finite value keeps the pooled logits finite.
_ABSENT_CLASS_OFFSET = 30.0


@dataclass(frozen=True, eq=False)
class LogisticFit:
    """A fitted multinomial logistic regression, ``logits = x W^T + b``.

    Attributes:
        weight: A `(c, D)` tensor, D = sum_m d_m in modality order.
        bias: A `(c,)` tensor.
        c: The chosen inverse regularisation strength.
        val_nll: Its mean validation NLL.
        val_nll_by_c: ``{C: validation NLL}`` over the grid.
    """

    weight: Tensor
    bias: Tensor
    c: float
    val_nll: float
    val_nll_by_c: dict[float, float]

    def logits(self, x: Tensor) -> Tensor:
        """``(n, c)`` logits of ``(n, D)`` concatenated inputs."""
        return x @ self.weight.to(x).T + self.bias.to(x)


def _as_tensors(model: LogisticRegression, num_classes: int) -> tuple[Tensor, Tensor]:
    """``(c, D)`` weight and ``(c,)`` bias over all ``num_classes`` from scikit-learn's (classes seen only)."""
    coef, intercept = model.coef_, model.intercept_
    if coef.shape[0] == 1:  # two classes: scikit-learn keeps the logit of class 1 against class 0
        coef, intercept = np.vstack([np.zeros_like(coef), coef]), np.concatenate([[0.0], intercept])
    weight = np.zeros((num_classes, coef.shape[1]))
    bias = np.full(num_classes, intercept.min() - _ABSENT_CLASS_OFFSET)
    weight[model.classes_], bias[model.classes_] = coef, intercept
    return torch.as_tensor(weight, dtype=torch.float32), torch.as_tensor(bias, dtype=torch.float32)


def _nll(logits: Tensor, labels: Tensor) -> float:
    return float(torch.nn.functional.cross_entropy(logits.double(), labels.long()))


def fit_logistic_regression(
    x_train: Tensor, y_train: Tensor, x_val: Tensor, y_val: Tensor, *, num_classes: int, c_grid: Sequence[float]
) -> LogisticFit:
    """Fit one regression per C on the training rows; keep the lowest validation NLL (the smaller C on a tie).

    Args:
        x_train: A `(n, D)` tensor of standardised, concatenated training inputs.
        y_train: A `(n,)` tensor of class indices.
        x_val: A `(n_val, D)` tensor of validation inputs.
        y_val: A `(n_val,)` tensor of class indices.
        num_classes: Number of classes c (a class absent from the training rows gets a very low logit).
        c_grid: The values of C to try (scikit-learn's: larger is weaker regularisation).

    Returns:
        The chosen fit. Cost: one L-BFGS solve per C, each O(iterations * n * D * c).

    Raises:
        ConfigError: On an empty grid or a non-positive C.
    """
    if not c_grid or any(not (c > 0 and math.isfinite(c)) for c in c_grid):
        raise ConfigError(f"The logistic regression's C grid must be positive finite values; got {list(c_grid)}.")
    x, y = x_train.detach().cpu().double().numpy(), y_train.detach().cpu().numpy()
    fits: dict[float, tuple[Tensor, Tensor]] = {}
    by_c: dict[float, float] = {}
    for c in sorted(c_grid):
        weight, bias = _as_tensors(LogisticRegression(C=c, max_iter=_MAX_ITER).fit(x, y), num_classes)
        fits[c] = weight, bias
        by_c[c] = _nll(x_val.detach().cpu() @ weight.T + bias, y_val.cpu())
    chosen = min(by_c, key=by_c.__getitem__)  # the first, i.e. smallest, C of equal NLLs
    weight, bias = fits[chosen]
    return LogisticFit(weight=weight, bias=bias, c=chosen, val_nll=by_c[chosen], val_nll_by_c=by_c)
