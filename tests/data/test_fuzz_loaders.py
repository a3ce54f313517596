"""Fuzz the path `fit` takes through the data: load_dataset -> split_dataset -> Standardizer.fit -> TensorData.

Random archives (dtypes from bool to uint64, float16, complex, strings and pickled objects; 0-d to 3-d, empty and
unpaired shapes; NaN, inf and huge values; labels negative, fractional, huge, strings or of one class; split
arrays with bad values or missing parts; truncated and corrupt files) may end in only two ways: finite tensors
of the right shapes, or a :class:`ProbfusionError` with a one-line message. Any other exception, and any warning
(warnings are errors in the test suite), is a failure. Derandomised, so CI sees the same examples every run.
"""

from __future__ import annotations

import io
import unicodedata
import zipfile

import numpy as np
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from probfusion.api import fit
from probfusion.config import BayesConfig, DataConfig, FusionConfig, JWAEConfig, RunConfig, TrainConfig
from probfusion.data import load_dataset
from probfusion.data.splits import split_dataset
from probfusion.data.transforms import Standardizer
from probfusion.errors import ProbfusionError
from probfusion.inference.data import TensorData

SETTINGS = {
    "deadline": None,
    "derandomize": True,
    "database": None,
    "suppress_health_check": [HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.function_scoped_fixture],
}

FEATURE_DTYPES = ["bool", "int8", "int64", "uint64", "float16", "float32", "float64", "complex64", "<U2"]
LABEL_DTYPES = ["bool", "int8", "int64", "uint64", "float32", "float64", "<U3"]
NAMES = ["a", "b", "c", "all", "each", "x,y", "p.q", " s", unicodedata.normalize("NFD", "café"), "café", ""]
SPLITS = ["auto", "random", "predefined", "speaker"]


def _elements(dtype: np.dtype, *, huge: bool):
    """Any value of ``dtype`` (NaN, inf, the extremes), or, for floats, moderate finite ones."""
    if dtype.kind == "f" and not huge:
        return st.floats(-1e3, 1e3, width=dtype.itemsize * 8)
    return hnp.from_dtype(dtype)


def _rarely(draw, odds: int) -> bool:
    """True about once in ``odds`` draws (an interior value: Hypothesis favours the ends of a range)."""
    return draw(st.integers(0, odds)) == odds // 2


@st.composite
def _features(draw, n: int) -> np.ndarray:
    """Features of ``n`` rows: usually a plain 2-D float array, often another dtype, shape or extreme values."""
    dtype = np.dtype(draw(st.sampled_from(FEATURE_DTYPES)) if _rarely(draw, 2) else "float64")
    width = draw(st.integers(1, 3))
    if _rarely(draw, 6):
        shape = draw(st.sampled_from([(), (n,), (n, 2, 2), (max(n - 1, 0), width), (0, width), (n, 0)]))
    else:
        shape = (n, width)
    return draw(hnp.arrays(dtype, shape, elements=_elements(dtype, huge=_rarely(draw, 4))))


@st.composite
def _labels(draw, n: int) -> np.ndarray:
    """Labels of ``n`` rows from a few odd class values (negative, huge, strings, fractional, one class)."""
    dtype = np.dtype(draw(st.sampled_from(LABEL_DTYPES)))
    pool = draw(st.lists(hnp.from_dtype(dtype), min_size=1 if _rarely(draw, 6) else 2, max_size=4, unique=True))
    codes = draw(st.permutations([k % len(pool) for k in range(n)]))
    labels = np.array([pool[k] for k in codes], dtype=dtype)
    if _rarely(draw, 8):
        return draw(st.sampled_from([labels[:-1], labels.reshape(-1, 1), np.array(pool[0], dtype=dtype)]))
    return labels


@st.composite
def archives(draw) -> dict[str, np.ndarray]:
    """An archive in the documented layout, perturbed here and there."""
    n = draw(st.sampled_from([0, 1, 2, 3, 4, 5, 6]) if _rarely(draw, 4) else st.integers(8, 30))
    arrays: dict[str, np.ndarray] = {}
    pool = NAMES if _rarely(draw, 4) else ["a", "b", "c"]
    names = draw(st.lists(st.sampled_from(pool), min_size=1, max_size=3, unique=True))
    for name in names:
        arrays[f"x_{name}"] = draw(_features(n))
    if not _rarely(draw, 15):
        arrays["y"] = draw(_labels(n))
    if _rarely(draw, 2):
        values = draw(st.sampled_from([[0, 1, 2], [0, 1, 2], [0, 1], [0, 2], [1, 2], [0, 1, 2, 3], [-1, 0, 1, 2]]))
        split = np.array(draw(st.lists(st.sampled_from(values), min_size=n, max_size=n)), dtype=np.int64)
        arrays["split"] = split.astype(draw(st.sampled_from(["int64"] * 5 + ["uint8", "float64", "<U1", "bool"])))
    if _rarely(draw, 3):
        speakers = np.array(draw(st.lists(st.sampled_from(["ann", "bob", "cy"]), min_size=n, max_size=n)), dtype="<U3")
        arrays["speaker"] = np.arange(n, dtype=np.float64) if _rarely(draw, 6) else speakers
    if _rarely(draw, 4):
        groups = np.array(draw(st.lists(st.integers(0, 5), min_size=n, max_size=n)), dtype=np.int64)
        arrays["group"] = groups.astype(draw(st.sampled_from(["int64", "uint64", "float32"])))
    if _rarely(draw, 30):
        arrays["extra"] = np.zeros(3)
    return arrays


def _write(path, arrays: dict[str, np.ndarray], mode: str) -> None:
    """Write ``arrays`` as an .npz, or a damaged one: truncated, random bytes, or with a pickled object array."""
    buffer = io.BytesIO()
    np.savez_compressed(buffer, **arrays) if mode == "compressed" else np.savez(buffer, **arrays)
    data = buffer.getvalue()
    if mode == "truncated":
        data = data[: max(len(data) // 2, 1)]
    elif mode == "garbage":
        data = b"PK\x03\x04" + bytes(range(256)) * 2
    elif mode == "object":  # np.savez refuses nothing; write the pickled member into the zip by hand
        member = io.BytesIO()
        np.save(member, np.array([{"a": 1}, None], dtype=object), allow_pickle=True)
        out = io.BytesIO()
        with zipfile.ZipFile(out, "w") as archive:
            for key, value in arrays.items():
                if key == "speaker":
                    continue
                one = io.BytesIO()
                np.save(one, value)
                archive.writestr(f"{key}.npy", one.getvalue())
            archive.writestr("speaker.npy", member.getvalue())
        data = out.getvalue()
    path.write_bytes(data)


def _assert_one_line(error: ProbfusionError) -> None:
    message = str(error)
    assert message.strip(), "an empty error message"
    assert "\n" not in message, message


def _run_fit_path(path, split: str) -> None:
    config = DataConfig(name=str(path), split=split)
    dataset = load_dataset(config)
    parts = split_dataset(dataset, config, seed=0)
    standardizer = Standardizer.fit(parts[0].views)
    assert sum(len(p.labels) for p in parts) == dataset.num_samples
    for part in parts:
        tensors = TensorData.from_dataset(part, standardizer, torch.device("cpu"))
        for name, view in tensors.views.items():
            assert view.dtype == torch.float32
            assert tuple(view.shape) == (len(part.labels), dataset.dims[name])
            assert bool(torch.isfinite(view).all()), name
        assert tensors.labels.dtype == torch.int64
        assert int(tensors.labels.min()) >= 0
        assert int(tensors.labels.max()) < int(dataset.num_classes)
    assert len(dataset.classes) == dataset.num_classes
    assert len(np.unique(parts[0].labels)) >= 2


@settings(max_examples=400, **SETTINGS)
@given(
    arrays=archives(),
    mode=st.integers(0, 12).map(
        lambda k: ["compressed", "truncated", "garbage", "object"][k - 4] if 4 <= k < 8 else "plain"
    ),
    split=st.sampled_from(SPLITS),
)
def test_the_loaders_give_finite_tensors_or_a_one_line_error(tmp_path_factory, arrays, mode, split):
    path = tmp_path_factory.mktemp("fuzz") / "data.npz"
    _write(path, arrays, mode)
    try:
        _run_fit_path(path, split)
    except ProbfusionError as error:
        _assert_one_line(error)


@st.composite
def fittable(draw) -> dict[str, np.ndarray]:
    """Paired 2-D features (extreme scales, ints, uint64) and odd labels: data that loads, to fit on."""
    n = draw(st.integers(8, 24))
    scale = draw(st.sampled_from([1.0, 1e-30, 1e30, 3e38]))
    rng = np.random.default_rng(draw(st.integers(0, 2**16)))
    arrays = {"x_a": (rng.normal(size=(n, 2)) * scale).astype(np.float64)}
    arrays["x_b"] = (
        rng.integers(0, 2**64 - 1, size=(n, 3), dtype=np.uint64) if draw(st.booleans()) else rng.normal(size=(n, 1))
    )
    pool = draw(st.sampled_from([[3, 7, 42], [-1, 1], ["cat", "dog"], [0, 10**12]]))
    arrays["y"] = np.array([pool[k % len(pool)] for k in range(n)])
    return arrays


@settings(max_examples=10, **SETTINGS)
@given(arrays=fittable(), model=st.sampled_from(["ard", "lmf", "tfn", "concat"]))
def test_fit_on_odd_data_ends_in_finite_metrics_or_a_one_line_error(tmp_path_factory, arrays, model):
    root = tmp_path_factory.mktemp("fuzzfit")
    np.savez(root / "d.npz", **arrays)
    config = RunConfig(
        data=DataConfig(name=str(root / "d.npz")),
        jwae=JWAEConfig(latent_dim=2, hidden_dim=4),
        fusion=FusionConfig(
            model="lmf" if model == "ard" else model,
            rank=2,
            fused_dim=4,
            rank_prior="ard" if model == "ard" else "none",
        ),
        train=TrainConfig(epochs=1, batch_size=8),
        bayes=BayesConfig(svi_steps=3, posterior_samples=4, batch_size=8),
        device="cpu",
    )
    try:
        run = fit(config, root / "run")
    except ProbfusionError as error:
        _assert_one_line(error)
        assert sorted(p.name for p in root.iterdir() if not p.name.endswith(".lock")) == ["d.npz"]  # no partial run
        return
    for part in ("train", "val", "test"):
        assert np.isfinite(run.metrics[part]["nll"])
    assert len(run.metrics["class_labels"]) == len(set(arrays["y"].tolist()))
