"""Helpers shared by the fusion layers: the augmented latent z~_m = [z_m; 1] and argument checks."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from probfusion.errors import ConfigError, InputDataError


def append_one(z: Tensor) -> Tensor:
    """Return the `(n, d_m + 1)` augmented latent ``[z_m; 1]``; the 1 carries unimodal and bias terms."""
    return torch.cat([z, z.new_ones(z.shape[0], 1)], dim=-1)


def check_dims(owner: str, input_dims: Sequence[int], output_dim: int) -> tuple[int, ...]:
    """Validate the per-modality widths and the output width; return the widths as a tuple."""
    dims = tuple(int(d) for d in input_dims)
    if len(dims) == 0:
        raise ConfigError(f"{owner} needs at least one modality; got input_dims=().")
    if any(d < 1 for d in dims):
        raise ConfigError(f"{owner} input_dims must be positive integers; got {dims}.")
    if output_dim < 1:
        raise ConfigError(f"{owner} output_dim must be a positive integer; got {output_dim}.")
    return dims


def check_count(owner: str, latents: Sequence[Tensor], expected: int) -> None:
    """Raise if the number of latents differs from the number of modalities the layer was built for."""
    if len(latents) != expected:
        raise InputDataError(
            f"{owner} was built for {expected} modalities but got {len(latents)} latents; "
            "pass one (n, d_m) tensor per modality, in order."
        )
