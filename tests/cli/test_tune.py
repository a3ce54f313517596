"""`probfusion tune`: the study path on stdout, a best run `evaluate` can use, resume, one-line errors."""

import csv
import functools
import json
import pickle

import pytest
from click.testing import CliRunner

import probfusion.cli.tune as tune_module
from probfusion.cli.main import cli
from probfusion.tuning import IntDimension, SearchSpace, TuneConfig
from tests.helpers import write_interaction_npz

BASE = ["--device", "cpu", "--fused-dim", "8"]
# The default space trains up to 120 epochs at width 256; these tests check the wiring on a small space.
FAST_SPACE = SearchSpace(latent_dim=IntDimension(2, 6), hidden_dim=IntDimension(8, 16), epochs=IntDimension(2, 4))


@pytest.fixture(autouse=True)
def fast_space(monkeypatch):
    # The command builds its space from the module's defaults (_TUNE.space, plus --models); no baseline trial 0
    # (it would train the defaults' 1,500 steps) except where a test asks for it.
    monkeypatch.setattr(tune_module, "_TUNE", TuneConfig(space=FAST_SPACE))
    monkeypatch.setattr(tune_module, "TuneConfig", functools.partial(TuneConfig, baseline_trial=False))


def test_the_fast_space_reaches_the_trials(runner, tmp_path, data):
    # Guards the fixture: a trial drawn from the default space instead trains 1,000 or more epochs.
    out = tmp_path / "study"
    result = runner.invoke(cli, ["tune", "--data", str(data), "--trials", "1", "--out", str(out), "-q", *BASE])
    assert result.exit_code == 0, result.output
    trial = rows(out)[0]
    assert 2 <= int(trial["params_epochs"]) <= 4
    assert 2 <= int(trial["params_latent_dim"]) <= 6


@pytest.fixture
def runner():
    return CliRunner()


@pytest.fixture
def data(tmp_path):
    return write_interaction_npz(tmp_path / "d.npz")


def rows(study):
    with (study / "trials.csv").open() as handle:
        return list(csv.DictReader(handle))


def assert_clean_error(result, code, *fragments):
    assert result.exit_code == code, result.output
    assert "Traceback" not in result.stderr
    assert result.stdout == ""
    assert result.stderr.strip().splitlines()[-1].startswith("Error:"), result.stderr
    for fragment in fragments:
        assert fragment in result.stderr, result.stderr


def test_tune_prints_only_the_study_path_and_its_best_run_evaluates(runner, tmp_path, data, monkeypatch):
    monkeypatch.setattr(tune_module, "TuneConfig", TuneConfig)  # trial 0 too
    out = tmp_path / "study"
    args = ["tune", "--data", str(data), "--trials", "3", "--out", str(out), "--guard-z", "1e9", *BASE]
    result = runner.invoke(cli, args)
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == str(out)
    assert "best val NLL" in result.stderr
    assert rows(out)[0]["note"].startswith("baseline")
    # --guard-z 1e9: best/ is trial 0 (the defaults) whichever trial has the lowest validation NLL.
    assert "trial 0: the defaults, nothing drawn" in result.stderr
    summary = json.loads((out / "study.json").read_text())
    assert summary["storage"] == "journal.log"
    assert (out / "journal.log").is_file()
    assert len(rows(out)) == 3
    evaluated = runner.invoke(
        cli, ["evaluate", str(out / "best"), "--attack", "fgsm", "--eps", "0.1", "--samples", "1"]
    )
    assert evaluated.exit_code == 0, evaluated.output
    assert (out / "best" / "evaluations").is_dir()


def test_rerunning_the_command_continues_the_study(runner, tmp_path, data):
    out = tmp_path / "study"
    args = ["tune", "--data", str(data), "--out", str(out), "-q", *BASE]
    assert runner.invoke(cli, [*args, "--trials", "2"]).exit_code == 0
    again = runner.invoke(cli, [*args, "--trials", "3"])
    assert again.exit_code == 0, again.output
    assert again.stderr == ""  # -q: no bar, no summary
    assert [r["number"] for r in rows(out)] == ["0", "1", "2"]
    changed = runner.invoke(cli, [*args, "--trials", "4", "--seed", "3"])
    assert_clean_error(changed, 2, "another base config", "seed")
    assert len(rows(out)) == 3


def test_a_storage_url_holds_the_study_instead_of_the_journal(runner, tmp_path, data):
    out = tmp_path / "study"
    url = f"sqlite:///{tmp_path / 'optuna.db'}"
    args = ["tune", "--data", str(data), "--out", str(out), "--storage", url, "--study-name", "shared", *BASE]
    result = runner.invoke(cli, [*args, "--trials", "2", "-q"])
    assert result.exit_code == 0, result.output
    assert not (out / "journal.log").exists()
    summary = json.loads((out / "study.json").read_text())
    assert (summary["storage"], summary["study_name"]) == (url, "shared")
    assert sum(summary["n_trials"].values()) == 2
    journal = runner.invoke(cli, [*args[: args.index("--storage")], *BASE, "--trials", "3"])
    assert_clean_error(journal, 2, "lives in sqlite", "pass --storage")


def test_a_storage_that_cannot_be_opened_is_one_line_without_its_password(runner, tmp_path, data):
    out = tmp_path / "study"
    url = "postgresql://user:secret@127.0.0.1:1/db"  # no driver installed here, so nothing is contacted either
    result = runner.invoke(cli, ["tune", "--data", str(data), "--out", str(out), "--storage", url, *BASE])
    assert_clean_error(result, 1, "Cannot open the study", "postgresql://user:***@127.0.0.1:1/db")
    assert "secret" not in result.stderr
    assert not out.exists()


@pytest.mark.parametrize(
    ("args", "code", "fragment"),
    [
        (["--trials", "0"], 2, "--trials"),
        (["--guard-z", "-1"], 2, "--guard-z"),
        (["--selection", "best"], 2, "--selection"),
        (["--workers", "0"], 2, "--workers"),
        (["--storage", "optuna.db"], 2, "storage URL"),
        (["--data", "no-such-data"], 2, "av-digits"),
        (["--data", "missing/file.npz"], 1, "No file at"),
        (["--model", "tfn", "--rank-prior", "ard"], 2, "applies to model 'lmf' only"),
        (["--rank", "3"], 2, "No such option '--rank'"),  # drawn by the search space, not an option
    ],
)
def test_bad_options_are_one_line_errors(runner, tmp_path, data, args, code, fragment):
    out = tmp_path / "study"
    result = runner.invoke(cli, ["tune", "--data", str(data), "--out", str(out), *BASE, *args])
    assert_clean_error(result, code, fragment)
    assert not out.exists()


def test_a_fit_run_folder_is_not_taken_for_a_study(runner, tmp_path, data):
    run = tmp_path / "run"
    fitted = runner.invoke(cli, ["fit", "--data", str(data), "--out", str(run), "--epochs", "1", "-q", *BASE])
    assert fitted.exit_code == 0, fitted.output
    before = sorted(p.name for p in run.iterdir())
    result = runner.invoke(cli, ["tune", "--data", str(data), "--out", str(run), *BASE])
    assert_clean_error(result, 1, "holds no tuning study")
    assert sorted(p.name for p in run.iterdir()) == before


class _Marker:
    def __init__(self, path):
        self.path = path

    def __reduce__(self):
        return (open, (self.path, "w"))


def test_a_pickle_needs_the_trust_flag(runner, tmp_path):
    marker = tmp_path / "executed"
    path = tmp_path / "data.pkl"
    path.write_bytes(pickle.dumps({"train": _Marker(str(marker))}))
    result = runner.invoke(cli, ["tune", "--data", str(path), "--out", str(tmp_path / "study"), *BASE])
    assert_clean_error(result, 1, "--trust-pickle")
    assert not marker.exists()
    assert not (tmp_path / "study").exists()


def test_the_python_api_exports_tune_lazily():
    # `import probfusion` does not import Optuna (tests/cli/test_cli.py checks that); the names load on use.
    import probfusion
    import probfusion.tuning

    assert probfusion.tune is probfusion.tuning.tune
    assert probfusion.TuneConfig is TuneConfig
