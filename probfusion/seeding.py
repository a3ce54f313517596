"""Seeds: explicit generators for the library, a global seed for scripts and the CLI only."""

from __future__ import annotations

import random

import numpy as np
import torch

__all__ = ["make_generator", "seed_everything"]


def make_generator(seed: int, device: torch.device | str = "cpu") -> torch.Generator:
    """Return a ``torch.Generator`` on ``device`` seeded with ``seed``."""
    generator = torch.Generator(device=device)
    generator.manual_seed(seed)
    return generator


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch (and Pyro's RNG through torch). For scripts and the CLI, not library code."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
