"""read_tensors tells a missing weights file from an unreadable one and from a corrupt one."""

import pathlib

import pytest
import torch

from probfusion.errors import CheckpointError
from probfusion.runs.checkpoint import read_tensors, write_tensors


def test_missing_unreadable_and_corrupt_weights_are_told_apart(tmp_path, monkeypatch):
    path = tmp_path / "weights.safetensors"
    with pytest.raises(CheckpointError, match="No weights file"):
        read_tensors(path)
    write_tensors(path, {"w": torch.zeros(2)}, {"format": "x"})
    original = pathlib.Path.open

    def denied(self, *args, **kwargs):
        if self == path:
            raise PermissionError(13, "Permission denied")
        return original(self, *args, **kwargs)

    with monkeypatch.context() as patch:
        patch.setattr(pathlib.Path, "open", denied)  # root ignores chmod 000
        with pytest.raises(CheckpointError, match="permission denied") as info:
            read_tensors(path)
        assert "No weights file" not in str(info.value)
    path.write_bytes(b"\x00" * 20)
    with pytest.raises(CheckpointError, match="is corrupt"):
        read_tensors(path)


def test_metadata_that_is_not_json_is_corrupt(tmp_path):
    from safetensors.torch import save_file

    path = tmp_path / "weights.safetensors"
    save_file({"w": torch.zeros(2)}, str(path), metadata={"counters": "{not json"})
    with pytest.raises(CheckpointError, match="metadata is not valid JSON"):
        read_tensors(path)
    save_file({"w": torch.zeros(2)}, str(path), metadata={"counters": "[" * 100_000 + "]" * 100_000})
    with pytest.raises(CheckpointError, match="corrupt"):
        read_tensors(path)


@pytest.mark.parametrize(
    ("value", "fragment"),
    [
        (torch.tensor([[1.0, float("nan")]]), "NaN or inf"),
        (torch.tensor([[1.0, float("inf")]]), "NaN or inf"),
        (torch.tensor([[1.0, 2.0]], dtype=torch.float64), "dtype torch.float64"),
    ],
)
def test_non_finite_or_retyped_weights_are_refused(tmp_path, value, fragment):
    from probfusion.runs.checkpoint import load_module_state

    module = torch.nn.Linear(2, 1, bias=False)
    with pytest.raises(CheckpointError, match=fragment) as info:
        load_module_state(module, {"model.weight": value}, prefix="model.", source=tmp_path / "w")
    assert "re-run fit" in str(info.value)
