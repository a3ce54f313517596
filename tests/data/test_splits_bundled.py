"""Random splits of the registered datasets: a partition of the rows, deterministic per seed."""

import numpy as np
import pytest

from probfusion.config import DataConfig
from probfusion.data import load_dataset, split_dataset, split_indices


@pytest.mark.parametrize("name", ["av-digits", "mfeat", "synthetic"])
def test_random_split_is_a_deterministic_partition(name):
    config = DataConfig(name=name)
    data = load_dataset(config, seed=0)
    first = split_indices(data, config, seed=3)
    again = split_indices(data, config, seed=3)
    other = split_indices(data, config, seed=4)
    parts = (first.train, first.val, first.test)
    everything = np.concatenate(parts)
    assert np.array_equal(np.sort(everything), np.arange(data.num_samples))
    assert all(p.size > 0 for p in parts)
    for a, b in zip(parts, (again.train, again.val, again.test), strict=True):
        assert np.array_equal(a, b)
    assert not np.array_equal(first.test, other.test)
    n = data.num_samples
    assert abs(first.test.size - config.test_fraction * n) <= 0.02 * n


def test_split_dataset_returns_matching_subsets():
    config = DataConfig(name="av-digits")
    data = load_dataset(config)
    train, val, test = split_dataset(data, config, seed=0)
    assert train.num_samples + val.num_samples + test.num_samples == data.num_samples
    assert train.modality_names == data.modality_names
    assert test.num_classes == 10
