"""Config bounds: seeds inside every seed + k the library derives, sizes that fit in memory, exact JSON types."""

import pytest

from probfusion import model_size
from probfusion.config import (
    MAX_SEED,
    BayesConfig,
    EvaluationConfig,
    FusionConfig,
    GPMKLConfig,
    JWAEConfig,
    RunConfig,
)
from probfusion.errors import ConfigError


@pytest.mark.parametrize("seed", [MAX_SEED + 1, 4294967295, 2**70, -1, True, 1.0])
def test_seeds_outside_the_derivable_range_are_refused(seed):
    with pytest.raises(ConfigError, match=f"seed must be an integer from 0 to {MAX_SEED}"):
        RunConfig(seed=seed)
    with pytest.raises(ConfigError, match="seed must be an integer"):
        EvaluationConfig(seed=seed)


def test_the_largest_seed_splits_and_seeds_scikit_learn():
    from probfusion.config import DataConfig
    from probfusion.data import load_dataset, split_indices

    config = RunConfig(data=DataConfig(name="mfeat"), seed=MAX_SEED)
    parts = split_indices(load_dataset(config.data), config.data, config.seed)  # seed + 1 reaches scikit-learn
    assert len(parts.train) + len(parts.val) + len(parts.test) == 2000


@pytest.mark.parametrize(
    "changes",
    [
        {"fusion": FusionConfig(rank=10**9)},
        {"fusion": FusionConfig(fused_dim=10**9)},
        {"jwae": JWAEConfig(latent_dim=10**9)},
        {"jwae": JWAEConfig(hidden_dim=10**9)},
        {"jwae": JWAEConfig(num_projections=10**9)},
        {"fusion": FusionConfig(rank=10**5)},  # under the tensor limit, over the parameter limit
        {"fusion": FusionConfig(rank=16, rank_prior="ard"), "bayes": BayesConfig(posterior_samples=10**8)},
    ],
)
def test_sizes_that_would_not_fit_in_memory_are_config_errors(changes):
    with pytest.raises(ConfigError, match="limit is") as info:
        RunConfig(**changes)
    assert "\n" not in str(info.value)


def test_the_data_dependent_size_check_counts_modalities_and_classes():
    config = RunConfig(fusion=FusionConfig(model="tfn"))  # fine on its own
    model_size.check_model_size(config, {"a": 3, "b": 8}, 10, 1797)
    with pytest.raises(ConfigError, match=r"TFN .*latent_dim \+ 1\)\^M"):
        model_size.check_model_size(config, {f"m{k}": 5 for k in range(6)}, 10, 2000)
    fixed = RunConfig(fusion=FusionConfig(rank=4, fused_dim=32), jwae=JWAEConfig(latent_dim=16, hidden_dim=64))
    with pytest.raises(ConfigError, match="predictive probabilities"):
        model_size.check_model_size(fixed, {"a": 3}, 50_000, 10**6)
    with pytest.raises(ConfigError, match="fused_dim"):  # the data-scaled widths grow with the classes too
        model_size.check_model_size(RunConfig(), {"a": 3}, 50_000, 10**6)
    gp = RunConfig(fusion=FusionConfig(model="gp-mkl"), gp=GPMKLConfig(max_exact_points=10**6))
    model_size.check_model_size(gp, {"a": 3, "b": 8}, 10, 1437)
    with pytest.raises(ConfigError, match="GP kernel matrices"):
        model_size.check_model_size(gp, {"a": 3, "b": 8}, 10, 10**5)


def test_default_configs_are_far_below_the_limits():
    parameters, tensors = model_size.model_size(RunConfig(), {"image": 3, "audio": 8}, 10, 1437)
    assert parameters < 100_000
    assert max(tensors.values()) < model_size.MAX_TENSOR_ELEMENTS / 100


@pytest.mark.parametrize(
    ("section", "key", "value", "fragment"),
    [
        ("fusion", "rank", True, "FusionConfig.rank must be int; got True"),
        ("train", "epochs", False, "TrainConfig.epochs must be int"),
        ("train", "learning_rate", True, "TrainConfig.learning_rate must be a finite number"),
        ("train", "learning_rate", float("inf"), "finite number"),
        ("jwae", "prior_weight", float("nan"), "finite number"),
        (None, "seed", 2**70, "RunConfig.seed"),
        (None, "seed", True, "RunConfig.seed must be int"),
        ("fusion", "rank", 10**9, "limit is"),
    ],
)
def test_stored_configs_with_wrong_types_or_sizes_are_refused(section, key, value, fragment):
    stored = RunConfig().to_dict()
    (stored[section] if section else stored)[key] = value
    with pytest.raises(ConfigError, match=fragment.replace("(", r"\(").replace("^", r"\^")):
        RunConfig.from_dict(stored)


@pytest.mark.parametrize(
    ("key", "value"), [("samples", 10**9), ("attack_samples", 10**6), ("steps", 10**6), ("restarts", 10**4)]
)
def test_evaluation_sizes_are_bounded(key, value):
    with pytest.raises(ConfigError, match=f"EvaluationConfig.{key} must be at most"):
        EvaluationConfig(**{key: value})
