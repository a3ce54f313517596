import numpy as np
import pytest

from probfusion.data.folder import load_folder
from probfusion.data.npz import load_npz
from probfusion.data.streaming import RunningMoments, check_standardised_range, fit_standardizer
from probfusion.data.transforms import Standardizer
from probfusion.errors import InputDataError
from tests.data.test_folder import write_folder


@pytest.mark.parametrize("offset", [0.0, 1e6])
def test_running_moments_equal_the_two_pass_ones_to_1e10(offset):
    x = np.random.default_rng(0).normal(size=(1000, 4)) * [1.0, 1e-3, 10.0, 1.0] + offset
    moments = RunningMoments.of(np.array_split(x, [1, 7, 300, 301, 999]))
    assert moments.count == 1000
    np.testing.assert_allclose(moments.mean, x.mean(axis=0), rtol=1e-10, atol=0)
    np.testing.assert_allclose(moments.std, x.std(axis=0), rtol=1e-10, atol=0)


def test_the_streamed_standardizer_is_the_in_memory_one(tmp_path, monkeypatch):
    monkeypatch.setattr("probfusion.data.folder.CHUNK_BYTES", 8 * 3 * 7)  # 7-row chunks: many merges
    rng = np.random.default_rng(1)
    data = {"x_a": rng.normal(5.0, 3.0, size=(200, 3)), "x_b": rng.integers(0, 9, (200, 2)), "y": np.arange(200) % 2}
    data["x_a"][:, 2] = 4.0  # a constant feature: centred, std 1
    np.savez(tmp_path / "d.npz", **data)
    train = np.sort(rng.choice(200, 150, replace=False))
    streamed = fit_standardizer(load_folder(write_folder(tmp_path / "d", **data)).subset(train))
    memory = Standardizer.fit(load_npz(tmp_path / "d.npz").subset(train).views)
    for m in ("a", "b"):
        np.testing.assert_array_equal(streamed.mean[m], memory.mean[m])
        np.testing.assert_array_equal(streamed.std[m], memory.std[m])
    assert streamed.std["a"][2] == 1.0


def test_overflowing_moments_are_refused():
    with pytest.raises(InputDataError, match="'a' has features whose mean or standard deviation overflows"):
        Standardizer.from_moments({"a": (np.array([np.inf]), np.array([1.0]), 3e38)})


def test_standardised_values_beyond_float32_are_refused_without_a_pass(tmp_path):
    x = np.zeros((20, 1))
    x[-1] = 3e38  # test rows far outside a constant training feature
    folder = load_folder(write_folder(tmp_path / "d", x_a=x, y=np.arange(20) % 2))
    train = folder.subset(np.arange(10))
    standardizer = Standardizer(mean={"a": np.array([-3e38], np.float32)}, std={"a": np.array([1.0], np.float32)})
    with pytest.raises(InputDataError, match=r"'a' in dataset .* beyond the float32 range"):
        check_standardised_range(train, standardizer)
    check_standardised_range(train, fit_standardizer(train))  # the data's own statistics are fine
