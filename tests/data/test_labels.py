"""Labels are any distinct values; the dataset encodes them as 0..c-1 and keeps the originals in ``classes``."""

import numpy as np
import pytest

from probfusion.data import validation
from probfusion.data.dataset import MultimodalDataset
from probfusion.errors import InputDataError


def _dataset(labels, n=None):
    labels = np.asarray(labels)
    n = labels.shape[0] if n is None else n
    return MultimodalDataset(name="t", views={"a": np.zeros((n, 2))}, labels=labels)


@pytest.mark.parametrize(
    ("labels", "classes"),
    [
        ([3, 7, 42, 42, 7, 3], (3, 7, 42)),  # was a 43-class model
        ([-1, 1, 1, -1], (-1, 1)),
        ([10**9, 0, 10**9, 0], (0, 10**9)),  # was a 10**9-wide bincount and head
        (np.array([2**64 - 1, 5, 5, 2**64 - 1], dtype=np.uint64), (5, 2**64 - 1)),
        (["dog", "cat", "dog", "cat"], ("cat", "dog")),
        (np.array([b"no", b"yes", b"yes", b"no"]), ("no", "yes")),
        ([2.0, 5.0, 5.0, 2.0], (2, 5)),
        ([True, False, True, False], (0, 1)),
    ],
)
def test_labels_are_encoded_as_indices_and_the_originals_kept(labels, classes):
    data = _dataset(labels)
    assert data.classes == classes
    assert data.num_classes == len(classes)
    assert data.labels.dtype == np.int64
    decoded = [data.classes[k] for k in data.labels]
    original = [v.decode() if isinstance(v, bytes) else v for v in np.asarray(labels).tolist()]
    assert decoded == [int(v) if isinstance(v, bool | float) else v for v in original]


def test_a_subset_keeps_the_classes_even_when_it_holds_one():
    data = _dataset([3, 7, 42, 42, 7, 3])
    part = data.subset(np.array([0, 5]))
    assert part.classes == (3, 7, 42)
    assert part.num_classes == 3
    assert part.labels.tolist() == [0, 0]


def test_known_num_classes_keeps_index_labels_with_absent_classes():
    data = MultimodalDataset(name="t", views={"a": np.zeros((20, 1))}, labels=np.arange(20) % 4, num_classes=10)
    assert data.classes == tuple(range(10))
    assert data.labels.tolist() == (np.arange(20) % 4).tolist()


@pytest.mark.parametrize(
    ("labels", "fragments"),
    [
        ([0.5, 1.0, 0.5, 1.0], ["whole numbers"]),
        ([1, 1, 1, 1], ["single class", "at least two"]),
        (np.arange(10), ["10 classes in 10 rows", "at least two rows"]),
    ],
)
def test_bad_labels_are_one_line_errors(labels, fragments):
    with pytest.raises(InputDataError) as info:
        _dataset(labels)
    assert "\n" not in str(info.value)
    for fragment in fragments:
        assert fragment in str(info.value)


def test_too_many_classes_are_refused(monkeypatch):
    monkeypatch.setattr(validation, "MAX_CLASSES", 3)
    with pytest.raises(InputDataError, match="4 classes; at most 3"):
        _dataset(np.arange(16) % 4)


def test_string_labels_load_from_an_npz_and_split(tmp_path):
    from probfusion.config import DataConfig
    from probfusion.data import load_dataset, split_indices

    path = tmp_path / "d.npz"
    np.savez(path, x_a=np.arange(40.0).reshape(20, 2), y=np.array(["yes", "no"] * 10))  # was a dtype error
    data = load_dataset(DataConfig(name=str(path)))
    assert data.classes == ("no", "yes")
    parts = split_indices(data, DataConfig(name=str(path)), seed=0)
    assert set(data.labels[parts.train].tolist()) == {0, 1}
