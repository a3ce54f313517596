import dataclasses

import numpy as np
import pytest

from probfusion.config import DataConfig, SyntheticConfig
from probfusion.data import DatasetInfo, list_datasets, load_dataset
from probfusion.errors import ConfigError, InputDataError, ProbfusionError


def test_list_datasets_describes_every_registered_dataset():
    infos = {info.name: info for info in list_datasets()}
    assert list(infos) == ["av-digits", "mfeat", "synthetic"]
    assert infos["av-digits"].modalities == {"image": 3, "audio": 8}
    assert infos["av-digits"].num_samples == 1797
    assert infos["av-digits"].splits == ("random", "speaker")
    assert infos["mfeat"].num_samples == 2000
    assert infos["mfeat"].num_classes == 10
    assert infos["synthetic"].modalities == {"m0": 8, "m1": 8}
    for info in infos.values():
        assert isinstance(info, DatasetInfo)
        assert info.description
        assert info.licence
        dataclasses.asdict(info)  # the CLI's --json output
    with pytest.raises(dataclasses.FrozenInstanceError):
        infos["mfeat"].name = "other"


def test_modalities_select_and_reorder():
    data = load_dataset(DataConfig(name="av-digits", modalities=("audio", "image")))
    assert data.modality_names == ("audio", "image")
    data = load_dataset(DataConfig(name="mfeat", modalities=("mor",)))
    assert data.dims == {"mor": 6}


def test_unknown_modality_is_an_error():
    with pytest.raises(InputDataError, match="smell"):
        load_dataset(DataConfig(name="av-digits", modalities=("image", "smell")))


def test_synthetic_uses_its_config_and_the_seed():
    config = DataConfig(name="synthetic", synthetic=SyntheticConfig(num_samples=64, num_modalities=3, dim=4))
    a, b = load_dataset(config, seed=1), load_dataset(config, seed=1)
    assert a.dims == {"m0": 4, "m1": 4, "m2": 4}
    assert a.num_samples == 64
    assert np.array_equal(a.views["m2"], b.views["m2"])
    assert not np.array_equal(a.views["m2"], load_dataset(config, seed=2).views["m2"])


def test_unknown_name_lists_the_registered_names():
    with pytest.raises(ConfigError) as info:
        load_dataset(DataConfig(name="no-such-data"))
    message = str(info.value)
    for fragment in ("no-such-data", "av-digits", "mfeat", "synthetic", ".npz", ".pkl"):
        assert fragment in message


@pytest.mark.parametrize("name", ["missing/file.npz", "nowhere.pkl", "also/missing.pickle"])
def test_missing_file_is_an_input_data_error(tmp_path, name):
    with pytest.raises(InputDataError, match="No file at"):
        load_dataset(DataConfig(name=str(tmp_path / name)))


def test_unsupported_extension_is_a_config_error(tmp_path):
    path = tmp_path / "data.csv"
    path.write_text("1,2,3\n")
    with pytest.raises(ConfigError, match=r"extension '\.csv'.*\.npz"):
        load_dataset(DataConfig(name=str(path)))


def test_directory_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match="directory"):
        load_dataset(DataConfig(name=str(tmp_path)))


def test_every_error_is_a_probfusion_error_and_a_value_error():
    for config in (DataConfig(name="nope"), DataConfig(name="x/y.npz")):
        with pytest.raises(ProbfusionError) as info:
            load_dataset(config)
        assert isinstance(info.value, ValueError)
