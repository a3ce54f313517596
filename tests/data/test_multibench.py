import pickle
from pathlib import Path

import numpy as np
import pytest

from probfusion.config import DataConfig
from probfusion.data import load_dataset, split_indices
from probfusion.data.multibench import load_multibench, scores_to_classes
from probfusion.errors import InputDataError, UntrustedFileError

SIZES = {"train": 12, "valid": 4, "test": 6}


def _part(rng, n, labels, *, steps=5):
    """One MultiBench part: sequences (n, T, d) front-padded with zero steps, labels (n, 1), string ids."""
    vision = rng.normal(size=(n, steps, 3))
    vision[:, :2] = 0.0  # two padding steps
    return {
        "vision": vision,
        "audio": rng.normal(size=(n, steps, 2)),
        "text": rng.normal(size=(n, steps, 4)),
        "labels": np.asarray(labels, dtype=float).reshape(n, 1),
        "id": np.array([f"clip{i}" for i in range(n)]),
    }


def _mosi_like(rng):
    scores = {
        "train": [-3.0, -2.6, -1.5, -0.4, 0.0, 0.2, 0.5, 1.49, 2.5, 2.51, 3.0, -0.6],
        "valid": [-1.2, 0.8, 2.2, -2.2],
        "test": [-0.1, 0.1, 1.0, -1.0, 2.9, -2.9],
    }
    return {name: _part(rng, SIZES[name], scores[name]) for name in SIZES}


def _write(path, obj):
    with Path(path).open("wb") as handle:
        pickle.dump(obj, handle)
    return path


@pytest.fixture
def mosi(tmp_path):
    rng = np.random.default_rng(0)
    data = _mosi_like(rng)
    return _write(tmp_path / "mosi.pkl", data), data


def test_mosi_binary_labels_split_and_time_average(mosi):
    path, raw = mosi
    data = load_dataset(DataConfig(name=str(path), label_scheme="binary"), trust_pickle=True)
    assert data.modality_names == ("vision", "audio", "text")
    assert data.dims == {"vision": 3, "audio": 2, "text": 4}
    assert data.num_samples == 22
    assert data.num_classes == 2
    scores = np.concatenate([raw[p]["labels"][:, 0] for p in ("train", "valid", "test")])
    np.testing.assert_array_equal(data.labels, (scores >= 0).astype(int))
    assert data.labels[4] == 1  # a score of exactly 0 is non-negative
    np.testing.assert_array_equal(data.split, np.repeat([0, 1, 2], [12, 4, 6]))
    # Padding steps (all zero) are left out of the time average.
    np.testing.assert_allclose(data.views["vision"][0], raw["train"]["vision"][0, 2:].mean(axis=0), rtol=1e-6)
    np.testing.assert_allclose(data.views["audio"][13], raw["valid"]["audio"][1].mean(axis=0), rtol=1e-6)
    parts = split_indices(data, DataConfig(name=str(path), split="predefined"), seed=0)
    assert (parts.train.size, parts.val.size, parts.test.size) == (12, 4, 6)


def test_mosi_seven_class_labels(mosi):
    path, _ = mosi
    data = load_multibench(path, trust_pickle=True, label_scheme="7class")
    assert data.num_classes == 7
    # train scores -3, -2.6, -1.5, -0.4, 0, 0.2, 0.5, 1.49, 2.5, 2.51, 3, -0.6 -> round half to even, + 3
    assert data.labels[:12].tolist() == [0, 0, 1, 3, 3, 3, 3, 4, 5, 6, 6, 2]
    assert data.labels[16:].tolist() == [3, 3, 4, 2, 6, 0]


def test_scores_outside_the_range_are_clipped():
    labels, c = scores_to_classes(np.array([-7.0, 4.2]), "7class")
    assert labels.tolist() == [0, 6]
    assert c == 7


def test_mustard_like_class_labels_are_kept(tmp_path):
    rng = np.random.default_rng(1)
    raw = {
        name: _part(rng, n, np.arange(n) % 2) | {"labels": (np.arange(n) % 2).reshape(n, 1, 1)}
        for name, n in SIZES.items()
    }
    for part in raw.values():
        part["text"] = part["text"][:, 0]  # already (n, d): kept as it is
        part["id"] = np.arange(len(part["labels"]))[:, None]  # numeric ids are metadata, not a modality
    path = _write(tmp_path / "sarcasm.pickle", raw)
    data = load_dataset(DataConfig(name=str(path), label_scheme="7class"), trust_pickle=True)
    assert data.num_classes == 2
    assert data.modality_names == ("vision", "audio", "text")
    np.testing.assert_array_equal(data.labels[:12], np.arange(12) % 2)
    np.testing.assert_allclose(data.views["text"][:12], raw["train"]["text"], rtol=1e-6)


class _Marker:
    """Unpickling this object creates a file: the test proves the loader never unpickles untrusted files."""

    def __init__(self, path):
        self.path = Path(path)

    def __reduce__(self):
        return (Path.write_text, (self.path, "unpickled"))


def test_untrusted_pickle_is_refused_without_unpickling(tmp_path):
    marker = tmp_path / "marker.txt"
    path = _write(tmp_path / "evil.pkl", {"train": _Marker(marker)})
    with pytest.raises(UntrustedFileError) as info:
        load_dataset(DataConfig(name=str(path)))
    message = str(info.value)
    assert "--trust-pickle" in message
    assert "arbitrary code" in message
    assert "\n" not in message
    assert isinstance(info.value, PermissionError)
    assert not marker.exists()
    # Control: with the flag the payload does run, so the assertion above is meaningful.
    with pytest.raises(InputDataError, match="affect layout"):
        load_multibench(path, trust_pickle=True)
    assert marker.exists()


def _corrupt_audio(value):
    def corrupt(raw):
        raw["test"]["audio"][2, 1, 0] = value

    return corrupt


def _drop_part(raw):
    del raw["valid"]


def _short_labels(raw):
    raw["train"]["labels"] = raw["train"]["labels"][:-1]


def _unequal_rows(raw):
    raw["valid"]["text"] = raw["valid"]["text"][:-1]


def _missing_modality(raw):
    del raw["test"]["vision"]


def _bad_rank(raw):
    for part in raw.values():
        part["audio"] = part["audio"][..., None]


def _no_labels(raw):
    del raw["test"]["labels"]


@pytest.mark.parametrize(
    ("corrupt", "fragments"),
    [
        (_corrupt_audio(-np.inf), ["'audio'", "part 'test'", "inf", "row 2"]),
        (_corrupt_audio(np.nan), ["'audio'", "NaN"]),
        (_drop_part, ["affect layout", "valid"]),
        (_short_labels, ["Labels", "part 'train'", "12 rows"]),
        (_unequal_rows, ["paired row by row"]),
        (_missing_modality, ["part 'test'", "same modalities"]),
        (_bad_rank, ["'audio'", "(n, T, d_m)"]),
        (_no_labels, ["no 'labels'"]),
    ],
)
def test_bad_multibench_files_are_input_data_errors(tmp_path, corrupt, fragments):
    raw = _mosi_like(np.random.default_rng(2))
    corrupt(raw)
    path = _write(tmp_path / "bad.pkl", raw)
    with pytest.raises(InputDataError) as info:
        load_dataset(DataConfig(name=str(path)), trust_pickle=True)
    message = str(info.value)
    assert "\n" not in message
    for fragment in fragments:
        assert fragment in message


@pytest.mark.parametrize("content", [b"", b"not a pickle at all", pickle.dumps({"train": 1})[:-3]])
def test_corrupt_pickle_is_an_input_data_error(tmp_path, content):
    path = tmp_path / "corrupt.pkl"
    path.write_bytes(content)
    with pytest.raises(InputDataError, match="not a readable pickle"):
        load_dataset(DataConfig(name=str(path)), trust_pickle=True)
