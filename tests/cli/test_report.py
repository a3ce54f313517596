import json
import os
import shutil

import pytest
from click.testing import CliRunner

from probfusion.api import fit
from probfusion.cli.main import cli
from probfusion.config import BayesConfig, DataConfig, FusionConfig, JWAEConfig, RunConfig, TrainConfig
from tests.diagnostics.helpers import repaired_run
from tests.helpers import write_interaction_npz


def _config(data, model="lmf", prior="ard"):
    return RunConfig(
        data=DataConfig(name=data),
        jwae=JWAEConfig(latent_dim=3, hidden_dim=12),
        fusion=FusionConfig(model=model, rank=3, fused_dim=6, rank_prior=prior),
        train=TrainConfig(epochs=2, batch_size=64),
        bayes=BayesConfig(svi_steps=40, realign_every=20, posterior_samples=8, batch_size=64),
        device="cpu",
    )


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    root = tmp_path_factory.mktemp("report-cli")
    data = str(write_interaction_npz(root / "d.npz", n=160))
    fit(_config(data), root / "runs" / "ard")
    fit(_config(data, model="tfn", prior="none"), root / "runs" / "tfn")
    fit(_config(data, prior="gaussian"), root / "runs" / "gaussian")
    return root


def _invoke(args):
    return CliRunner().invoke(cli, ["report", *args], catch_exceptions=False)


def test_report_prints_only_its_folder_and_writes_the_files(root, tmp_path):
    run = shutil.copytree(root / "runs" / "ard", tmp_path / "ard")
    result = _invoke([str(run), "--draws", "40"])
    assert result.exit_code == 0, result.stderr
    assert result.stdout.strip() == str(run / "report")
    checks = json.loads((run / "report" / "checks.json").read_text())
    assert "variational_pareto_k" in checks
    assert "effective_rank" in checks
    assert "## Checks" in result.stderr
    assert "PSIS-LOO" in result.stderr
    assert (run / "report" / "figures" / "trace.png").is_file()


def test_without_run_uses_the_latest_run(root, tmp_path, monkeypatch):
    shutil.copytree(root / "runs" / "ard", tmp_path / "runs" / "ard")
    monkeypatch.chdir(tmp_path)
    result = _invoke(["--draws", "40", "-q"])
    assert result.exit_code == 0, result.stderr
    assert result.stdout.strip() == os.path.join("runs", "ard", "report")


def test_without_any_run_is_a_one_line_error(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = _invoke([])
    assert result.exit_code == 1
    assert "No complete run under runs/" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert result.stdout == ""


@pytest.mark.parametrize(
    ("make", "args", "code", "message"),
    [
        ("missing", [], 1, "No run directory"),
        ("empty", [], 1, "is not a run"),
        ("tfn", [], 2, "no rank components"),
        ("ard", ["--draws", "5"], 2, "5 is not in the range x>=20"),
        ("ard", ["--compare", "tfn"], 2, "no posterior over rank factors"),
        ("existing", [], 1, "already holds a report; pass --overwrite"),
    ],
)
def test_bad_inputs_fail_in_one_line_and_write_nothing(root, tmp_path, make, args, code, message):
    target = tmp_path / make
    if make == "empty":
        target.mkdir()
    elif make in ("tfn", "ard"):
        shutil.copytree(root / "runs" / make, target)
    elif make == "existing":
        shutil.copytree(root / "runs" / "ard", target)
        (target / "report").mkdir()
    args = [a if a != "tfn" else str(root / "runs" / "tfn") for a in args]
    before = sorted(os.listdir(target)) if target.exists() else None
    result = _invoke([str(target), *args])
    assert result.exit_code == code, result.stderr
    assert message in result.stderr
    assert "Traceback" not in result.stderr
    assert result.stdout == ""
    assert (sorted(os.listdir(target)) if target.exists() else None) == before


def _assert_one_line_usage_error(result, message):
    """Click's usage header, then the error on one line: no traceback, nothing on stdout."""
    lines = result.stderr.strip().splitlines()
    assert lines[-1].startswith("Error:"), result.stderr
    assert message in lines[-1]
    assert "Traceback" not in result.stderr
    assert result.stdout == ""


def test_quiet_report_on_a_gaussian_prior_run_prints_nothing_on_stderr(root, tmp_path):
    """Fixed precisions are constant over draws; no ArviZ "single value" warning may reach the user."""
    run = shutil.copytree(root / "runs" / "gaussian", tmp_path / "gaussian")
    result = _invoke([str(run), "--draws", "40", "-q"])
    assert result.exit_code == 0, result.stderr
    assert result.stderr == ""
    assert result.stdout.strip() == str(run / "report")


def test_compare_runs_with_the_same_folder_name_are_all_kept(root, tmp_path):
    run = shutil.copytree(root / "runs" / "ard", tmp_path / "main")
    first = shutil.copytree(root / "runs" / "ard", tmp_path / "a" / "ard")
    second = shutil.copytree(root / "runs" / "ard", tmp_path / "b" / "ard")
    result = _invoke([str(run), "--draws", "40", "-q", "--compare", str(first), "--compare", str(second)])
    assert result.exit_code == 0, result.stderr
    names = [line.split(",")[0] for line in (run / "report" / "compare.csv").read_text().splitlines()[1:]]
    assert sorted(names) == sorted(["main", str(first.resolve()), str(second.resolve())])  # not one "ard"


def test_a_run_given_twice_is_a_one_line_error(root, tmp_path):
    run = shutil.copytree(root / "runs" / "ard", tmp_path / "ard")
    other = shutil.copytree(root / "runs" / "ard", tmp_path / "other")
    result = _invoke([str(run), "--compare", str(other), "--compare", str(tmp_path / "." / "other")])
    assert result.exit_code == 2
    _assert_one_line_usage_error(result, "is given twice")
    assert not (run / "report").exists()


def test_compare_refuses_runs_with_the_same_labels_but_other_inputs(root, tmp_path):
    run = shutil.copytree(root / "runs" / "ard", tmp_path / "ard")
    other = repaired_run(root / "runs" / "ard", tmp_path / "repaired")
    result = _invoke([str(run), "--draws", "40", "--compare", str(other)])
    assert result.exit_code == 2
    _assert_one_line_usage_error(result, "different training rows")
    assert not (run / "report").exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".") and not p.name.endswith(".lock")]
