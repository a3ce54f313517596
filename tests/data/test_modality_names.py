"""Modality names the CLI and the weights file can carry: no clash with --modality words, commas or NFC twins."""

import unicodedata

import numpy as np
import pytest

from probfusion.config import DataConfig
from probfusion.data import load_dataset
from probfusion.errors import InputDataError

NFC = unicodedata.normalize("NFC", "café")
NFD = unicodedata.normalize("NFD", "café")


def _write(path, *names):
    rng = np.random.default_rng(0)
    arrays = {f"x_{name}": rng.normal(size=(20, 2)) for name in names}
    np.savez(path, **arrays, y=np.arange(20) % 2)
    return str(path)


@pytest.mark.parametrize(
    ("names", "fragment"),
    [
        (("a", "all"), "reserved word of --modality"),
        (("each", "b"), "reserved word of --modality"),
        (("a", "ALL"), "reserved word"),
        (("a,b", "c"), "comma"),
        (("a.b", "c"), "dot"),
        (("a", " b"), "white space"),
        ((NFC, NFD), "Unicode NFC"),
    ],
)
def test_names_that_clash_are_refused_at_load(tmp_path, names, fragment):
    with pytest.raises(InputDataError, match=fragment) as info:
        load_dataset(DataConfig(name=_write(tmp_path / "d.npz", *names)))
    assert "\n" not in str(info.value)


def test_names_are_nfc_and_select_matches_either_form(tmp_path):
    path = _write(tmp_path / "d.npz", NFD, "b")
    assert load_dataset(DataConfig(name=path)).modality_names == (NFC, "b")
    assert load_dataset(DataConfig(name=path, modalities=("b", NFD))).modality_names == ("b", NFC)
