import json

import pytest
import torch

from probfusion.errors import CheckpointError, RunExistsError
from probfusion.runs import (
    RunDirectory,
    atomic_write_csv,
    atomic_write_json,
    load_module_state,
    read_tensors,
    write_tensors,
)


def test_atomic_json_is_sorted_indented_and_leaves_no_temporary(tmp_path):
    path = tmp_path / "m.json"
    atomic_write_json(path, {"b": 1, "a": {"y": 2, "x": 1}})
    assert path.read_text() == json.dumps({"a": {"x": 1, "y": 2}, "b": 1}, indent=2, sort_keys=True) + "\n"
    assert [p.name for p in tmp_path.iterdir()] == ["m.json"]


def test_atomic_csv_union_of_columns(tmp_path):
    path = tmp_path / "m.csv"
    atomic_write_csv(path, [{"split": "train", "accuracy": 1.0}, {"split": "test", "nll": 0.5}])
    assert path.read_text().splitlines() == ["split,accuracy,nll", "train,1.0,", "test,,0.5"]


def test_prepare_refuses_existing_run_and_overwrite_clears_only_run_files(tmp_path):
    run = RunDirectory(tmp_path / "run")
    run.prepare(overwrite=False, resume=False)
    atomic_write_json(run.file(run.CONFIG), {"config": {}})
    (run.path / "notes.txt").write_text("mine")
    with pytest.raises(RunExistsError, match="--overwrite"):
        run.prepare(overwrite=False, resume=False)
    run.prepare(overwrite=True, resume=False)
    assert not run.is_run
    assert (run.path / "notes.txt").read_text() == "mine"


def test_prepare_refuses_a_non_empty_folder_without_a_run(tmp_path):
    (tmp_path / "x.txt").write_text("data")
    with pytest.raises(RunExistsError, match="not empty"):
        RunDirectory(tmp_path).prepare(overwrite=True, resume=False)


def test_resume_without_checkpoint_is_an_error(tmp_path):
    with pytest.raises(CheckpointError, match="Nothing to resume"):
        RunDirectory(tmp_path).prepare(overwrite=False, resume=True)


def test_safetensors_round_trip_with_metadata(tmp_path):
    path = tmp_path / "w.safetensors"
    write_tensors(path, {"a.weight": torch.arange(6.0).reshape(2, 3)}, {"input_dims": {"image": 3}})
    tensors, meta = read_tensors(path)
    assert torch.equal(tensors["a.weight"], torch.arange(6.0).reshape(2, 3))
    assert meta == {"input_dims": {"image": 3}}


def test_corrupt_or_missing_weights_are_checkpoint_errors(tmp_path):
    with pytest.raises(CheckpointError, match="No weights file"):
        read_tensors(tmp_path / "missing.safetensors")
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"\x00" * 5)
    with pytest.raises(CheckpointError, match="not a readable safetensors"):
        read_tensors(bad)


def test_shape_mismatch_names_both_shapes(tmp_path):
    module = torch.nn.Linear(3, 2)
    with pytest.raises(CheckpointError, match=r"shape \(2, 5\).*expects \(2, 3\)"):
        load_module_state(
            module, {"m.weight": torch.zeros(2, 5), "m.bias": torch.zeros(2)}, prefix="m.", source=tmp_path
        )
    with pytest.raises(CheckpointError, match="missing"):
        load_module_state(module, {"m.weight": torch.zeros(2, 3)}, prefix="m.", source=tmp_path)
