"""The CLI contract: results on stdout, one-line errors on stderr, exit codes 0/1/2, nothing partial written."""

import json
import pickle
import subprocess
import sys

import numpy as np
import pytest
from click.testing import CliRunner

from probfusion.cli.main import cli
from tests.helpers import write_interaction_npz

FAST = ["--epochs", "3", "--latent-dim", "4", "--fused-dim", "8", "--rank", "2", "--device", "cpu", "-q"]


@pytest.fixture
def runner():
    return CliRunner()


def assert_clean_error(result, code, *fragments):
    assert result.exit_code == code, result.output
    assert "Traceback" not in result.stderr
    assert result.stdout == ""
    message = result.stderr.strip().splitlines()
    assert message[-1].startswith("Error:"), result.stderr
    for fragment in fragments:
        assert fragment in result.stderr, result.stderr


def test_fit_prints_only_the_run_path(runner, tmp_path):
    data = write_interaction_npz(tmp_path / "d.npz")
    out = tmp_path / "run"
    result = runner.invoke(cli, ["fit", "--data", str(data), "--out", str(out), *FAST])
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == str(out)
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["model"] == "lmf"
    assert metrics["rank"] == 2


def test_fit_default_out_never_overwrites(runner, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    data = write_interaction_npz(tmp_path / "d.npz")
    first = runner.invoke(cli, ["fit", "--data", str(data), *FAST])
    second = runner.invoke(cli, ["fit", "--data", str(data), *FAST])
    assert first.exit_code == 0
    assert second.exit_code == 0
    assert first.stdout.strip() == "runs/d-lmf-r2"
    assert second.stdout.strip() == "runs/d-lmf-r2-2"


@pytest.mark.parametrize("model", ["tfn", "concat"])
def test_fit_other_models(runner, tmp_path, model):
    data = write_interaction_npz(tmp_path / "d.npz")
    result = runner.invoke(cli, ["fit", "--data", str(data), "--model", model, "--out", str(tmp_path / "r"), *FAST])
    assert result.exit_code == 0, result.output


def test_existing_run_is_refused_then_overwritten(runner, tmp_path):
    data = write_interaction_npz(tmp_path / "d.npz")
    out = tmp_path / "run"
    assert runner.invoke(cli, ["fit", "--data", str(data), "--out", str(out), *FAST]).exit_code == 0
    before = (out / "metrics.json").read_bytes()
    refused = runner.invoke(cli, ["fit", "--data", str(data), "--out", str(out), "--seed", "5", *FAST])
    assert_clean_error(refused, 1, "already holds a run", "--overwrite")
    assert (out / "metrics.json").read_bytes() == before
    again = runner.invoke(cli, ["fit", "--data", str(data), "--out", str(out), "--seed", "5", "--overwrite", *FAST])
    assert again.exit_code == 0, again.output


def _nan(path):
    arrays = dict(np.load(write_interaction_npz(path)))
    arrays["x_b"][7, 0] = np.nan
    np.savez(path, **arrays)


def _inf(path):
    arrays = dict(np.load(write_interaction_npz(path)))
    arrays["x_a"][0, 0] = np.inf
    np.savez(path, **arrays)


def _unequal(path):
    arrays = dict(np.load(write_interaction_npz(path)))
    arrays["x_b"] = arrays["x_b"][:-10]
    np.savez(path, **arrays)


def _labels(path):
    arrays = dict(np.load(write_interaction_npz(path)))
    arrays["y"] = arrays["y"][:-1]
    np.savez(path, **arrays)


@pytest.mark.parametrize(
    ("corrupt", "fragments"),
    [
        (_nan, ["'b'", "NaN", "impute or drop"]),
        (_inf, ["'a'", "inf"]),
        (_unequal, ["samples", "paired row by row"]),
        (_labels, ["Labels", "length 239", "240 rows"]),
    ],
)
def test_bad_data_is_a_one_line_error_and_writes_nothing(runner, tmp_path, corrupt, fragments):
    path = tmp_path / "bad.npz"
    corrupt(path)
    out = tmp_path / "run"
    result = runner.invoke(cli, ["fit", "--data", str(path), "--out", str(out), *FAST])
    assert_clean_error(result, 1, *fragments)
    assert not out.exists()


@pytest.mark.parametrize(
    ("args", "code", "fragment"),
    [
        (["--data", "no-such-data"], 2, "av-digits"),
        (["--data", "missing/file.npz"], 1, "No file at"),
        (["--model", "transformer"], 2, "'transformer' is not one of"),
        (["--rank", "0"], 2, "--rank"),
        (["--prior-penalty", "kl"], 2, "--prior-penalty"),
        (["--rank-prior", "ard", "--model", "tfn"], 2, "applies to model 'lmf' only"),
        (["--inference", "hmc"], 2, "--inference"),
        (["--data", "av-digits", "--split", "speaker", "--held-out-speaker", "nobody"], 2, "nobody"),
        (["--split", "speaker"], 2, "no speaker metadata"),
        (["--modalities", "a,smell"], 1, "smell"),
        (["--ard-prior", "1"], 2, "--ard-prior"),
        (["--ard-prior", "0,1"], 2, "two positive numbers A0,B0"),
        (["--ard-prior", "a,b"], 2, "--ard-prior"),
        (["--ard-prior", "1,inf"], 2, "--ard-prior"),
    ],
)
def test_bad_options_are_one_line_errors(runner, tmp_path, args, code, fragment):
    data = write_interaction_npz(tmp_path / "d.npz")
    out = tmp_path / "run"
    result = runner.invoke(cli, ["fit", "--data", str(data), *FAST, *args, "--out", str(out)])
    assert_clean_error(result, code, fragment)
    assert not out.exists()


class _Marker:
    def __init__(self, path):
        self.path = path

    def __reduce__(self):
        return (open, (self.path, "w"))


def test_pickle_needs_trust_flag_and_is_never_unpickled_without_it(runner, tmp_path):
    marker = tmp_path / "executed"
    path = tmp_path / "data.pkl"
    path.write_bytes(pickle.dumps({"train": _Marker(str(marker))}))
    result = runner.invoke(cli, ["fit", "--data", str(path), "--out", str(tmp_path / "run"), *FAST])
    assert_clean_error(result, 1, "--trust-pickle")
    assert not marker.exists()
    assert not (tmp_path / "run").exists()


def test_resume_needs_out_and_a_run(runner, tmp_path):
    result = runner.invoke(cli, ["fit", "--resume", *FAST])
    assert_clean_error(result, 2, "--resume needs --out")
    result = runner.invoke(cli, ["fit", "--resume", "--out", str(tmp_path / "none"), *FAST])
    assert_clean_error(result, 1, "No run to resume")


def test_resume_refuses_options_it_would_ignore(runner, tmp_path):
    out = tmp_path / "run"
    assert runner.invoke(cli, ["fit", "--out", str(out), *FAST]).exit_code == 0
    before = (out / "config.json").read_text()
    result = runner.invoke(cli, ["fit", "--resume", "--out", str(out), "--rank", "3", "--data", "mfeat", "-q"])
    assert_clean_error(result, 2, "drop --rank, --data or start a new run")  # flags as typed, not click names
    assert (out / "config.json").read_text() == before


def test_datasets_lists_the_bundled_data(runner):
    result = runner.invoke(cli, ["datasets", "--json"])
    assert result.exit_code == 0, result.output
    names = {d["name"] for d in json.loads(result.stdout)}
    assert {"av-digits", "mfeat", "synthetic"} <= names
    table = runner.invoke(cli, ["datasets"])
    assert "av-digits" in table.stdout
    assert "mfeat" in table.stdout


def test_version(runner):
    result = runner.invoke(cli, ["--version"])
    assert result.exit_code == 0
    assert "probfusion" in result.stdout


def test_fit_rank_prior_ard_writes_the_effective_rank(runner, tmp_path):
    data = write_interaction_npz(tmp_path / "d.npz")
    out = tmp_path / "ard"
    result = runner.invoke(
        cli,
        [
            "fit",
            "--data",
            str(data),
            *FAST,
            "--rank-prior",
            "ard",
            "--max-rank",
            "4",
            "--posterior-samples",
            "8",
            "--out",
            str(out),
        ],
    )
    assert result.exit_code == 0, result.output
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["rank_prior"] == "ard"
    assert metrics["rank"] == 4
    assert 0 <= metrics["effective_rank"] <= 4
    assert len(metrics["components"]) == 4
    low, high = metrics["effective_rank_interval"]
    assert low <= metrics["effective_rank"] <= high


def test_a_command_imports_only_its_own_stack():
    # Subcommands load lazily: listing datasets must not pay for ArviZ (report), matplotlib (evaluate) or Optuna (tune).
    code = (
        "import sys; from probfusion.cli.main import cli; cli(['datasets', '--json'], standalone_mode=False); "
        "print(sorted(m for m in ('arviz', 'matplotlib', 'cvxpy', 'optuna') if m in sys.modules))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120)
    assert result.stdout.strip().splitlines()[-1] == "[]"


def test_ard_prior_reaches_the_bayes_config(runner, tmp_path, monkeypatch):
    seen = {}

    def capture(config, *args, **kwargs):
        seen["bayes"] = config.bayes
        raise RuntimeError("captured")  # stop before any fitting

    monkeypatch.setattr("probfusion.cli.fit.fit_run", capture)
    data = write_interaction_npz(tmp_path / "d.npz")
    args = ["fit", "--data", str(data), "--rank-prior", "ard", "--ard-prior", "0.01, 0.02", *FAST]
    result = runner.invoke(cli, [*args, "--out", str(tmp_path / "run")])
    assert str(result.exception) == "captured"
    assert (seen["bayes"].prior_shape, seen["bayes"].prior_rate) == (0.01, 0.02)
    runner.invoke(cli, ["fit", "--data", str(data), *FAST, "--out", str(tmp_path / "run2")])
    assert (seen["bayes"].prior_shape, seen["bayes"].prior_rate) == (1.0, 1.0)  # BayesConfig's defaults
