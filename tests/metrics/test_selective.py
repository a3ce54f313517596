import itertools

import numpy as np
import pytest

from probfusion.errors import InputDataError
from probfusion.metrics import aurc, coverage_threshold, risk_coverage


def _brute_force_aurc(u, correct):
    """The mean over every ordering of tied rows of (1/n) sum_k risk(k/n): the definition, by enumeration."""
    n, total, count = len(u), 0.0, 0
    for order in itertools.permutations(range(n)):
        if any(u[a] > u[b] for a, b in itertools.pairwise(order)):
            continue  # only orderings consistent with the scores
        errors = np.cumsum([1 - correct[i] for i in order])
        total += np.mean(errors / np.arange(1, n + 1))
        count += 1
    return total / count


@pytest.mark.parametrize("seed", range(6))
def test_aurc_matches_brute_force_without_ties(seed):
    rng = np.random.default_rng(seed)
    u = rng.random(7)
    correct = rng.random(7) > 0.4
    assert aurc(u, correct) == pytest.approx(_brute_force_aurc(u, correct))


def test_a_perfect_ordering_has_the_lowest_aurc_and_a_reversed_one_the_highest():
    correct = np.array([1, 1, 1, 0, 0])
    best = aurc(np.arange(5.0), correct)
    worst = aurc(-np.arange(5.0), correct)
    assert best < aurc(np.zeros(5), correct) < worst  # all tied: the overall error rate
    assert aurc(np.zeros(5), correct) == pytest.approx(0.4)


def test_ties_enter_together():
    curve = risk_coverage(np.array([0.2, 0.2, 0.1]), np.array([0, 1, 1]))
    np.testing.assert_allclose(curve.coverage, [1 / 3, 1.0])
    np.testing.assert_allclose(curve.risk, [0.0, 1 / 3])


def test_the_threshold_answers_at_least_the_target_share_on_the_rows_it_was_chosen_on():
    u = np.random.default_rng(0).random(101)
    for coverage in (0.5, 0.9, 0.95, 1.0):
        t = coverage_threshold(u, coverage)
        assert np.mean(u <= t) >= coverage
        assert np.mean(u < t) < coverage  # and it is the smallest such threshold


def test_bad_inputs_are_one_line_errors():
    with pytest.raises(InputDataError, match="one value per row"):
        aurc(np.zeros(3), np.zeros(4))
    with pytest.raises(InputDataError, match="NaN"):
        aurc(np.array([np.nan]), np.array([1]))
    with pytest.raises(InputDataError, match="coverage"):
        coverage_threshold(np.zeros(3), 0.0)
