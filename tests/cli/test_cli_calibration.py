"""``probfusion fit --calibration`` and ``--weight-decay``: defaults from TrainConfig, stored in config.json."""

import json

from click.testing import CliRunner

from probfusion.cli.fit import fit
from probfusion.cli.main import cli
from probfusion.config import TrainConfig
from tests.helpers import write_separable_npz

FAST = ["--epochs", "8", "--latent-dim", "4", "--fused-dim", "8", "--rank", "2", "--device", "cpu", "-q"]


def test_defaults_are_the_train_config_defaults():
    params = fit.make_context("fit", []).params
    assert params["calibration"] == TrainConfig().calibration.value
    assert params["weight_decay"] == TrainConfig().weight_decay


def test_weight_decay_reaches_the_stored_config(tmp_path):
    data = write_separable_npz(tmp_path / "d.npz", n=120)
    out = tmp_path / "run"
    result = CliRunner().invoke(cli, ["fit", "--data", str(data), *FAST, "--weight-decay", "0.001", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert json.loads((out / "config.json").read_text())["config"]["train"]["weight_decay"] == 0.001
    bad = CliRunner().invoke(cli, ["fit", *FAST, "--weight-decay", "-1", "--out", str(tmp_path / "bad")])
    assert bad.exit_code == 2
    assert "Traceback" not in bad.output


def test_none_and_temperature_reach_the_run(tmp_path):
    data = write_separable_npz(tmp_path / "d.npz", n=150)
    for value in ("none", "temperature"):
        out = tmp_path / value
        result = CliRunner().invoke(cli, ["fit", "--data", str(data), *FAST, "--calibration", value, "--out", str(out)])
        assert result.exit_code == 0, result.output
        assert json.loads((out / "config.json").read_text())["config"]["train"]["calibration"] == value
        temperature = json.loads((out / "metrics.json").read_text())["temperature"]
        assert temperature == 1.0 if value == "none" else temperature >= 1.0


def test_a_bad_value_is_a_one_line_usage_error(tmp_path):
    result = CliRunner().invoke(cli, ["fit", *FAST, "--calibration", "platt", "--out", str(tmp_path / "run")])
    assert result.exit_code == 2
    assert "'platt' is not one of" in result.output
    assert "Traceback" not in result.output
    assert not (tmp_path / "run").exists()
