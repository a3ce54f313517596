import numpy as np
import pytest

from probfusion.config import DataConfig
from probfusion.data import load_dataset, split_indices
from probfusion.data.npz import load_npz
from probfusion.errors import InputDataError


def _arrays(n=60, seed=0):
    rng = np.random.default_rng(seed)
    return {
        "x_text": rng.normal(size=(n, 5)),
        "x_image": rng.normal(size=(n, 3)).astype(np.float32),
        "y": np.arange(n) % 3,
    }


def test_round_trip_with_predefined_split_groups_and_speakers(tmp_path):
    arrays = _arrays()
    split = np.repeat(np.array([0, 1, 2]), 20)
    group = np.arange(60) // 2
    speaker = np.array(["ann", "bob", "cy"] * 20)
    path = tmp_path / "mine.npz"
    np.savez(path, **arrays, split=split, group=group, speaker=speaker)
    data = load_npz(path)
    assert data.modality_names == ("text", "image")  # file order
    np.testing.assert_allclose(data.views["text"], arrays["x_text"].astype(np.float32))
    np.testing.assert_array_equal(data.views["image"], arrays["x_image"])
    assert data.views["text"].dtype == np.float32
    np.testing.assert_array_equal(data.labels, arrays["y"])
    assert data.num_classes == 3
    np.testing.assert_array_equal(data.groups, group)
    assert data.speakers.tolist() == speaker.tolist()
    parts = split_indices(data, DataConfig(name=str(path), split="predefined"), seed=0)
    assert parts.train.tolist() == list(range(20))
    assert parts.val.tolist() == list(range(20, 40))
    assert parts.test.tolist() == list(range(40, 60))
    auto = split_indices(data, DataConfig(name=str(path)), seed=0)  # the default split honours the shipped one
    assert auto.test.tolist() == parts.test.tolist()
    np.savez(path, **arrays)  # no shipped split: auto falls back to a random split
    random = split_indices(load_npz(path), DataConfig(name=str(path)), seed=0)
    assert sorted(random.train.tolist() + random.val.tolist() + random.test.tolist()) == list(range(60))
    assert random.test.tolist() != list(range(40, 60))


def test_registry_loads_npz_and_reorders_modalities(tmp_path):
    path = tmp_path / "mine.npz"
    np.savez_compressed(path, **_arrays())
    data = load_dataset(DataConfig(name=str(path), modalities=("image", "text")))
    assert data.modality_names == ("image", "text")
    assert data.split is None


def _with(tmp_path, **changes):
    arrays = _arrays()
    for key, value in changes.items():
        if value is None:
            arrays.pop(key)
        else:
            arrays[key] = value
    path = tmp_path / "bad.npz"
    np.savez(path, **arrays)
    return path


def _nan():
    x = _arrays()["x_text"].copy()
    x[7, 2] = np.nan
    return x


def _inf():
    x = _arrays()["x_image"].copy()
    x[0, 0] = -np.inf
    return x


@pytest.mark.parametrize(
    ("changes", "fragments"),
    [
        ({"x_text": _nan()}, ["'text'", "NaN", "row 7", "impute or drop"]),
        ({"x_image": _inf()}, ["'image'", "inf", "row 0"]),
        ({"x_image": np.zeros((59, 3))}, ["59", "60", "paired row by row"]),
        ({"y": np.zeros(59, dtype=int)}, ["Labels", "length 59", "60 rows"]),
        ({"y": np.full(60, 0.5)}, ["whole numbers"]),
        ({"y": None}, ["no labels", "y"]),
        ({"x_text": None, "x_image": None}, ["no modality", "x_<modality>"]),
        ({"labels": np.zeros(60)}, ["unexpected", "labels"]),
        ({"split": np.full(60, 3)}, ["split values", "expected 0 (train)"]),
        ({"x_text": np.zeros((60, 2, 2))}, ["shape (60, 2, 2)", "2-D"]),
        ({"x_text": np.array(["a"] * 60)[:, None]}, ["dtype", "numbers"]),
    ],
)
def test_bad_npz_is_an_input_data_error(tmp_path, changes, fragments):
    path = _with(tmp_path, **changes)
    with pytest.raises(InputDataError) as info:
        load_dataset(DataConfig(name=str(path)))
    message = str(info.value)
    assert "\n" not in message
    for fragment in fragments:
        assert fragment in message


def test_object_arrays_are_refused_without_pickle(tmp_path):
    path = tmp_path / "objects.npz"
    np.savez(path, x_a=np.array([[1.0], [2.0]]), y=np.array([0, 1]), speaker=np.array([{"a": 1}, None]))
    with pytest.raises(InputDataError, match="object arrays"):
        load_npz(path)


@pytest.mark.parametrize("content", [b"", b"this is not a zip archive", b"PK\x03\x04broken"])
def test_corrupt_npz_is_an_input_data_error(tmp_path, content):
    path = tmp_path / "corrupt.npz"
    path.write_bytes(content)
    with pytest.raises(InputDataError, match=r"not a readable \.npz"):
        load_dataset(DataConfig(name=str(path)))


def test_truncated_npz_is_an_input_data_error(tmp_path):
    path = tmp_path / "truncated.npz"
    np.savez_compressed(path, **_arrays(n=2000))
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(InputDataError, match=r"not a readable \.npz"):
        load_dataset(DataConfig(name=str(path)))
