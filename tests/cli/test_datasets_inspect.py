"""`probfusion datasets --inspect FILE`: what a user file holds, as text or JSON; one-line errors."""

import json
import pickle

import numpy as np
import pytest
import scipy.io
from click.testing import CliRunner

from probfusion.cli.main import cli
from tests.cli.test_cli import assert_clean_error
from tests.helpers import write_interaction_npz


@pytest.fixture
def runner():
    return CliRunner()


def _mat(path, n=40):
    rng = np.random.default_rng(0)
    cell = np.empty((1, 2), dtype=object)
    cell[0, 0] = rng.normal(size=(n, 3))
    cell[0, 1] = rng.normal(size=(5, n))  # stored d_m x n
    labels = np.repeat([1, 2, 3, 4], [10, 10, 15, 5])[:, None].astype(float)
    scipy.io.savemat(path, {"X": cell, "Y": labels, "folds": np.ones((n, 1))})
    return path


def test_inspect_mat_as_json(runner, tmp_path):
    path = _mat(tmp_path / "views.mat")
    result = runner.invoke(cli, ["datasets", "--inspect", str(path), "--json"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["format"] == "mat"
    assert summary["modalities"] == {"v0": 3, "v1": 5}
    assert summary["num_samples"] == 40
    assert summary["num_classes"] == 4
    assert summary["class_counts"] == {"1": 10, "2": 10, "3": 15, "4": 5}
    assert summary["label_range"] == [1, 4]  # as stored, before renumbering
    assert summary["split"] is None
    assert summary["orientation"] == {"v0": "n x d_m", "v1": "d_m x n"}
    assert summary["sources"] == {"views": "X", "labels": "Y", "ignored": "folds"}


def test_inspect_mat_as_text(runner, tmp_path):
    path = _mat(tmp_path / "views.mat")
    result = runner.invoke(cli, ["datasets", "--inspect", str(path)])
    assert result.exit_code == 0, result.output
    for fragment in ("samples n: 40", "v0 (3), v1 (5)", "classes: 4, labels as stored 1..4", "3: 15", "none shipped"):
        assert fragment in result.stdout
    assert "v1 d_m x n" in result.stdout


def test_inspect_npz_reports_its_split(runner, tmp_path):
    split = np.repeat(np.array([0, 1, 2]), [160, 40, 40])
    path = write_interaction_npz(tmp_path / "d.npz", split=split)
    result = runner.invoke(cli, ["datasets", "--inspect", str(path), "--json"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["format"] == "npz"
    assert summary["modalities"] == {"a": 4, "b": 3}
    assert summary["split"] == {"train": 160, "validation": 40, "test": 40}
    assert summary["orientation"] is None
    assert sum(summary["class_counts"].values()) == 240


def test_inspect_pickle_needs_the_trust_flag(runner, tmp_path):
    path = tmp_path / "data.pkl"
    path.write_bytes(pickle.dumps({"train": {}}))
    assert_clean_error(runner.invoke(cli, ["datasets", "--inspect", str(path)]), 1, "--trust-pickle")


@pytest.mark.parametrize(
    ("name", "content", "code", "fragment"),
    [
        ("missing.mat", None, 1, "No file at"),
        ("broken.mat", b"not a MATLAB file" * 10, 1, "not a readable MAT file"),
        ("data.csv", b"1,2\n", 2, "expected .npz, .mat"),
    ],
)
def test_inspect_errors_are_one_line(runner, tmp_path, name, content, code, fragment):
    path = tmp_path / name
    if content is not None:
        path.write_bytes(content)
    result = runner.invoke(cli, ["datasets", "--inspect", str(path), "--json"])
    assert_clean_error(result, code, fragment)
    lines = result.stderr.strip().splitlines()
    assert fragment in lines[-1]  # the whole message on one line (exit 2 adds click's usage header above it)
    assert len(lines) == (1 if code == 1 else 4)
