"""``probfusion fit --head``: stored in config.json, reloads, and refuses unknown values with exit 2."""

import json

from click.testing import CliRunner

from probfusion.api import load_run
from probfusion.cli.main import cli
from probfusion.fusion import ClassifierHead
from tests.helpers import write_interaction_npz

FAST = ["--epochs", "2", "--latent-dim", "4", "--fused-dim", "8", "--device", "cpu", "-q"]


def test_fit_head_linear_is_stored_and_loads_back(tmp_path):
    data = write_interaction_npz(tmp_path / "d.npz")
    out = tmp_path / "run"
    result = CliRunner().invoke(
        cli, ["fit", "--data", str(data), "--model", "concat", "--head", "linear", "--out", str(out), *FAST]
    )
    assert result.exit_code == 0, result.output
    assert json.loads((out / "config.json").read_text())["config"]["fusion"]["head"] == "linear"
    loaded = load_run(out)
    assert isinstance(loaded.model.head, ClassifierHead)
    assert loaded.model.head.kind.value == "linear"


def test_fit_head_defaults_to_mlp_and_old_configs_load(tmp_path):
    data = write_interaction_npz(tmp_path / "d.npz")
    out = tmp_path / "run"
    result = CliRunner().invoke(cli, ["fit", "--data", str(data), "--out", str(out), *FAST])
    assert result.exit_code == 0, result.output
    stored = json.loads((out / "config.json").read_text())
    assert stored["config"]["fusion"]["head"] == "mlp"
    del stored["config"]["fusion"]["head"]  # as written before --head existed (and before manifests)
    (out / "config.json").write_text(json.dumps(stored))
    (out / "manifest.json").unlink()
    assert load_run(out).model.head.kind.value == "mlp"


def test_fit_unknown_head_is_a_usage_error(tmp_path):
    result = CliRunner().invoke(cli, ["fit", "--head", "relu", "--out", str(tmp_path / "r"), *FAST])
    assert result.exit_code == 2
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "r").exists()
