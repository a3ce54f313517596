import numpy as np
import pytest
import torch
from scipy.stats import mannwhitneyu

from probfusion.errors import InputDataError
from probfusion.metrics.detection import detection_auroc


def test_hand_computed_pairs_with_a_tie():
    # Pairs (shifted > clean): (0.5 vs 0.1) yes, (0.5 vs 0.5) tie, (0.9 vs both) yes: (1 + 0.5 + 2) / 4.
    assert detection_auroc(torch.tensor([0.1, 0.5]), torch.tensor([0.5, 0.9])) == pytest.approx(0.875)


@pytest.mark.parametrize("seed", range(3))
def test_equals_the_mann_whitney_statistic_from_scipy(seed):
    rng = np.random.default_rng(seed)
    clean, shifted = rng.normal(size=40), rng.normal(0.5, size=55).round(1)
    u = mannwhitneyu(shifted, clean).statistic
    assert detection_auroc(clean, shifted) == pytest.approx(u / (40 * 55), abs=1e-12)


def test_constant_scores_give_chance_and_separated_scores_give_one():
    assert detection_auroc(np.zeros(5), np.zeros(7)) == 0.5
    assert detection_auroc(np.zeros(5), np.ones(7)) == 1.0
    assert detection_auroc(np.ones(5), np.zeros(7)) == 0.0


def test_empty_or_nan_scores_are_errors():
    with pytest.raises(InputDataError, match="clean and shifted"):
        detection_auroc(np.array([]), np.ones(3))
    with pytest.raises(InputDataError, match="NaN"):
        detection_auroc(np.array([np.nan]), np.ones(3))
