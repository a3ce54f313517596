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
from probfusion.runs.fit_folder import begin_fit, publish, resumable


def test_atomic_json_is_sorted_indented_and_leaves_no_temporary(tmp_path):
    path = tmp_path / "m.json"
    atomic_write_json(path, {"b": 1, "a": {"y": 2, "x": 1}})
    assert path.read_text() == json.dumps({"a": {"x": 1, "y": 2}, "b": 1}, indent=2, sort_keys=True) + "\n"
    assert [p.name for p in tmp_path.iterdir()] == ["m.json"]


def test_atomic_csv_union_of_columns(tmp_path):
    path = tmp_path / "m.csv"
    atomic_write_csv(path, [{"split": "train", "accuracy": 1.0}, {"split": "test", "nll": 0.5}])
    assert path.read_text().splitlines() == ["split,accuracy,nll", "train,1.0,", "test,,0.5"]


def _complete_run(path):
    path.mkdir(parents=True)
    for name in (RunDirectory.CONFIG, RunDirectory.METRICS_JSON):
        atomic_write_json(path / name, {"config": {}})
    (path / RunDirectory.WEIGHTS).write_bytes(b"w")


def test_begin_fit_stages_beside_the_target_and_publish_swaps_it_in(tmp_path):
    target = RunDirectory(tmp_path / "run")
    work = begin_fit(target, overwrite=False, resume=False)
    assert work.path == tmp_path / ".run.partial"
    assert work.path.is_dir()
    assert not target.path.exists()
    atomic_write_json(work.file(work.CONFIG), {"config": {}})
    publish(work, target)
    assert target.is_run
    assert not work.path.exists()


def test_begin_fit_refuses_existing_run_and_overwrite_replaces_it_only_at_publish(tmp_path):
    target = RunDirectory(tmp_path / "run")
    _complete_run(target.path)
    (target.path / "evaluations").mkdir()
    with pytest.raises(RunExistsError, match="--overwrite"):
        begin_fit(target, overwrite=False, resume=False)
    work = begin_fit(target, overwrite=True, resume=False)
    assert target.is_complete  # the old run is intact until the new one is complete
    atomic_write_json(work.file(work.CONFIG), {"config": {"new": 1}})
    publish(work, target)
    assert json.loads(target.file(target.CONFIG).read_text()) == {"config": {"new": 1}}
    assert not (target.path / "evaluations").exists()  # the old run's evaluations go with it
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run"]


def test_overwrite_refuses_a_run_folder_holding_foreign_files(tmp_path):
    target = RunDirectory(tmp_path / "run")
    _complete_run(target.path)
    (target.path / "notes.txt").write_text("mine")
    with pytest.raises(RunExistsError, match=r"notes\.txt"):
        begin_fit(target, overwrite=True, resume=False)


def test_begin_fit_refuses_a_non_empty_folder_without_a_run(tmp_path):
    (tmp_path / "x.txt").write_text("data")
    with pytest.raises(RunExistsError, match="not empty"):
        begin_fit(RunDirectory(tmp_path), overwrite=True, resume=False)


def test_an_interrupted_fit_blocks_a_new_one_unless_resumed_or_overwritten(tmp_path):
    target = RunDirectory(tmp_path / "run")
    work = begin_fit(target, overwrite=False, resume=False)
    atomic_write_json(work.file(work.CONFIG), {"config": {}})
    with pytest.raises(RunExistsError, match="--resume"):
        begin_fit(target, overwrite=False, resume=False)
    assert resumable(target) == work
    assert begin_fit(target, overwrite=False, resume=True) == work
    fresh = begin_fit(target, overwrite=True, resume=False)
    assert fresh == work
    assert not fresh.is_run


def test_resume_without_a_run_is_an_error(tmp_path):
    with pytest.raises(CheckpointError, match="No run to resume"):
        begin_fit(RunDirectory(tmp_path / "run"), overwrite=False, resume=True)
    _complete_run(tmp_path / "done")
    with pytest.raises(CheckpointError, match="already complete"):
        begin_fit(RunDirectory(tmp_path / "done"), overwrite=False, resume=True)


def test_an_unfinished_run_of_the_older_layout_resumes_in_the_staging_folder(tmp_path):
    target = RunDirectory(tmp_path / "run")
    target.path.mkdir()
    atomic_write_json(target.file(target.CONFIG), {"config": {}})
    work = begin_fit(target, overwrite=False, resume=True)
    assert work.is_run
    assert not target.path.exists()


def test_read_json_reports_deep_nesting_and_permissions_in_one_line(tmp_path):
    run = RunDirectory(tmp_path)
    run.file(run.CONFIG).write_text("[" * 100_000 + "]" * 100_000)
    with pytest.raises(CheckpointError, match="nested too deep"):
        run.read_json(run.CONFIG)


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
