"""Bad values at the command line and in stored runs: one-line errors, exit 1 for data and runs, 2 for options."""

import json

import numpy as np
import pytest
from click.testing import CliRunner

from probfusion.api import fit
from probfusion.cli.main import cli
from probfusion.config import DataConfig, FusionConfig, JWAEConfig, RunConfig, TrainConfig
from tests.cli.test_cli import FAST, assert_clean_error
from tests.helpers import write_interaction_npz


@pytest.fixture
def runner():
    return CliRunner()


def _fit(runner, data, out, *args):
    return runner.invoke(cli, ["fit", "--data", str(data), "--out", str(out), *FAST, *args])


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["--seed", "4294967295"], "2147483646"),  # seed + 1 overflowed scikit-learn's limit
        (["--rank", str(10**9)], "limit is"),
        (["--max-rank", str(10**9), "--rank-prior", "ard"], "limit is"),
        (["--latent-dim", str(10**9)], "limit is"),
        (["--fused-dim", str(10**9)], "limit is"),
        (["--posterior-samples", str(10**9), "--rank-prior", "ard"], "posterior"),
        (["--checkpoint-seconds", "nan"], "got nan"),
        (["--checkpoint-seconds", "-1"], "checkpoint-seconds"),
    ],
)
def test_out_of_range_options_are_usage_errors(runner, tmp_path, args, fragment):
    data = write_interaction_npz(tmp_path / "d.npz")
    result = _fit(runner, data, tmp_path / "run", *args)
    assert_clean_error(result, 2, fragment)
    assert not (tmp_path / "run").exists()


def _npz(path, **changes):
    arrays = dict(np.load(write_interaction_npz(path)))
    for key, value in changes.items():
        if value is None:
            arrays.pop(key)
        else:
            arrays[key] = value(arrays) if callable(value) else value
    np.savez(path, **arrays)
    return path


@pytest.mark.parametrize(
    ("changes", "fragment"),
    [
        ({"x_all": lambda a: a["x_b"], "x_b": None}, "reserved word"),
        ({"x_b.c": lambda a: a["x_b"], "x_b": None}, "dot"),
        ({"y": lambda a: np.zeros_like(a["y"])}, "single class"),
        ({"x_a": lambda a: a["x_a"].astype(np.float64) * 1e300}, "float32 range"),
    ],
)
def test_bad_data_is_exit_1_with_one_line(runner, tmp_path, changes, fragment):
    result = _fit(runner, _npz(tmp_path / "d.npz", **changes), tmp_path / "run")
    assert_clean_error(result, 1, fragment)
    assert len(result.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize(
    "args",
    [
        ["--inference", "laplace"],
        ["--inference", "nuts"],
        ["--frozen-encoders"],
    ],
)
def test_the_input_skip_on_a_frozen_bayesian_head_is_one_line(runner, tmp_path, args):
    data = write_interaction_npz(tmp_path / "d.npz")
    result = _fit(runner, data, tmp_path / "run", "--rank-prior", "ard", "--input-linear", *args)
    assert_clean_error(result, 2, "needs the SVI head trained end to end")
    assert not (tmp_path / "run").exists()


def test_labels_and_huge_features_fit_to_finite_metrics(runner, tmp_path):
    data = _npz(tmp_path / "d.npz", y=lambda a: np.array([3, 42])[a["y"]], x_a=lambda a: a["x_a"] * 1e30)
    result = _fit(runner, data, tmp_path / "run")
    assert result.exit_code == 0, result.output
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert metrics["class_labels"] == [3, 42]
    assert all(np.isfinite(metrics[part]["nll"]) for part in ("train", "val", "test"))


@pytest.fixture
def interrupted(tmp_path):
    data = write_interaction_npz(tmp_path / "d.npz")
    config = RunConfig(
        data=DataConfig(name=str(data)),
        jwae=JWAEConfig(latent_dim=2, hidden_dim=8),
        fusion=FusionConfig(rank=2, fused_dim=4),
        train=TrainConfig(epochs=4, batch_size=64),
        device="cpu",
    )

    def stop(state):
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        fit(config, tmp_path / "run", on_epoch_end=stop)
    return tmp_path / "run"


@pytest.mark.parametrize(
    ("section", "key", "value", "fragment"),
    [
        ("fusion", "rank", True, "FusionConfig.rank must be int; got True"),
        ("fusion", "rank", 10**9, "limit is"),
        ("jwae", "latent_dim", 10**9, "limit is"),
        (None, "seed", 2**70, "RunConfig.seed"),
    ],
)
def test_resume_with_a_tampered_config_is_one_line(runner, interrupted, section, key, value, fragment):
    path = interrupted.parent / f".{interrupted.name}.partial" / "config.json"  # where the interrupted fit waits
    stored = json.loads(path.read_text())
    (stored["config"][section] if section else stored["config"])[key] = value
    path.write_text(json.dumps(stored))
    result = runner.invoke(cli, ["fit", "--resume", "--out", str(interrupted), "-q"])
    assert_clean_error(result, 1, fragment, "not a valid run config")
    assert not (interrupted / "metrics.json").exists()


def test_an_error_quoting_a_newline_stays_on_one_line(runner, tmp_path):
    result = runner.invoke(cli, ["fit", "--data", str(tmp_path / "two\nlines.npz"), *FAST])
    assert_clean_error(result, 1, "No file at", "two\\nlines.npz")
    assert len(result.stderr.strip().splitlines()) == 1
