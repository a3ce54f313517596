"""Small data files for API and CLI tests."""

from __future__ import annotations

from pathlib import Path

import numpy as np


def write_interaction_npz(path: Path, *, n: int = 240, seed: int = 0, **overrides: np.ndarray) -> Path:
    """Two modalities whose label is the sign of a product of one feature of each: fusion is needed."""
    rng = np.random.default_rng(seed)
    a = rng.normal(size=(n, 4)).astype(np.float32)
    b = rng.normal(size=(n, 3)).astype(np.float32)
    y = (a[:, 0] * b[:, 0] > 0).astype(np.int64)
    arrays = {"x_a": a, "x_b": b, "y": y}
    arrays.update(overrides)
    np.savez(path, **arrays)
    return path
