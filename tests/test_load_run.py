"""load_run validates what it reads: metadata, class labels and the stored standardisation."""

import json
import shutil

import numpy as np
import pytest
import torch

from probfusion.api import fit, load_run
from probfusion.config import DataConfig, FusionConfig, JWAEConfig, RunConfig, TrainConfig
from probfusion.errors import CheckpointError, InputDataError
from probfusion.runs.checkpoint import read_tensors, write_tensors
from tests.helpers import write_interaction_npz


@pytest.fixture(scope="module")
def fitted(tmp_path_factory):
    """One small run on labels {3, 42} (a model of 43 classes before labels were encoded)."""
    root = tmp_path_factory.mktemp("labels")
    data = write_interaction_npz(root / "d.npz")
    arrays = dict(np.load(data))
    arrays["y"] = np.where(arrays["y"] == 1, 42, 3)
    np.savez(data, **arrays)
    config = RunConfig(
        data=DataConfig(name=str(data)),
        jwae=JWAEConfig(latent_dim=2, hidden_dim=8),
        fusion=FusionConfig(rank=2, fused_dim=4),
        train=TrainConfig(epochs=2, batch_size=64),
        device="cpu",
    )
    return fit(config, root / "run").path


@pytest.fixture
def run_copy(fitted, tmp_path):
    return shutil.copytree(fitted, tmp_path / "run")


def _rewrite_weights(run, *, tensors=None, meta=None):
    path = run / "weights.safetensors"
    stored, header = read_tensors(path)
    stored.update(tensors or {})
    header.update(meta or {})
    write_tensors(path, {k: v for k, v in stored.items() if v is not None}, header)
    (run / "manifest.json").unlink()  # as a run written before manifests, which would refuse any change outright


def test_labels_are_kept_in_the_run_and_the_model_has_one_output_per_class(fitted):
    metrics = json.loads((fitted / "metrics.json").read_text())
    assert metrics["class_labels"] == [3, 42]
    _, header = read_tensors(fitted / "weights.safetensors")
    assert header["class_labels"] == [3, 42]
    assert header["num_classes"] == 2
    loaded = load_run(fitted)
    assert loaded.class_labels == (3, 42)
    _, _, test = loaded.splits()
    assert loaded.model.predictive_logits(loaded.tensors(test).views, 1).shape[-1] == 2


def test_a_run_without_class_labels_loads_with_indices_and_refuses_data_with_other_classes(run_copy):
    path = run_copy / "weights.safetensors"
    stored, header = read_tensors(path)
    del header["class_labels"]
    write_tensors(path, stored, header)
    (run_copy / "manifest.json").unlink()  # a run written before class labels (and manifests)
    loaded = load_run(run_copy)
    assert loaded.class_labels == (0, 1)
    with pytest.raises(InputDataError, match=r"classes \[3, 42\].*trained on \[0, 1\]"):
        loaded.splits()


@pytest.mark.parametrize(
    ("tensors", "meta", "fragments"),
    [
        ({"standardizer.std.a": torch.zeros(4)}, {}, ["standardizer.std.a", "not finite and positive"]),
        ({"standardizer.std.a": torch.full((4,), float("nan"))}, {}, ["standardizer.std.a", "finite and positive"]),
        ({"standardizer.std.b": torch.ones(5)}, {}, ["standardizer.std.b", "shape (5,)", "expected (3,)"]),
        ({"standardizer.mean.a": torch.ones(2)}, {}, ["standardizer.mean.a", "shape (2,)", "expected (4,)"]),
        ({"standardizer.mean.b": torch.tensor([0.0, float("inf"), 0.0])}, {}, ["mean.b", "not finite"]),
        ({}, {"num_classes": 10**9}, ["num_classes", "from 2 to 50000", "1000000000"]),
        ({}, {"num_classes": True}, ["num_classes", "True"]),
        ({}, {"num_classes": 3, "class_labels": [3, 42, 7]}, ["expects (3,"]),
        ({}, {"class_labels": [3]}, ["class_labels", "2 distinct"]),
        ({}, {"input_dims": {"a": 4, "b": 10**9}}, ["too large"]),
        ({}, {"input_dims": {"a": 4, "b": -3}}, ["input_dims.b"]),
        ({}, {"num_train": "many"}, ["num_train"]),
    ],
)
def test_tampered_weights_are_one_line_checkpoint_errors(run_copy, tensors, meta, fragments):
    _rewrite_weights(run_copy, tensors=tensors, meta=meta)
    with pytest.raises(CheckpointError) as info:
        load_run(run_copy)
    message = str(info.value)
    assert "\n" not in message
    for fragment in fragments:
        assert fragment in message, message


def test_nan_weights_are_refused_not_evaluated_to_nan(run_copy):
    stored, _ = read_tensors(run_copy / "weights.safetensors")
    key = next(k for k in stored if k.startswith("model.fusion."))
    _rewrite_weights(run_copy, tensors={key: torch.full_like(stored[key], float("nan"))})
    with pytest.raises(CheckpointError, match=r"NaN or inf.*re-run fit with --overwrite"):
        load_run(run_copy)
