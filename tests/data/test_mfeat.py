import numpy as np
import pytest

from probfusion.config import DataConfig
from probfusion.data import split_indices
from probfusion.data.mfeat import MFEAT_VIEWS, load_mfeat

DIMS = {"fou": 76, "fac": 216, "kar": 64, "pix": 240, "zer": 47, "mor": 6}
DUPLICATES = [(605, 774), (1148, 1172), (1237, 1271), (1265, 1272), (1448, 1521), (1892, 1999)]


@pytest.fixture(scope="module")
def data():
    return load_mfeat()


def test_shapes_and_dtypes(data):
    assert data.modality_names == MFEAT_VIEWS == tuple(DIMS)
    assert data.dims == DIMS
    assert all(x.dtype == np.float32 and x.shape[0] == 2000 for x in data.views.values())
    assert data.labels.dtype == np.int64
    np.testing.assert_array_equal(np.bincount(data.labels), np.full(10, 200))
    assert data.groups.dtype == np.int64


def test_groups_mark_exactly_the_six_duplicate_pairs(data):
    ids, counts = np.unique(data.groups, return_counts=True)
    pairs = sorted(tuple(np.flatnonzero(data.groups == g).tolist()) for g in ids[counts > 1])
    assert pairs == DUPLICATES
    assert counts.max() == 2
    for a, b in DUPLICATES:
        assert all(np.array_equal(x[a], x[b]) for x in data.views.values())


@pytest.mark.parametrize("seed", [0, 1, 2, 3, 4])
def test_duplicates_stay_on_one_side_of_random_splits(data, seed):
    parts = split_indices(data, DataConfig(name="mfeat"), seed=seed)
    side = np.empty(data.num_samples, dtype=int)
    for code, idx in enumerate((parts.train, parts.val, parts.test)):
        side[idx] = code
    for a, b in DUPLICATES:
        assert side[a] == side[b]
