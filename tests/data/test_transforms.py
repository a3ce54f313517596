"""Standardisation in float64: huge features keep their information or are refused, never zeroed."""

import numpy as np
import pytest

from probfusion.config import DataConfig
from probfusion.data import load_dataset
from probfusion.data.transforms import Standardizer
from probfusion.errors import InputDataError


@pytest.mark.parametrize(
    "features",
    [
        np.random.default_rng(0).normal(size=(40, 3)) * 1e30,  # the float32 square overflows at ~1e19
        np.random.default_rng(0).integers(2**62, 2**64 - 1, size=(40, 3), dtype=np.uint64),
    ],
)
def test_huge_features_standardise_to_unit_scale_not_to_zeros(features):
    views = {"a": features.astype(np.float32)}
    scaler = Standardizer.fit(views)
    z = scaler.transform(views)["a"]
    assert np.isfinite(scaler.std["a"]).all()
    assert np.isfinite(z).all()
    np.testing.assert_allclose(z.std(axis=0), 1.0, rtol=1e-3)


def test_values_beyond_float32_are_refused_naming_the_modality(tmp_path):
    path = tmp_path / "big.npz"
    rng = np.random.default_rng(0)
    np.savez(path, x_a=rng.normal(size=(30, 2)), x_big=rng.normal(size=(30, 2)) * 1e300, y=np.arange(30) % 2)
    with pytest.raises(InputDataError, match=r"'big'.*float32 range.*rescale") as info:
        load_dataset(DataConfig(name=str(path)))
    assert "\n" not in str(info.value)


def test_data_that_standardises_beyond_float32_is_refused():
    train = {"a": np.linspace(0.0, 1e-3, 20, dtype=np.float32)[:, None]}
    scaler = Standardizer.fit(train)
    with pytest.raises(InputDataError, match=r"'a' in the test part.*float32 range"):
        scaler.transform({"a": np.array([[3e38]], dtype=np.float32)}, source="the test part")


def test_statistics_that_overflow_even_in_float64_are_refused():
    with pytest.raises(InputDataError, match=r"'a'.*overflows.*rescale"):
        Standardizer.fit({"a": np.array([[1e308], [-1e308], [1e308]])})
