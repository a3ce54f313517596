"""Small data files for API and CLI tests."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from probfusion.config import DataConfig, FusionConfig, JWAEConfig, RunConfig, TrainConfig


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


def small_config(data: str, *, epochs: int = 6, model: str = "lmf", seed: int = 0) -> RunConfig:
    """A run that fits in about a second on the data of :func:`write_interaction_npz`."""
    return RunConfig(
        data=DataConfig(name=data),
        jwae=JWAEConfig(latent_dim=4, hidden_dim=16),
        fusion=FusionConfig(model=model, rank=2, fused_dim=8),
        train=TrainConfig(epochs=epochs, batch_size=64, patience=50),
        seed=seed,
        device="cpu",
    )


def write_separable_npz(path: Path, *, n: int = 240, num_classes: int = 3, seed: int = 0) -> Path:
    """Two modalities that each carry the label (class means plus unit noise): late fusion suffices."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, num_classes, n)
    a = rng.normal(size=(num_classes, 4))[y] + rng.normal(size=(n, 4))
    b = rng.normal(size=(num_classes, 3))[y] + rng.normal(size=(n, 3))
    np.savez(path, x_a=a.astype(np.float32), x_b=b.astype(np.float32), y=y.astype(np.int64))
    return path
