"""The data-scaled defaults (resolve_config), the values stored runs load with, and CLI/API agreement."""

import json

import pytest
from click.testing import CliRunner

from probfusion import DataConfig, FusionConfig, JWAEConfig, RunConfig, TrainConfig, fit, load_run
from probfusion.cli.main import cli
from probfusion.config import resolve_config
from probfusion.errors import ConfigError
from probfusion.options import LMFInit, NUTSParameterisation, RankPrior
from tests.helpers import write_interaction_npz


def _resolve(config=None, *, dims=None, c=10, n=1000):
    return resolve_config(config or RunConfig(), input_dims=dims or {"a": 20, "b": 2000}, num_classes=c, num_train=n)


@pytest.mark.parametrize(
    ("n", "epochs", "patience"),
    [
        (350, 500, 50),  # 3 steps an epoch: 1500 steps need 500 epochs
        (476, 375, 37),  # 4 steps an epoch
        (3140, 60, 15),  # 25 steps an epoch: the 60-epoch floor already gives 1500 steps
        (70, 1000, 100),  # one step an epoch: capped at 1000 epochs
    ],
)
def test_epochs_give_at_least_min_steps_and_patience_scales(n, epochs, patience):
    train = _resolve(n=n).train
    assert (train.epochs, train.patience) == (epochs, patience)
    assert train.epochs * -(-n // train.batch_size) >= min(train.min_steps, 1000)


@pytest.mark.parametrize(
    ("c", "latent", "hidden", "rank", "fused"),
    [(2, 16, 64, 16, 32), (10, 16, 64, 16, 32), (40, 40, 80, 40, 40), (68, 64, 128, 68, 68), (100, 64, 128, 100, 100)],
)
def test_widths_and_rank_follow_the_number_of_classes(c, latent, hidden, rank, fused):
    config = _resolve(c=c)
    assert (config.jwae.latent_dim, config.jwae.hidden_dim) == (latent, hidden)
    assert (config.fusion.rank, config.fusion.fused_dim) == (rank, fused)


def test_the_rank_rule_is_the_same_under_every_rank_prior():
    ranks = {p: _resolve(RunConfig(fusion=FusionConfig(rank_prior=p))).fusion.rank for p in RankPrior}
    assert len(set(ranks.values())) == 1


def test_explicit_values_are_kept():
    config = RunConfig(
        jwae=JWAEConfig(latent_dim=5, hidden_dim=7),
        fusion=FusionConfig(rank=3, fused_dim=9, input_linear=False, linear_pool=False),
        train=TrainConfig(epochs=11, patience=4, weight_decay=3e-4),
    )
    resolved = _resolve(config, c=100, n=50)
    assert resolved == config


@pytest.mark.parametrize(("n", "c"), [(476, 68), (100, 10), (3139, 15)])
@pytest.mark.parametrize(("model", "rank_prior"), [("lmf", "none"), ("concat", "none"), ("lmf", "ard")])
def test_input_linear_is_off_unless_asked_whatever_the_rows_per_class(n, c, model, rank_prior):
    # NOTES.md §28 retired the rule that turned it on at 10 or fewer rows per class: the pool does that job now.
    config = RunConfig(fusion=FusionConfig(model=model, rank_prior=rank_prior))
    assert _resolve(config, c=c, n=n).fusion.input_linear is False
    asked = RunConfig(fusion=FusionConfig(model=model, rank_prior=rank_prior, input_linear=True))
    assert _resolve(asked, c=c, n=n).fusion.input_linear is True


def test_a_stored_config_of_the_retired_rows_per_class_rule_still_loads():
    stored = RunConfig().to_dict()
    stored["fusion"]["input_linear_rows_per_class"] = 10.0  # written by versions before NOTES.md §28
    assert RunConfig.from_dict(stored) == RunConfig()


@pytest.mark.parametrize(("n", "decay"), [(500, 1e-3), (5000, 1e-4), (1, 0.5)])
def test_weight_decay_is_a_fixed_prior_precision_shared_over_the_rows(n, decay):
    assert _resolve(n=n).train.weight_decay == pytest.approx(decay)
    assert _resolve(RunConfig(train=TrainConfig(weight_decay_rows=2.0)), n=n).train.weight_decay == pytest.approx(
        4 * decay
    )
    with pytest.raises(ConfigError, match="weight_decay"):
        TrainConfig(weight_decay=-1.0)


def test_a_resolved_config_has_no_field_left_none():
    resolved = _resolve()
    for value in (
        resolved.train.epochs,
        resolved.train.patience,
        resolved.jwae.latent_dim,
        resolved.jwae.hidden_dim,
        resolved.fusion.rank,
        resolved.fusion.fused_dim,
    ):
        assert isinstance(value, int)
    assert isinstance(resolved.train.weight_decay, float)
    assert isinstance(resolved.fusion.input_linear, bool)


def test_zero_or_negative_widths_are_refused_but_none_is_not():
    JWAEConfig(latent_dim=None)
    with pytest.raises(ConfigError, match="latent_dim must be positive"):
        JWAEConfig(latent_dim=0)
    with pytest.raises(ConfigError, match="rank must be positive"):
        FusionConfig(rank=0)


def test_a_stored_config_without_the_new_fields_loads_with_the_old_behaviour():
    stored = RunConfig().to_dict()
    del stored["fusion"]["lmf_init"], stored["jwae"]["linear_path"], stored["train"]["min_steps"]
    del stored["fusion"]["additive_path"], stored["bayes"]["nuts_parameterisation"]
    config = RunConfig.from_dict(stored)
    assert config.bayes.nuts_parameterisation is NUTSParameterisation.CENTRED  # how older NUTS runs were sampled
    assert RunConfig().bayes.nuts_parameterisation is NUTSParameterisation.NON_CENTRED
    assert config.fusion.lmf_init is LMFInit.RANDOM
    assert config.fusion.additive_path is False
    assert config.jwae.linear_path is False
    assert config.train.min_steps == 0
    # New configs get the new defaults, and round-trip.
    assert RunConfig().fusion.lmf_init is LMFInit.ADDITIVE
    assert RunConfig.from_dict(RunConfig().to_dict()) == RunConfig()


def test_fit_records_the_resolved_values_and_load_run_rebuilds_the_same_model(tmp_path):
    data = write_interaction_npz(tmp_path / "d.npz")
    config = RunConfig(
        data=DataConfig(name=str(data)), train=TrainConfig(epochs=2), jwae=JWAEConfig(hidden_dim=8), device="cpu"
    )
    run = fit(config, tmp_path / "run")
    assert run.config == config
    stored = json.loads((run.path / "config.json").read_text())
    assert stored["config"]["fusion"]["rank"] is None
    assert stored["resolved"]["fusion"]["rank"] == run.metrics["resolved"]["rank"] == 16
    loaded = load_run(run.path)
    assert loaded.config.fusion.rank == 16
    assert loaded.config.jwae.latent_dim == run.metrics["resolved"]["latent_dim"]


def test_cli_and_api_resolve_the_same_ard_max_rank(tmp_path):
    data = write_interaction_npz(tmp_path / "d.npz")
    out = tmp_path / "ard"
    args = ["fit", "--data", str(data), "--rank-prior", "ard", "--epochs", "2", "--latent-dim", "4"]
    args += ["--posterior-samples", "4", "--device", "cpu", "-q", "--out", str(out)]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    metrics = json.loads((out / "metrics.json").read_text())
    api = _resolve(RunConfig(fusion=FusionConfig(rank_prior="ard")), c=2, n=metrics["train"]["n"])
    assert metrics["rank"] == metrics["max_rank"] == api.fusion.rank == 16


def test_a_stored_lmf_run_without_the_additive_path_field_loads_without_the_path(tmp_path):
    data = write_interaction_npz(tmp_path / "d.npz")
    config = RunConfig(
        data=DataConfig(name=str(data)),
        fusion=FusionConfig(additive_path=False),
        train=TrainConfig(epochs=2),
        jwae=JWAEConfig(hidden_dim=8),
        device="cpu",
    )
    run = fit(config, tmp_path / "run")
    path = run.path / "config.json"
    stored = json.loads(path.read_text())
    for part in (stored["config"], stored["resolved"]):  # as a run written before the field existed
        del part["fusion"]["additive_path"]
    path.write_text(json.dumps(stored))
    (run.path / "manifest.json").unlink()  # a run that old has no manifest either
    loaded = load_run(run.path)
    assert loaded.config.fusion.additive_path is False
    assert loaded.model.fusion.additive is None
    assert not any(key.startswith("fusion.additive") for key in loaded.model.state_dict())
