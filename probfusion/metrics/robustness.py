r"""MultiBench's robustness summaries of a performance curve over a grid of shift severities or budgets.

For accuracies ``f_0, ..., f_K`` at levels ``x_0 < ... < x_K`` (``f_0`` clean), MultiBench (Liang et al., 2021,
``eval_scripts/robustness.py``) defines

.. math::
    \mathrm{relative}(f) = \sum_{k=0}^{K-1} \frac{f_k + f_{k+1}}{2} (x_{k+1} - x_k), \qquad
    \mathrm{effective}(f; g) = \sum_{k=0}^{K} \big( f_k - (g_k + f_0 - g_0) \big)

relative robustness is the trapezoid area under the curve (MultiBench uses ``x_k = k / 10``, the default here),
effective robustness the accuracy kept beyond a reference curve ``g`` (late fusion in MultiBench) shifted to
start at the same clean accuracy. MultiBench then min-max normalises both across the methods of its
leaderboard; these functions return the raw values, comparable between models on one grid. Cost: O(K).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from probfusion.errors import InputDataError

__all__ = ["effective_robustness", "relative_robustness"]


def _curve(values: Sequence[float], name: str) -> np.ndarray:
    f = np.asarray(values, dtype=np.float64).ravel()
    if f.size < 2 or not np.isfinite(f).all():
        raise InputDataError(f"{name} needs at least two finite values (clean first); got {list(values)}.")
    return f


def relative_robustness(values: Sequence[float], levels: Sequence[float] | None = None) -> float:
    """Trapezoid area under a performance curve over the severity grid.

    Args:
        values: A `(K + 1,)` sequence of accuracies, clean first.
        levels: A `(K + 1,)` increasing grid (default MultiBench's ``0, 0.1, ..., K / 10``).

    Returns:
        The area.

    Example:
        >>> round(relative_robustness([1.0, 0.8, 0.4]), 6)
        0.15
    """
    f = _curve(values, "relative_robustness")
    x = np.arange(f.size) / 10.0 if levels is None else np.asarray(levels, dtype=np.float64).ravel()
    if x.shape != f.shape or np.any(np.diff(x) <= 0):
        raise InputDataError(f"levels must be increasing and match values ({f.size}); got {list(x)}.")
    return float(np.sum((f[1:] + f[:-1]) / 2.0 * np.diff(x)))


def effective_robustness(values: Sequence[float], reference: Sequence[float]) -> float:
    """Accuracy kept beyond a reference curve started at the same clean accuracy, summed over the grid.

    Args:
        values: A `(K + 1,)` sequence of accuracies of the model, clean first.
        reference: A `(K + 1,)` sequence of accuracies of the reference (late fusion) on the same grid.

    Returns:
        The sum of ``f_k - (g_k + f_0 - g_0)``; positive when the model degrades more slowly than the reference.

    Example:
        >>> round(effective_robustness([0.9, 0.8, 0.6], [0.8, 0.6, 0.3]), 6)
        0.3
    """
    f = _curve(values, "effective_robustness")
    g = _curve(reference, "effective_robustness reference")
    if f.shape != g.shape:
        raise InputDataError(f"The model's curve has {f.size} levels but the reference's {g.size}; use one grid.")
    return float(np.sum(f - (g + f[0] - g[0])))
