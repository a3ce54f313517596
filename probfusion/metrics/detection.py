r"""How well a score tells shifted or attacked inputs from clean ones: the AUROC.

Clean inputs are the negatives and shifted ones the positives; a higher score should mean "shifted". The AUROC
is the probability that a random shifted input scores above a random clean one (ties count one half):

.. math::
    \mathrm{AUROC} = P(S_{\mathrm{shift}} > S_{\mathrm{clean}}) + \tfrac12 P(S_{\mathrm{shift}} = S_{\mathrm{clean}})

0.5 is chance, 1 perfect detection, below 0.5 a score that falls under shift. Cost: O((n + n') log(n + n')).
Reference: Hendrycks and Gimpel, 2017 (ICLR), "A Baseline for Detecting Misclassified and Out-of-Distribution
Examples in Neural Networks". Computed with scikit-learn's ``roc_auc_score``.
"""

from __future__ import annotations

import numpy as np
import torch
from sklearn.metrics import roc_auc_score

from probfusion.errors import InputDataError

__all__ = ["detection_auroc"]


def detection_auroc(clean: torch.Tensor | np.ndarray, shifted: torch.Tensor | np.ndarray) -> float:
    """AUROC of a score for telling shifted (positive) from clean (negative) inputs.

    Args:
        clean: A `(n,)` array of scores of clean inputs (for example predictive entropy).
        shifted: A `(n',)` array of scores of shifted or attacked inputs.

    Returns:
        The AUROC in [0, 1]; 0.5 when every score is equal.

    Raises:
        InputDataError: If either side is empty or a score is NaN.

    Example:
        >>> detection_auroc(torch.tensor([0.1, 0.4]), torch.tensor([0.35, 0.8]))
        0.75
    """
    a = np.asarray(clean.detach().cpu() if isinstance(clean, torch.Tensor) else clean, dtype=np.float64).ravel()
    b = np.asarray(shifted.detach().cpu() if isinstance(shifted, torch.Tensor) else shifted, dtype=np.float64).ravel()
    if a.size == 0 or b.size == 0:
        raise InputDataError(f"AUROC needs clean and shifted scores; got {a.size} clean and {b.size} shifted.")
    if np.isnan(a).any() or np.isnan(b).any():
        raise InputDataError("AUROC scores contain NaN; check the predictive probabilities for NaN.")
    labels = np.concatenate([np.zeros(a.size), np.ones(b.size)])
    return float(roc_auc_score(labels, np.concatenate([a, b])))
