import json
import os

import pytest
from click.testing import CliRunner

import probfusion.cli.evaluate as evaluate_module
from probfusion.api import fit
from probfusion.cli.evaluate import evaluate
from probfusion.config import RunConfig, TrainConfig

FAST = ["--steps", "2", "--samples", "2", "--eps", "0.1,0.2"]


@pytest.fixture(scope="module")
def run_path(tmp_path_factory):
    root = tmp_path_factory.mktemp("runs")
    return fit(RunConfig(train=TrainConfig(epochs=2), device="cpu"), root / "runs" / "lmf").path


def _invoke(args):
    return CliRunner().invoke(evaluate, args, catch_exceptions=False)


def test_evaluate_prints_only_the_report_path(run_path):
    result = _invoke([str(run_path), "--attack", "pgd", *FAST, "--name", "cli"])
    assert result.exit_code == 0, result.stderr
    assert result.stdout.strip() == str(run_path / "evaluations" / "cli")
    rows = json.loads((run_path / "evaluations" / "cli" / "rows.json").read_text())["rows"]
    assert rows[0]["attack"] == "none"
    assert "PASS monotone" in result.stderr
    assert "accuracy" in result.stderr


def test_without_run_uses_the_latest_run_under_runs(run_path, monkeypatch):
    monkeypatch.chdir(run_path.parent.parent)
    result = _invoke(["--attack", "fgsm", *FAST, "--modality", "all"])
    assert result.exit_code == 0, result.stderr
    assert result.stdout.strip() == os.path.join("runs", "lmf", "evaluations", "fgsm-linf")


def test_without_any_run_fits_the_default_first(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(evaluate_module, "RunConfig", lambda: RunConfig(train=TrainConfig(epochs=1), device="cpu"))
    result = _invoke(["--attack", "none", "--samples", "1"])
    assert result.exit_code == 0, result.stderr
    assert (tmp_path / result.stdout.strip() / "rows.json").is_file()
    assert "fitting the default model" in result.stderr


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["--eps", "-0.1"], 2, "must be a finite number >= 0"),
        (["--eps", "0.1,abc"], 2, "is not a number"),
        (["--modality", "text"], 2, "no modality 'text'"),
        (["--severities", "0,9"], 2, "from 1 to 5"),
    ],
)
def test_bad_options_fail_in_one_line_and_write_nothing(run_path, args, code, message):
    before = sorted(os.listdir(run_path / "evaluations")) if (run_path / "evaluations").exists() else []
    result = _invoke([str(run_path), *args])
    assert result.exit_code == code
    assert message in result.stderr
    assert "Traceback" not in result.stderr
    after = sorted(os.listdir(run_path / "evaluations")) if (run_path / "evaluations").exists() else []
    assert before == after
    assert result.stdout == ""


@pytest.mark.parametrize(("make", "message"), [("missing", "No run directory"), ("empty", "is not a run")])
def test_bad_run_directory_is_a_one_line_error(tmp_path, make, message):
    target = tmp_path / "x"
    if make == "empty":
        target.mkdir()
    result = _invoke([str(target)])
    assert result.exit_code == 1
    assert message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert not (target / "evaluations").exists()
