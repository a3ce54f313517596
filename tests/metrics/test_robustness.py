import numpy as np
import pytest

from probfusion.errors import InputDataError
from probfusion.metrics.robustness import effective_robustness, relative_robustness


def test_relative_robustness_is_the_trapezoid_area_on_multibench_grid():
    f = [0.9, 0.8, 0.5, 0.45]
    # MultiBench's helper: sum of (f_i + f_{i+1}) * 0.1 / 2.
    multibench = sum((f[i] + f[i + 1]) * 0.1 / 2 for i in range(len(f) - 1))
    assert relative_robustness(f) == pytest.approx(multibench)
    assert relative_robustness(f) == pytest.approx(np.trapezoid(f, dx=0.1))


def test_relative_robustness_on_an_uneven_grid():
    assert relative_robustness([1.0, 0.5, 0.0], [0.0, 0.1, 0.3]) == pytest.approx(0.075 + 0.05)


def test_effective_robustness_against_a_shifted_reference():
    f, lf = [0.9, 0.85, 0.7], [0.8, 0.7, 0.4]
    # beta_f = lf + (f0 - lf0) = [0.9, 0.8, 0.5]; sum(f - beta_f) = 0 + 0.05 + 0.2.
    assert effective_robustness(f, lf) == pytest.approx(0.25)
    assert effective_robustness(lf, lf) == pytest.approx(0.0, abs=1e-15)


def test_bad_curves_are_errors():
    with pytest.raises(InputDataError, match="at least two"):
        relative_robustness([0.9])
    with pytest.raises(InputDataError, match="increasing"):
        relative_robustness([0.9, 0.8], [0.1, 0.0])
    with pytest.raises(InputDataError, match="one grid"):
        effective_robustness([0.9, 0.8], [0.9, 0.8, 0.7])
