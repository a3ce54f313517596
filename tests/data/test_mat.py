from pathlib import Path

import numpy as np
import pytest
import scipy.io
import scipy.sparse

from probfusion.config import DataConfig
from probfusion.data import load_dataset
from probfusion.data.mat import load_mat, read_mat
from probfusion.errors import InputDataError

SHARED = Path(__file__).resolve().parents[2] / ".." / "shared" / "data"
N = 30


def _views(seed=0):
    rng = np.random.default_rng(seed)
    return [rng.normal(size=(N, 4)), rng.normal(size=(N, 7)), rng.integers(0, 5, size=(N, 2)).astype(np.uint16)]


def _cell(arrays, shape=None):
    cell = np.empty((1, len(arrays)) if shape is None else shape, dtype=object)
    for i, array in enumerate(arrays):
        cell.flat[i] = array
    return cell


def _labels():
    return (np.arange(N) % 3 + 1).astype(np.float64)[:, None]  # MATLAB: a double column, classes from 1


def _save(tmp_path, name="d.mat", **variables):
    path = tmp_path / name
    scipy.io.savemat(path, variables)
    return path


def test_cell_of_views_with_one_based_labels(tmp_path):
    views = _views()
    data = load_mat(_save(tmp_path, X=_cell(views), Y=_labels()))
    assert data.modality_names == ("v0", "v1", "v2")
    assert data.dims == {"v0": 4, "v1": 7, "v2": 2}
    np.testing.assert_allclose(data.views["v1"], views[1].astype(np.float32))
    assert data.views["v2"].dtype == np.float32
    assert data.labels.tolist() == (np.arange(N) % 3).tolist()  # 1..3 renumbered 0..2: no empty class 0
    assert data.num_classes == 3
    assert data.split is None
    assert "'Y' 1..3 as 0..2" in data.description
    assert data.licence


@pytest.mark.parametrize("shape", [(1, 3), (3, 1)])
def test_row_and_column_cells(tmp_path, shape):
    views = _views()
    data = load_mat(_save(tmp_path, fea=_cell(views, shape), gt=_labels()))
    assert data.dims == {"v0": 4, "v1": 7, "v2": 2}


def test_views_stored_d_by_n_are_transposed_and_reported(tmp_path):
    views = _views()
    path = _save(tmp_path, X=_cell([views[0].T, views[1], views[2].T]), Y=_labels())
    contents = read_mat(path)
    assert contents.orientation == {"v0": "d_m x n", "v1": "n x d_m", "v2": "d_m x n"}
    data = load_mat(path)
    assert data.dims == {"v0": 4, "v1": 7, "v2": 2}
    np.testing.assert_allclose(data.views["v0"], views[0].astype(np.float32))
    assert "transposed v0, v2" in data.description


def test_square_view_is_read_as_rows_of_samples(tmp_path):
    square = np.arange(N * N, dtype=float).reshape(N, N)
    contents = read_mat(_save(tmp_path, X=_cell([square, _views()[0]]), Y=_labels()))
    assert contents.orientation["v0"] == "square"
    np.testing.assert_array_equal(contents.views["v0"], square)


def test_sparse_views_are_densified(tmp_path):
    dense = np.where(_views()[1] > 0.5, _views()[1], 0.0)
    data = load_mat(_save(tmp_path, X=_cell([scipy.sparse.csr_matrix(dense), _views()[0]]), Y=_labels()))
    assert data.views["v0"].dtype == np.float32
    np.testing.assert_allclose(data.views["v0"], dense.astype(np.float32))


@pytest.mark.parametrize("key", ["Y", "y", "gt", "truth", "label", "labels", "gnd"])
def test_labels_under_each_usual_key(tmp_path, key):
    data = load_mat(_save(tmp_path, X=_cell(_views()), **{key: _labels()}))
    assert data.num_classes == 3


@pytest.mark.parametrize(
    "labels",
    [_labels().T, _labels().astype(np.uint8), (_labels() - 1).astype(np.int32), scipy.sparse.csc_matrix(_labels())],
)
def test_row_vector_and_integer_labels(tmp_path, labels):
    data = load_mat(_save(tmp_path, X=_cell(_views()), Y=labels))
    assert data.labels.tolist() == (np.arange(N) % 3).tolist()


def test_view_names_from_the_file(tmp_path):
    names = np.array(["image", "text", "audio"], dtype=object)  # a MATLAB cellstr
    path = _save(tmp_path, X=_cell(_views()), Y=_labels(), view_names=names, folds=np.ones((N, 1)))
    data = load_dataset(DataConfig(name=str(path), modalities=("text", "image")))
    assert data.dims == {"text": 7, "image": 4}
    assert read_mat(path).ignored == ("folds",)


def test_separate_numbered_variables(tmp_path):
    views = _views()
    data = load_mat(_save(tmp_path, x2=views[1], x1=views[0].T, x10=views[2], Y=_labels()))
    assert data.dims == {"x1": 4, "x2": 7, "x10": 2}  # ordered by number, named as in the file


def test_shared_benchmark_files_through_the_registry_path():
    if not SHARED.is_dir():
        pytest.skip(f"the shared real data sets are not at {SHARED}")
    expected = {
        "scene15/Scene-15.mat": (4485, [20, 59, 40], 15),
        "cub/cub_googlenet_doc2vec_c10.mat": (600, [1024, 300], 10),
        "msrc_v1/MSRC_v1.mat": (210, [24, 576, 512, 256, 254], 7),
    }
    for name, (n, dims, classes) in expected.items():
        data = load_dataset(DataConfig(name=str(SHARED / name)))
        assert data.num_samples == n, name
        assert list(data.dims.values()) == dims, name
        assert data.num_classes == classes, name
        assert np.bincount(data.labels).min() > 0, name  # every class present: labels renumbered from 1


def _truncated(tmp_path):
    path = _save(tmp_path, X=_cell(_views()), Y=_labels())
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    return path


def _v73(tmp_path):
    path = tmp_path / "d.mat"  # the 128-byte header of an HDF5-based MAT file: version 0x0200
    path.write_bytes(b"MATLAB 7.3 MAT-file".ljust(116) + bytes(8) + b"\x00\x02IM" + bytes(512))
    return path


def _write(content):
    def write(tmp_path):
        path = tmp_path / "d.mat"
        path.write_bytes(content)
        return path

    return write


def _variables(**variables):
    return lambda tmp_path: _save(tmp_path, **variables)


@pytest.mark.parametrize(
    ("make", "fragments"),
    [
        (_write(b""), ["not a readable MAT file", "-v7"]),
        (_write(b"this is not a MATLAB file at all, only words" * 4), ["not a readable MAT file"]),
        (_truncated, ["not a readable MAT file", "truncated"]),
        (_v73, ["v7.3 (HDF5)", "-v7", ".npz"]),
        (_variables(X=_cell(_views())), ["no labels", "'X'", "gt"]),
        (_variables(Y=_labels(), stuff=np.ones((N, 2))), ["no views", "'Y'", "'stuff'", "fea"]),
        (
            _variables(X=_cell([np.ones((N + 1, 4)), np.ones((N, 2))]), Y=_labels()),
            ["(31, 4)", "30 labels", "(d_m, n)"],
        ),
        (_variables(X=_cell(_views()), Y=_labels() + 0.5), ["not integer-valued", "1.5", "'Y'"]),
        (_variables(X=_cell(_views()), Y=np.ones((N, 1))), ["1 class(es)", "at least two"]),
        (_variables(X=_cell([np.array(["ab"] * N), np.ones((N, 2))]), Y=_labels()), ["'v0'", "not numbers"]),
        (_variables(X=_cell([_cell([np.ones((N, 2))]), np.ones((N, 2))]), Y=_labels()), ["cell array", "not numbers"]),
        (_variables(X=_cell(_views(), (3, 1)).reshape(1, 3, 1), Y=_labels()), ["expected (1, M) or (M, 1)"]),
        (_variables(X=_cell(_views()), Y=np.ones((N, 2))), ["'Y'", "(30, 2)", "vector"]),
        (_variables(X=_cell(_views()), Y=_labels(), names=np.array(["a", "a", "b"], dtype=object)), ["distinct"]),
    ],
)
def test_bad_mat_is_a_one_line_input_data_error(tmp_path, make, fragments):
    path = make(tmp_path)
    with pytest.raises(InputDataError) as info:
        load_dataset(DataConfig(name=str(path)))
    message = str(info.value)
    assert "\n" not in message
    assert str(path) in message or "View" in message or "Labels" in message
    for fragment in fragments:
        assert fragment in message, message


def test_unreadable_file_is_an_input_data_error(tmp_path, monkeypatch):
    path = _save(tmp_path, X=_cell(_views()), Y=_labels())

    def refuse(self, *args, **kwargs):
        raise PermissionError(13, "Permission denied", str(self))

    monkeypatch.setattr(Path, "open", refuse)  # chmod does not stop root, which runs some CI
    with pytest.raises(InputDataError, match="permission denied"):
        load_mat(path)


def test_nan_in_a_view_is_refused_by_validation(tmp_path):
    views = _views()
    views[0][3, 1] = np.nan
    with pytest.raises(InputDataError, match="NaN"):
        load_mat(_save(tmp_path, X=_cell(views), Y=_labels()))
