from pathlib import Path

import numpy as np
import pytest

from probfusion.config import DataConfig
from probfusion.data.fingerprint import dataset_fingerprint
from probfusion.data.folder import FolderDataset, MappedArray, load_folder
from probfusion.data.npz import load_npz
from probfusion.data.registry import load_dataset
from probfusion.errors import InputDataError


def write_folder(folder: Path, **arrays: np.ndarray) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for key, value in arrays.items():
        np.save(folder / f"{key}.npy", value)
    return folder


def arrays(n: int = 50, seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {
        "x_audio": rng.normal(size=(n, 3)),  # float64: read as float32, as an .npz is
        "x_image": rng.normal(size=(n, 2)).astype(np.float32),
        "y": rng.choice(np.array(["cat", "dog", "eel"]), n),
        "split": np.arange(n) % 3,
    }


def test_a_folder_reads_as_the_same_npz_does(tmp_path):
    data = arrays()
    np.savez(tmp_path / "d.npz", **data)
    folder = load_dataset(DataConfig(name=str(write_folder(tmp_path / "d", **data))))
    npz = load_npz(tmp_path / "d.npz")
    assert isinstance(folder, FolderDataset)
    assert folder.modality_names == ("audio", "image") == npz.modality_names  # sorted file names
    assert folder.dims == npz.dims
    assert folder.classes == npz.classes == ("cat", "dog", "eel")
    np.testing.assert_array_equal(folder.labels, npz.labels)
    np.testing.assert_array_equal(folder.split, npz.split)
    assert dataset_fingerprint(folder) == dataset_fingerprint(npz)  # one fingerprint for the same rows
    rows = np.array([40, 3, 17, 3])
    for m in npz.modality_names:
        np.testing.assert_array_equal(folder.subset(rows).views[m], npz.subset(rows).views[m])
        assert folder.subset(rows).views[m].dtype == np.float32


def test_select_reorders_and_changes_the_fingerprint(tmp_path):
    folder = load_folder(write_folder(tmp_path / "d", **arrays()))
    picked = folder.select(["image", "audio"])
    assert picked.modality_names == ("image", "audio")
    assert dataset_fingerprint(picked) != dataset_fingerprint(folder)
    with pytest.raises(InputDataError, match=r"no modality 'text'.*'audio', 'image'"):
        folder.select(["text"])


def test_rows_come_back_in_the_order_asked_and_chunks_cover_every_row(tmp_path, monkeypatch):
    monkeypatch.setattr("probfusion.data.folder.CHUNK_BYTES", 64)  # 2-row chunks of a (n, 3) float64 array
    x = np.arange(30.0).reshape(10, 3)
    np.save(tmp_path / "x.npy", x)
    mapped = MappedArray(tmp_path / "x.npy")
    np.testing.assert_array_equal(mapped.rows(np.array([7, 2, 9, 2])), x[[7, 2, 9, 2]])
    chunks = list(mapped.chunks(np.array([1, 4, 5, 8, 9])))
    assert [len(c) for c in chunks] == [2, 2, 1]
    np.testing.assert_array_equal(np.concatenate(chunks), x[[1, 4, 5, 8, 9]])


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"x_audio": np.where(np.arange(150).reshape(50, 3) == 64, np.nan, 1.0)}, r"NaN in row 21 of x_audio\.npy"),
        ({"x_audio": np.full((50, 3), np.inf)}, r"inf in row 0 of x_audio\.npy"),
        ({"x_audio": np.full((50, 3), 1e300)}, r"beyond the float32 range"),
        ({"x_audio": np.ones((49, 3))}, "'image' has 50 .*paired row by row"),
        ({"x_audio": np.ones(50)}, r"shape \(50,\); expected a non-empty 2-D"),
        ({"x_audio": np.array(["a"] * 50).reshape(50, 1)}, "dtype <U1; expected numbers"),
        ({"y": np.zeros(49)}, "length 49 but the modalities have 50 rows"),
        ({"split": np.full(50, 3)}, r"split\.npy .*values \[3\]"),
        ({"group": np.ones(50)}, r"group\.npy .*dtype float64"),
        ({"labels": np.zeros(50)}, r"unexpected file\(s\) \['labels\.npy'\]"),
        ({"x_all": np.ones((50, 1))}, "reserved word"),
    ],
)
def test_bad_folders_are_refused_naming_the_file_and_the_fix(tmp_path, change, message):
    with pytest.raises(InputDataError, match=message):
        load_folder(write_folder(tmp_path / "d", **{**arrays(), **change}))


def test_files_that_cannot_be_mapped_are_refused(tmp_path):
    folder = write_folder(tmp_path / "d", **arrays())
    np.save(folder / "x_audio.npy", np.asfortranarray(np.ones((50, 3))))
    with pytest.raises(InputDataError, match=r"Fortran .*np.ascontiguousarray"):
        load_folder(folder)
    np.save(folder / "x_audio.npy", np.ones((50, 3)))
    (folder / "x_audio.npy").write_bytes((folder / "x_audio.npy").read_bytes()[:-8])
    with pytest.raises(InputDataError, match="truncated"):
        load_folder(folder)
    np.save(folder / "x_audio.npy", np.array([[object()]] * 50), allow_pickle=True)
    with pytest.raises(InputDataError, match="Python objects"):
        load_folder(folder)
    (folder / "x_audio.npy").write_bytes(b"not a numpy file")
    with pytest.raises(InputDataError, match=r"not a readable \.npy file"):
        load_folder(folder)
    (folder / "x_audio.npy").unlink()
    (folder / "y.npy").unlink()
    with pytest.raises(InputDataError, match=r"no labels; save them as y\.npy"):
        load_folder(folder)
