"""How big the model that a config implies is, checked before anything is allocated.

A rank, width or sample count of 10**9 would otherwise ask torch for many gigabytes and fail deep inside a
constructor (or swap the machine to a halt). :func:`check_model_size` counts the parameters and the largest
tensors the fit builds from the config alone, with arithmetic only, and refuses sizes beyond fixed limits with
the option to lower in the message. :class:`~probfusion.config.RunConfig` runs it for the smallest data (one
feature, two classes, two rows) on construction, which bounds every size the config alone sets; the API runs it
again with the real input widths, classes and rows before it builds a model.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

from probfusion.errors import ConfigError
from probfusion.options import FusionKind, InferenceKind, RankPrior

if TYPE_CHECKING:
    from probfusion.config import RunConfig

__all__ = ["MAX_PARAMETERS", "MAX_TENSOR_ELEMENTS", "check_model_size", "model_size"]

MAX_PARAMETERS = 50_000_000
"""Most trainable parameters (200 MB in float32; Adam, gradients and the best-epoch copy need four times that)."""

MAX_TENSOR_ELEMENTS = 2**28
"""Most elements of any one weight or intermediate tensor of a fit (1 GiB in float32)."""

_SCORE_BATCH = 1024  # rows per batch when scoring (probfusion.inference.predictive)


def _largest(sizes: Mapping[str, int]) -> tuple[str, int]:
    name = max(sizes, key=lambda key: sizes[key])
    return name, sizes[name]


def _resolved(config: RunConfig, dims: Mapping[str, int], num_classes: int, num_rows: int) -> RunConfig:
    """``config`` with its data-scaled fields (left ``None``) set for this data, as ``fit`` will set them."""
    from probfusion.config import data_scaled_values, resolve_config  # config imports this module

    if None not in data_scaled_values(config).values():
        return config

    return resolve_config(config, input_dims=dims, num_classes=num_classes, num_train=num_rows)


def model_size(
    config: RunConfig, dims: Mapping[str, int], num_classes: int, num_rows: int
) -> tuple[int, dict[str, int]]:
    """Count the parameters of the model ``config`` implies, and the sizes of its largest tensors.

    Args:
        config: The run's configuration.
        dims: ``{m: d_m}`` input widths.
        num_classes: Number of classes c.
        num_rows: Rows of the largest split part (the ``(s, n, c)`` predictive and the batches grow with it).

    Returns:
        The number of trainable parameters, and ``{what: elements}`` for the largest tensors, each named after
        the option that sets it.
    """
    config = _resolved(config, dims, num_classes, num_rows)
    jwae, fusion = config.jwae, config.fusion
    d, hidden, h, r, c, m = jwae.latent_dim, jwae.hidden_dim, fusion.fused_dim, fusion.rank, num_classes, len(dims)
    rows = num_rows
    batch = min(max(config.train.batch_size, _SCORE_BATCH), rows)  # training or scoring batch, whichever is larger
    encoders = sum(2 * (d_m * hidden + hidden * d) + 2 * hidden + d + d_m for d_m in dims.values())
    tensors = {
        "encoder weight (hidden_dim * d_m)": hidden * max(dims.values()),
        "encoder weight (hidden_dim * latent_dim)": hidden * d,
        "hidden activations (batch * hidden_dim)": batch * hidden,
        "sliced-Wasserstein projections (batch * num_projections)": batch * jwae.num_projections,
    }
    model = FusionKind.LMF if fusion.model is FusionKind.GP_MKL else fusion.model
    if model is FusionKind.LMF:
        fused = m * r * h * (d + 1) + (m * d * h + h if fusion.additive_path else 0)
        tensors["LMF factor (rank * fused_dim * (latent_dim + 1))"] = r * h * (d + 1)
        tensors["LMF component outputs (batch * rank * fused_dim)"] = batch * r * h
    elif model is FusionKind.TFN:
        features = (d + 1) ** m
        fused = h * features
        tensors["TFN weight (fused_dim * (latent_dim + 1)^M)"] = fused
        tensors["TFN outer product (batch * (latent_dim + 1)^M)"] = batch * features
    else:
        fused = m * d * h + h
        tensors["concatenation weight (M * latent_dim * fused_dim)"] = m * d * h
    parameters = encoders + fused + h * c + c + ((sum(dims.values()) + 1) * c if fusion.input_linear else 0)
    tensors["head weight (fused_dim * classes)"] = h * c
    if fusion.input_linear:
        tensors["input skip weight (sum_m d_m * classes)"] = sum(dims.values()) * c
    if fusion.linear_pool:  # buffers, not trained parameters
        tensors["logistic-regression pool weight (sum_m d_m * classes)"] = sum(dims.values()) * c
    samples = 1
    if fusion.model is FusionKind.GP_MKL:
        gp = config.gp
        samples = gp.posterior_samples
        exact = min(rows, gp.max_exact_points)  # one batched exact GP per class up to max_exact_points rows
        tensors["GP kernel matrices (classes * min(rows, max_exact_points)^2)"] = c * exact * exact
        tensors["GP inducing cross-covariances (classes * num_inducing * rows)"] = c * gp.num_inducing * rows
    elif fusion.rank_prior is not RankPrior.NONE:
        bayes = config.bayes
        sites = r + m * r * (d + 1) + c * r + c
        parameters += 2 * sites + (min(10, sites) * sites if bayes.guide.value == "low-rank" else 0)
        samples = bayes.posterior_samples
        tensors["posterior draws (posterior_samples * head size)"] = samples * sites
        tensors["posterior component outputs (posterior_samples * batch * rank)"] = samples * batch * r
        if bayes.inference is InferenceKind.NUTS:
            tensors["NUTS draws (num_chains * num_draws * head size)"] = bayes.num_chains * bayes.num_draws * sites
    tensors["predictive probabilities (samples * rows * classes)"] = samples * rows * c
    return parameters, tensors


def check_model_size(config: RunConfig, dims: Mapping[str, int], num_classes: int, num_rows: int) -> None:
    """Refuse a config whose model would not fit in memory (see :func:`model_size`).

    Raises:
        ConfigError: If the parameters exceed :data:`MAX_PARAMETERS` or a tensor exceeds
            :data:`MAX_TENSOR_ELEMENTS`; the message names the part and the option that sets it.
    """
    config = _resolved(config, dims, num_classes, num_rows)
    parameters, tensors = model_size(config, dims, num_classes, num_rows)
    what, elements = _largest(tensors)
    widths = (
        f"latent_dim={config.jwae.latent_dim}, hidden_dim={config.jwae.hidden_dim}, rank={config.fusion.rank}, "
        f"fused_dim={config.fusion.fused_dim}, M={len(dims)} modalities, c={num_classes} classes"
    )
    if elements > MAX_TENSOR_ELEMENTS:
        raise ConfigError(
            f"The model this config implies needs a tensor of {elements:,} elements for the {what}; the limit is "
            f"{MAX_TENSOR_ELEMENTS:,} ({widths}). Lower the options in that product."
        )
    if parameters > MAX_PARAMETERS:
        raise ConfigError(
            f"The model this config implies has {parameters:,} parameters; the limit is {MAX_PARAMETERS:,} "
            f"({widths}). Lower latent_dim (--latent-dim), rank (--rank), fused_dim (--fused-dim) or hidden_dim."
        )
