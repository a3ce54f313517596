"""Helpers shared by the fusion layers and classifiers.

The augmented latent z~_m = [z_m; 1], argument checks, the concatenated inputs, and the buffers and term of the
logistic-regression pool.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
from torch import Tensor, nn

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


def concatenated(views: Mapping[str, Tensor], modalities: Sequence[str]) -> Tensor:
    """``(n, sum_m d_m)``: the views of ``modalities``, in that order, side by side."""
    return torch.cat([views[m] for m in modalities], dim=-1)


def input_skip(*, enabled: bool, num_inputs: int, num_classes: int) -> nn.Linear | None:
    """The wide-and-deep skip ``A [x_1; ...; x_M] + a`` (``FusionConfig.input_linear``), or ``None`` when off.

    A and a start at zero, so a model begins as it would without the skip; they are trained with the rest.
    """
    if not enabled:
        return None
    skip = nn.Linear(num_inputs, num_classes)
    nn.init.zeros_(skip.weight)
    nn.init.zeros_(skip.bias)
    return skip


def add_linear_pool(module: nn.Module, *, enabled: bool, num_inputs: int, num_classes: int) -> None:
    """Give a classifier the logistic-regression pool's buffers (``FusionConfig.linear_pool``), all zero.

    ``linear_weight`` `(c, D)`, ``linear_bias`` `(c,)` and ``pool_weight`` w: buffers, not parameters, since the
    regression is fitted apart from the network, after it (:mod:`probfusion.inference.linear_pool`). Sets
    ``module.linear_pool`` to ``enabled``.
    """
    module.linear_pool = bool(enabled)
    if module.linear_pool:
        module.register_buffer("linear_weight", torch.zeros(num_classes, num_inputs))
        module.register_buffer("linear_bias", torch.zeros(num_classes))
        module.register_buffer("pool_weight", torch.zeros(()))


def linear_pool_active(module: nn.Module) -> bool:
    """Whether ``module`` has the pool and a weight w > 0 (w = 0 while training and before the pool is fitted)."""
    return bool(module.linear_pool) and float(module.pool_weight) > 0.0


def pool_logits(module: nn.Module, logits: Tensor, x: Tensor) -> Tensor:
    """``(1 - w) logits + w (x A^T + a)``: `(..., n, c)` logits (a draw dimension broadcasts), `(n, D)` inputs."""
    linear = x @ module.linear_weight.T + module.linear_bias
    return (1 - module.pool_weight) * logits + module.pool_weight * linear
