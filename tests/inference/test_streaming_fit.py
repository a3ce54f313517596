"""``fit`` on a folder source trains from disk in minibatches and gives what the same rows in an .npz give."""

import dataclasses
import json

import numpy as np
import pytest
import torch

from probfusion import fit, load_run
from probfusion.config import EvaluationConfig, FusionConfig, RunConfig
from probfusion.data.folder import FolderSubset
from probfusion.errors import ConfigError
from probfusion.evaluation import evaluate
from probfusion.runs.checkpoint import read_tensors
from tests.data.test_folder import write_folder
from tests.helpers import small_config, write_interaction_npz


@pytest.fixture
def sources(tmp_path):
    npz = write_interaction_npz(tmp_path / "d.npz", n=300)
    with np.load(npz) as archive:
        folder = write_folder(tmp_path / "d", **{key: archive[key] for key in archive.files})
    return npz, folder


def _without_pool(config: RunConfig) -> RunConfig:
    # The logistic-regression pool needs the training rows in memory: a folder source resolves it off, and the
    # .npz run it is compared with turns it off.
    return dataclasses.replace(config, fusion=dataclasses.replace(config.fusion, linear_pool=False))


@pytest.mark.parametrize("model", ["lmf", "concat"])
def test_a_folder_fits_to_the_npz_result_without_reading_a_split_whole(sources, tmp_path, monkeypatch, model):
    npz, folder = sources
    in_memory = fit(_without_pool(small_config(str(npz), model=model)), tmp_path / "npz")

    def refuse(self):
        raise AssertionError("fit read a whole split into memory")

    monkeypatch.setattr(FolderSubset, "views", property(refuse))
    streamed = fit(small_config(str(folder), model=model), tmp_path / "folder")
    for key in ("train", "val", "test", "best_epoch", "epochs_run", "total_parameters"):
        assert streamed.metrics[key] == in_memory.metrics[key], key  # equal, not close
    weights = [read_tensors(run.path / "weights.safetensors")[0] for run in (in_memory, streamed)]
    assert weights[0].keys() == weights[1].keys()
    assert all(torch.equal(weights[0][k], weights[1][k]) for k in weights[0])  # model, standardizer, reference
    data = [json.loads((run.path / "config.json").read_text())["provenance"]["data"] for run in (in_memory, streamed)]
    assert (data[0]["sha256"], data[0]["split_sha256"]) == (data[1]["sha256"], data[1]["split_sha256"])


def test_a_kind_with_a_second_stage_is_refused_before_anything_is_written(sources, tmp_path):
    _, folder = sources
    config = small_config(str(folder))
    config = dataclasses.replace(config, fusion=dataclasses.replace(config.fusion, rank_prior="ard"))
    with pytest.raises(ConfigError, match=r"'bayes-lmf' fits its second stage on every training row.*from an .npz"):
        fit(config, tmp_path / "bayes")
    assert not (tmp_path / "bayes").exists()
    with pytest.raises(ConfigError, match="'gp-mkl' fits its second stage"):
        fit(dataclasses.replace(config, fusion=FusionConfig(model="gp-mkl")), tmp_path / "gp")


def test_a_folder_run_evaluates_and_predicts_as_the_npz_run(sources, tmp_path):
    """evaluate and predict read a folder run's splits whole (they fit in memory); the numbers are the .npz run's."""
    rows, probabilities = [], []
    for source in sources:
        config = _without_pool(small_config(str(source), epochs=2))
        run = load_run(fit(config, tmp_path / f"run-{source.suffix or 'folder'}").path)
        report = evaluate(run, EvaluationConfig(attack="none", shift="missing"), name="missing")
        rows.append(json.loads((report.path / "rows.json").read_text())["rows"])
        test = run.splits()[2]
        probabilities.append(run.predict({m: test.views[m][:7] for m in run.input_dims}).probabilities)
    assert rows[0] == rows[1]
    np.testing.assert_array_equal(probabilities[0], probabilities[1])


def test_the_logistic_regression_pool_is_refused_for_a_folder_before_anything_is_written(sources, tmp_path):
    _, folder = sources
    config = small_config(str(folder))
    config = dataclasses.replace(config, fusion=dataclasses.replace(config.fusion, linear_pool=True))
    with pytest.raises(ConfigError, match=r"linear_pool.*folder source"):
        fit(config, tmp_path / "pooled")
    assert not (tmp_path / "pooled").exists()
