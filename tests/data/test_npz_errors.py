"""An unreadable archive is reported as such, not as a missing file and not with a traceback."""

import pathlib

import numpy as np
import pytest

from probfusion.config import DataConfig
from probfusion.data import load_dataset
from probfusion.errors import InputDataError


def _deny(monkeypatch, target, error):
    original = pathlib.Path.open

    def guarded(self, *args, **kwargs):
        if self == target:
            raise error
        return original(self, *args, **kwargs)

    monkeypatch.setattr(pathlib.Path, "open", guarded)  # chmod 000 does not stop root, who runs CI here


@pytest.mark.parametrize(
    ("error", "fragment"),
    [
        (PermissionError(13, "Permission denied"), "permission denied"),
        (OSError(5, "Input/output error"), "Input/output error"),
    ],
)
def test_an_unreadable_npz_is_a_one_line_error_that_says_why(tmp_path, monkeypatch, error, fragment):
    path = tmp_path / "d.npz"
    np.savez(path, x_a=np.zeros((10, 2)), y=np.arange(10) % 2)
    _deny(monkeypatch, path, error)
    with pytest.raises(InputDataError, match=fragment) as info:
        load_dataset(DataConfig(name=str(path)))
    assert "No file" not in str(info.value)
    assert "\n" not in str(info.value)
