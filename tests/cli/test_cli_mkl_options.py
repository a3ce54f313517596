"""``probfusion fit --mkl-multiclass/--mkl-basis-rank``: defaults from GPMKLConfig, stored in config.json, bad values
refused with a one-line usage error."""

import json

import pytest
from click.testing import CliRunner

from probfusion.cli.fit import fit
from probfusion.cli.main import cli
from probfusion.config import GPMKLConfig
from probfusion.options import MKLMulticlass
from tests.helpers import write_separable_npz

FAST = ["--epochs", "2", "--latent-dim", "4", "--fused-dim", "8", "--rank", "2", "--device", "cpu", "-q"]


def test_defaults_are_gpmklconfig_defaults():
    params = fit.make_context("fit", []).params
    assert params["mkl_multiclass"] is GPMKLConfig().multiclass
    assert params["mkl_basis_rank"] == GPMKLConfig().basis_rank


@pytest.mark.parametrize(
    ("args", "multiclass", "basis_rank"),
    [
        (["--mkl-multiclass", "ovr", "--mkl-basis-rank", "8"], "one-vs-rest", 8),
        (["--mkl-multiclass", "JOINT", "--mkl-basis-rank", "none"], "joint", None),
    ],
)
def test_options_reach_the_stored_config(tmp_path, args, multiclass, basis_rank):
    data = write_separable_npz(tmp_path / "d.npz", n=90, num_classes=3)
    out = tmp_path / "run"
    result = CliRunner().invoke(
        cli,
        ["fit", "--data", str(data), "--model", "gp-mkl", "--gp-features", "input", *FAST, *args, "--out", str(out)],
    )
    assert result.exit_code == 0, result.output
    stored = json.loads((out / "config.json").read_text())["config"]["gp"]
    assert stored["multiclass"] == multiclass
    assert stored["basis_rank"] == basis_rank
    assert MKLMulticlass(stored["multiclass"]) is MKLMulticlass(multiclass)


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["--mkl-basis-rank", "0"], "positive integer"),
        (["--mkl-basis-rank", "-3"], "positive integer"),
        (["--mkl-basis-rank", "2.5"], "positive integer"),
        (["--mkl-basis-rank", "many"], "'none'"),
        (["--mkl-multiclass", "both"], "'both' is not one of"),
    ],
)
def test_bad_values_are_one_line_usage_errors(tmp_path, args, fragment):
    out = tmp_path / "run"
    result = CliRunner().invoke(cli, ["fit", "--model", "gp-mkl", *FAST, *args, "--out", str(out)])
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.stderr
    assert result.stdout == ""
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("Error:")
    assert fragment in last
    assert not out.exists()
