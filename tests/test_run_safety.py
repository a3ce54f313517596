"""A run folder is written whole or not at all, by one writer, and knows its data (issue 11, items 2-5)."""

import dataclasses
import json
import os

import numpy as np
import pytest
from click.testing import CliRunner

from probfusion.api import fit, load_run
from probfusion.cli.main import cli
from probfusion.config import EvaluationConfig, TrainConfig
from probfusion.errors import CheckpointError, InputDataError, RunExistsError, RunLockedError, TrainingDivergedError
from probfusion.evaluation import evaluate
from probfusion.runs.lock import run_lock
from tests.cli.test_cli import FAST, assert_clean_error
from tests.helpers import small_config, write_interaction_npz


def _snapshot(folder):
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def _hidden(parent):
    return sorted(p.name for p in parent.iterdir() if p.name.startswith(".") and not p.name.endswith(".lock"))


@pytest.fixture
def data(tmp_path):
    return str(write_interaction_npz(tmp_path / "d.npz"))


def test_a_fit_whose_loss_diverges_leaves_nothing(tmp_path, data):
    result = CliRunner().invoke(
        cli, ["fit", "--data", data, "--out", str(tmp_path / "run"), "--prior-weight", "inf", *FAST]
    )
    assert result.exit_code == 1
    assert not (tmp_path / "run").exists()
    assert _hidden(tmp_path) == []
    # ... so the next fit on the same --out just works.
    result = CliRunner().invoke(cli, ["fit", "--data", data, "--out", str(tmp_path / "run"), *FAST])
    assert result.exit_code == 0, result.output


def test_a_failed_overwrite_keeps_the_old_run_whole(tmp_path, data):
    config = small_config(data)
    run = fit(config, tmp_path / "run").path
    before = _snapshot(run)
    bad = dataclasses.replace(config, train=dataclasses.replace(config.train, learning_rate=float("inf")))
    with pytest.raises(TrainingDivergedError):
        fit(bad, run, overwrite=True)
    assert _snapshot(run) == before
    assert _hidden(tmp_path) == []
    load_run(run)


def test_overwrite_replaces_the_old_runs_evaluations_too(tmp_path, data):
    config = small_config(data)
    run = fit(config, tmp_path / "run").path
    evaluate(load_run(run), EvaluationConfig(attack="none"))
    assert (run / "evaluations").is_dir()
    fit(dataclasses.replace(config, seed=1), run, overwrite=True)
    assert not (run / "evaluations").exists()


def test_a_second_writer_on_one_run_folder_gets_a_one_line_error(tmp_path, data):
    config = small_config(data)
    out = tmp_path / "run"
    seen = []

    def second_fit(state):
        if state.epoch == 1:  # the first fit holds the lock now
            with pytest.raises(RunLockedError, match="in use by another probfusion process") as info:
                fit(config, out, overwrite=True)
            seen.append(str(info.value))

    fit(config, out, on_epoch_end=second_fit)
    assert len(seen) == 1
    assert "\n" not in seen[0]
    with run_lock(out):  # another process evaluating or fitting: evaluate refuses too
        with pytest.raises(RunLockedError):
            evaluate(load_run(out), EvaluationConfig(attack="none"))
        result = CliRunner().invoke(cli, ["fit", "--data", data, "--out", str(out), "--overwrite", *FAST])
        assert_clean_error(result, 1, "in use by another probfusion process")


def test_the_run_stores_an_absolute_data_path_and_reads_it_from_any_folder(tmp_path, data, monkeypatch):
    monkeypatch.chdir(tmp_path)
    run = fit(small_config("d.npz"), tmp_path / "run").path
    stored = json.loads((run / "config.json").read_text())
    assert stored["config"]["data"]["name"] == str(tmp_path / "d.npz")
    assert len(stored["provenance"]["data"]["sha256"]) == 64
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    write_interaction_npz(elsewhere / "d.npz", seed=5)  # same name, other rows: must not be read
    monkeypatch.chdir(elsewhere)
    train, _, _ = load_run(run).splits()
    with np.load(tmp_path / "d.npz") as original:
        assert np.isin(train.labels, original["y"]).all()
        assert train.num_samples < original["y"].shape[0]


def test_swapped_data_of_the_same_shape_is_refused(tmp_path, data):
    run = fit(small_config(data), tmp_path / "run").path
    write_interaction_npz(tmp_path / "d.npz", seed=7)
    with pytest.raises(InputDataError, match="not the data run"):
        load_run(run).splits()
    result = CliRunner().invoke(cli, ["evaluate", str(run), "-q"])
    assert_clean_error(result, 1, "not the data run")
    assert not (run / "evaluations").exists()


def test_resume_refuses_a_stored_config_pointing_at_other_data(tmp_path, data):
    config = small_config(data)
    out = tmp_path / "run"

    def interrupt(state):
        if state.epoch == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        fit(config, out, on_epoch_end=interrupt)
    partial = tmp_path / ".run.partial"
    other = write_interaction_npz(tmp_path / "other.npz", seed=3)
    stored = json.loads((partial / "config.json").read_text())
    stored["config"]["data"]["name"] = str(other)
    (partial / "config.json").write_text(json.dumps(stored))
    result = CliRunner().invoke(cli, ["fit", "--out", str(out), "--resume", "-q"])
    assert_clean_error(result, 1, "not the data run")
    assert not out.exists()


def test_a_weights_file_changed_after_the_fit_is_refused(tmp_path, data):
    run = fit(small_config(data), tmp_path / "run").path
    weights = run / "weights.safetensors"
    raw = bytearray(weights.read_bytes())
    raw[-1] ^= 1
    weights.write_bytes(bytes(raw))
    with pytest.raises(CheckpointError, match="does not match its SHA-256"):
        load_run(run)


def test_an_interrupted_fit_leaves_the_target_alone_and_resumes_exactly(tmp_path, data):
    config = dataclasses.replace(small_config(data), train=TrainConfig(epochs=5, batch_size=64, patience=50))
    straight = fit(config, tmp_path / "straight").metrics
    old = fit(dataclasses.replace(config, seed=3), tmp_path / "run").path
    before = _snapshot(old)

    def interrupt(state):
        if state.epoch == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        fit(config, old, overwrite=True, on_epoch_end=interrupt, checkpoint_seconds=0)
    assert _snapshot(old) == before  # the previous run is still there, whole
    with pytest.raises(RunExistsError, match="--resume"):
        fit(config, old, overwrite=False)
    resumed = fit(config, old, resume=True).metrics
    assert resumed["test"] == straight["test"]
    assert _hidden(tmp_path) == []


def test_a_read_only_out_folder_is_a_one_line_error(tmp_path, data, monkeypatch):
    out = tmp_path / "ro"
    out.mkdir()
    out.chmod(0o555)
    if os.access(out, os.W_OK):  # root writes anywhere: let the permission check see what another user would
        monkeypatch.setattr("probfusion.runs.fit_folder._writable", lambda path: False)
    try:
        result = CliRunner().invoke(cli, ["fit", "--data", data, "--out", str(out), *FAST])
        assert_clean_error(result, 1, "not writable")
        assert _hidden(tmp_path) == []
    finally:
        out.chmod(0o755)
