"""Runs stored by older versions load as they were trained.

Before the ``temperature`` buffer (and ``TrainConfig.calibration``), and under the retired rows-per-class rule of
the input skip (NOTES.md §28).
"""

from __future__ import annotations

import dataclasses
import json

import pytest
import torch

from probfusion.api import fit, load_run
from probfusion.config import TrainConfig
from probfusion.errors import CheckpointError
from probfusion.fusion.classifier import MultimodalClassifier
from probfusion.options import Calibration
from probfusion.runs.checkpoint import load_module_state, read_tensors, write_tensors
from probfusion.runs.manifest import MANIFEST, write_manifest
from tests.helpers import small_config, write_separable_npz


def _make_old(run_path) -> None:
    """Rewrite a fresh run as an older version stored it: no temperature tensor, no calibration field."""
    weights = run_path / "weights.safetensors"
    tensors, metadata = read_tensors(weights)
    assert "model.temperature" in tensors
    del tensors["model.temperature"]
    write_tensors(weights, tensors, metadata)
    config_path = run_path / "config.json"
    record = json.loads(config_path.read_text())
    for part in ("config", "resolved"):
        del record[part]["train"]["calibration"]
    config_path.write_text(json.dumps(record))
    names = list(json.loads((run_path / MANIFEST).read_text())["sha256"])
    write_manifest(run_path, names)


def test_a_run_without_the_temperature_loads_with_t_one_and_predicts_the_raw_logits(tmp_path):
    data = write_separable_npz(tmp_path / "d.npz", n=200)
    run = fit(small_config(str(data), epochs=12), tmp_path / "run")
    fresh = load_run(run.path)
    _, val, _ = fresh.splits()
    views = fresh.tensors(val).views
    with torch.no_grad():
        tempered = fresh.model(views)
        raw = tempered * fresh.model.temperature
    _make_old(run.path)
    old = load_run(run.path)
    assert float(old.model.temperature) == 1.0
    assert old.config.train.calibration is Calibration.NONE
    with torch.no_grad():
        assert torch.allclose(old.model(views), raw, atol=1e-6)


def test_a_state_without_the_temperature_fills_it_and_other_gaps_still_fail(tmp_path):
    model = MultimodalClassifier(
        input_dims={"a": 3, "b": 2}, num_classes=2, jwae=small_config("x").jwae, fusion=small_config("x").fusion
    )
    state = {f"model.{k}": v for k, v in model.state_dict().items() if k != "temperature"}
    model.temperature.fill_(3.0)
    load_module_state(model, state, prefix="model.", source=tmp_path / "w")
    assert float(model.temperature) == 1.0
    incomplete = {k: v for k, v in state.items() if not k.endswith("fusion.factors.0")}
    with pytest.raises(CheckpointError, match="missing"):
        load_module_state(model, incomplete, prefix="model.", source=tmp_path / "w")
    assert TrainConfig.from_dict({}).calibration is Calibration.NONE


def test_a_run_of_the_retired_rows_per_class_rule_loads_with_the_skip_it_was_trained_with(tmp_path):
    # Before NOTES.md §28, input_linear=None resolved on at 10 or fewer rows per class; such a run stores None in
    # "config", True in "resolved" and the retired threshold in both, and must load with its skip.
    data = write_separable_npz(tmp_path / "d.npz", n=200)
    base = small_config(str(data), epochs=3)
    config = dataclasses.replace(base, fusion=dataclasses.replace(base.fusion, input_linear=True))
    run = fit(config, tmp_path / "run")
    before = load_run(run.path)
    config_path = run.path / "config.json"
    record = json.loads(config_path.read_text())
    record["config"]["fusion"]["input_linear"] = None
    for part in ("config", "resolved"):
        record[part]["fusion"]["input_linear_rows_per_class"] = 10.0
    config_path.write_text(json.dumps(record))
    write_manifest(run.path, list(json.loads((run.path / MANIFEST).read_text())["sha256"]))
    old = load_run(run.path)
    assert old.model.input_linear is not None
    _, _, test = old.splits()
    views = old.tensors(test).views
    with torch.no_grad():
        assert torch.equal(old.model(views), before.model(views))


def test_a_fit_interrupted_under_the_retired_rule_resumes_with_the_skip_it_started_with(tmp_path):
    # Resuming takes the fields left None from the interrupted fit's "resolved" record, not from today's rules.
    data = write_separable_npz(tmp_path / "d.npz", n=200)
    base = small_config(str(data), epochs=4)
    trained = dataclasses.replace(base, fusion=dataclasses.replace(base.fusion, input_linear=True))
    straight = fit(trained, tmp_path / "straight").metrics

    def interrupt(state):
        if state.epoch == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        fit(trained, tmp_path / "run", on_epoch_end=interrupt, checkpoint_seconds=0)
    config_path = tmp_path / ".run.partial" / "config.json"
    record = json.loads(config_path.read_text())
    record["config"]["fusion"]["input_linear"] = None  # as the old default stored it; "resolved" says True
    config_path.write_text(json.dumps(record))
    old_default = dataclasses.replace(base, fusion=dataclasses.replace(base.fusion, input_linear=None))
    resumed = fit(old_default, tmp_path / "run", resume=True)
    assert resumed.metrics["test"] == straight["test"]
    assert load_run(resumed.path).model.input_linear is not None
