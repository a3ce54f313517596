"""The search space: dimensions write into the right config fields by name, validate, and round-trip."""

import dataclasses

import optuna
import pytest

from probfusion.config import RunConfig
from probfusion.errors import ConfigError
from probfusion.options import FusionKind, PriorPenalty, RankPrior
from probfusion.tuning import ChoiceDimension, FloatDimension, IntDimension, SearchSpace, TuneConfig


def test_every_dimension_names_a_field_of_the_run_config():
    # Guards against a renamed config field: apply() replaces by name and would fail on every trial.
    base = RunConfig()
    for name, (section, key) in SearchSpace.TARGETS.items():
        assert key in {f.name for f in dataclasses.fields(getattr(base, section))}, name
        assert hasattr(SearchSpace(), name)


def test_apply_writes_values_by_field_name_and_keeps_the_rest():
    base = RunConfig(seed=7)
    config = SearchSpace().apply({"rank": 3, "latent_dim": 5, "learning_rate": 1e-3, "epochs": 40}, base)
    assert (config.fusion.rank, config.jwae.latent_dim, config.train.learning_rate, config.train.epochs) == (
        3,
        5,
        1e-3,
        40,
    )
    assert config.seed == 7
    assert config.data == base.data
    assert config.jwae.hidden_dim == base.jwae.hidden_dim


def test_suggest_draws_every_active_dimension():
    params = {
        "rank": 2,
        "latent_dim": 8,
        "hidden_dim": 32,
        "prior_weight": 0.5,
        "learning_rate": 1e-3,
        "weight_decay": 1e-5,
        "dropout": 0.2,
        "min_steps": 800,
        "input_linear": True,
    }
    config = SearchSpace().suggest(optuna.trial.FixedTrial(params), RunConfig())
    assert (config.train.min_steps, config.fusion.input_linear, config.train.epochs) == (800, True, None)
    assert config.jwae.dropout == 0.2
    assert config.jwae.prior_weight == 0.5
    assert config.train.weight_decay == 1e-5


def test_dimensions_without_meaning_for_the_model_are_not_drawn():
    base = RunConfig()
    tfn = dataclasses.replace(base, fusion=dataclasses.replace(base.fusion, model=FusionKind.TFN))
    assert "rank" not in SearchSpace().active(tfn)
    plain = dataclasses.replace(base, jwae=dataclasses.replace(base.jwae, prior_penalty=PriorPenalty.NONE))
    assert "prior_weight" not in SearchSpace().active(plain)
    # The training length is drawn as min_steps unless the epochs are drawn or fixed (min_steps is then moot).
    assert "min_steps" in SearchSpace().active(base)
    assert "min_steps" not in SearchSpace(epochs=IntDimension(20, 40)).active(base)
    fixed = dataclasses.replace(base, train=dataclasses.replace(base.train, epochs=30))
    assert "min_steps" not in SearchSpace().active(fixed)
    # The input skip is drawn only where the config accepts it (not with a rank prior's second stage).
    assert "input_linear" in SearchSpace().active(base)
    ard = dataclasses.replace(base, fusion=dataclasses.replace(base.fusion, rank_prior=RankPrior.ARD))
    assert "input_linear" not in SearchSpace().active(ard)
    assert "rank" not in SearchSpace(rank=None).active(base)


def test_the_model_is_drawn_first_and_the_kind_drawn_decides_the_other_dimensions():
    # FixedTrial raises on a dimension it was not given: a concat trial must not ask for a rank.
    params = {"model": "concat", "latent_dim": 8, "hidden_dim": 32, "prior_weight": 0.5, "learning_rate": 1e-3}
    params |= {"weight_decay": 1e-5, "dropout": 0.2, "min_steps": 800, "input_linear": False}
    kinds = SearchSpace(model=ChoiceDimension(("lmf", "concat")))
    config = kinds.suggest(optuna.trial.FixedTrial(params), RunConfig())
    assert (config.fusion.model, config.jwae.latent_dim) == (FusionKind.CONCAT, 8)
    assert kinds.baselines(RunConfig()) == [{}, {"model": "concat"}]
    base = RunConfig()
    # Not drawn for a kind outside the choices, a rank prior (lmf only), or with the dimension off.
    tfn = dataclasses.replace(base, fusion=dataclasses.replace(base.fusion, model=FusionKind.TFN))
    ard = dataclasses.replace(base, fusion=dataclasses.replace(base.fusion, rank_prior=RankPrior.ARD))
    for space, config in ((kinds, tfn), (kinds, ard), (SearchSpace(), base)):
        assert "model" not in space.active(config)
        assert space.baselines(config) == [{}]


def test_json_round_trip():
    settings = TuneConfig(space=SearchSpace(rank=None, dropout=FloatDimension(0.0, 0.3)), trials=5, workers=2)
    assert TuneConfig.from_dict(settings.to_dict()) == settings
    assert SearchSpace.from_dict(SearchSpace().to_dict()) == SearchSpace()


@pytest.mark.parametrize(
    ("build", "fragment"),
    [
        (lambda: IntDimension(5, 2), "low <= high"),
        (lambda: IntDimension(0, 4, log=True), "log-scale"),
        (lambda: FloatDimension(0.0, 1.0, log=True), "log-scale"),
        (lambda: SearchSpace(dropout=FloatDimension(0.0, 1.0)), "dropout"),
        (lambda: SearchSpace().apply({"momentum": 0.9}, RunConfig()), "Unknown search dimension"),
        (lambda: ChoiceDimension(("lmf",)), "at least two different"),
        (lambda: ChoiceDimension(("lmf", "lmf")), "at least two different"),
        (lambda: ChoiceDimension(("lmf", "mlp")), "Unknown search model 'mlp'"),
        (lambda: SearchSpace(model=IntDimension(1, 2)), "SearchSpace.model"),
        (lambda: SearchSpace(rank=ChoiceDimension(("lmf", "concat"))), "SearchSpace.rank"),
        (lambda: TuneConfig(trials=0), "trials"),
        (lambda: TuneConfig(workers=0), "workers"),
        (lambda: TuneConfig(storage="study.db"), "storage URL"),
    ],
)
def test_bad_values_are_config_errors(build, fragment):
    with pytest.raises(ConfigError, match=fragment):
        build()
