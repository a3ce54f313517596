"""Temperature scaling: the bounded one-dimensional fit, against SciPy, and its use in training."""

from __future__ import annotations

import csv
import dataclasses
import io
import math

import numpy as np
import pytest
import torch
from scipy.optimize import minimize_scalar
from torch.nn import functional as F

from probfusion.api import fit, load_run
from probfusion.config import TrainConfig
from probfusion.errors import ConfigError
from probfusion.metrics.temperature import fit_temperature, tempered_log_probs
from probfusion.options import Calibration
from tests.helpers import small_config, write_separable_npz


def _history(path) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO((path / "history.csv").read_text())))


def _overconfident(n: int = 400, c: int = 4, scale: float = 4.0, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Logits whose labels are drawn from softmax(logits), multiplied by ``scale``: the true T is ``scale``."""
    generator = torch.Generator().manual_seed(seed)
    logits = torch.randn(n, c, generator=generator, dtype=torch.float64) * 2.0
    labels = torch.multinomial(logits.softmax(-1), 1, generator=generator).squeeze(-1)
    return scale * logits, labels


def test_fit_matches_scipy_bounded_minimiser_and_recovers_the_planted_temperature():
    logits, labels = _overconfident(n=4000, scale=4.0)
    ours = fit_temperature(logits, labels)
    reference = minimize_scalar(
        lambda t: float(F.cross_entropy(logits / t, labels)),
        bounds=(1.0, 100.0),
        method="bounded",
        options={"xatol": 1e-9},
    )
    assert ours.nll <= reference.fun + 1e-9
    assert ours.temperature == pytest.approx(reference.x, rel=1e-3)
    assert ours.temperature == pytest.approx(4.0, rel=0.1)  # 4,000 rows pin it near the planted value
    assert ours.nll_untempered == pytest.approx(float(F.cross_entropy(logits, labels)), rel=1e-12)
    assert torch.allclose(tempered_log_probs(logits, ours.temperature), F.log_softmax(logits / ours.temperature, -1))


def test_fit_is_the_same_on_log_probabilities_as_on_logits():
    logits, labels = _overconfident(scale=3.0, seed=1)
    on_logits = fit_temperature(logits, labels)
    on_log_probs = fit_temperature(F.log_softmax(logits, -1), labels)
    assert on_log_probs.temperature == pytest.approx(on_logits.temperature, rel=1e-9)


def test_underconfident_or_separable_validation_keeps_t_at_the_lower_bound():
    logits, labels = _overconfident(scale=0.3, seed=2)  # underconfident: the unbounded optimum is T < 1
    assert fit_temperature(logits, labels).temperature == pytest.approx(1.0)
    assert fit_temperature(logits, labels, min_temperature=0.05).temperature < 0.6
    separable = torch.tensor([[3.0, 0.0], [0.0, 3.0]])  # every row right: unbounded, T -> 0
    fit_ = fit_temperature(separable, torch.tensor([0, 1]))
    assert fit_.temperature == pytest.approx(1.0)
    assert math.isfinite(fit_.nll)


def test_zero_probabilities_do_not_give_nan():
    probs = torch.tensor([[1.0, 0.0, 0.0], [0.2, 0.8, 0.0]], dtype=torch.float64)
    result = fit_temperature(probs.clamp_min(1e-300).log(), torch.tensor([0, 1]))
    assert math.isfinite(result.nll)
    assert math.isfinite(result.temperature)


@pytest.mark.parametrize("kwargs", [{"min_temperature": 0.0}, {"min_temperature": 2.0, "max_temperature": 1.0}])
def test_bad_bounds_are_config_errors(kwargs):
    with pytest.raises(ConfigError, match="min_temperature"):
        fit_temperature(torch.zeros(2, 2), torch.tensor([0, 1]), **kwargs)


def test_a_fit_stores_the_best_epochs_temperature_and_selects_on_the_calibrated_nll(tmp_path):
    data = write_separable_npz(tmp_path / "d.npz", n=300)
    config = small_config(str(data), epochs=40)
    run = fit(config, tmp_path / "run")
    loaded = load_run(run.path)
    temperature = float(loaded.model.temperature)
    assert temperature >= 1.0
    assert temperature == pytest.approx(run.metrics["temperature"])
    # The kept epoch minimises the calibrated NLL over the epochs run, and its T is the one stored.
    rows = _history(run.path)
    calibrated = [float(r["val_calibrated_nll"]) for r in rows]
    best = int(np.argmin(calibrated))
    assert run.metrics["best_epoch"] == best + 1
    assert float(rows[best]["val_temperature"]) == pytest.approx(temperature)
    assert all(float(r["val_calibrated_nll"]) <= float(r["val_nll"]) + 1e-6 for r in rows)  # float32 NLL
    # The stored predictive is the tempered one: logits / T.
    _, val, _ = loaded.splits()
    views = loaded.tensors(val).views
    with torch.no_grad():
        loaded.model.temperature.fill_(1.0)
        raw = loaded.model(views)
        loaded.model.temperature.fill_(temperature)
        assert torch.allclose(loaded.model(views), raw / temperature)


def test_calibration_none_reproduces_raw_nll_selection_and_t_one(tmp_path):
    data = write_separable_npz(tmp_path / "d.npz", n=300)
    base = small_config(str(data), epochs=25)
    config = dataclasses.replace(base, train=TrainConfig(epochs=25, batch_size=64, patience=50, calibration="none"))
    run = fit(config, tmp_path / "run")
    rows = _history(run.path)
    assert run.metrics["best_epoch"] == int(np.argmin([float(r["val_nll"]) for r in rows])) + 1
    assert run.metrics["temperature"] == 1.0
    assert float(load_run(run.path).model.temperature) == 1.0
    assert TrainConfig.from_dict({}).calibration is Calibration.NONE  # a stored config without the field
    assert TrainConfig().calibration is Calibration.TEMPERATURE
