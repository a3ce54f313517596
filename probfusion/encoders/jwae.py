"""Joint Wasserstein autoencoder: one encoder and decoder per modality, a shared N(0, I) prior, alignment."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from probfusion._shapes import Views
from probfusion.config import JWAEConfig
from probfusion.encoders.alignment import cross_reconstruction, paired_distance
from probfusion.encoders.divergences import prior_divergence
from probfusion.encoders.modality import ModalityDecoder, ModalityEncoder
from probfusion.errors import ConfigError, InputDataError
from probfusion.options import AlignmentKind, PriorPenalty

__all__ = ["JWAELoss", "JointWAE"]


@dataclass(frozen=True)
class JWAELoss:
    """The jWAE loss and its unweighted parts, all scalar tensors.

    Attributes:
        total: ``reconstruction_weight * reconstruction + prior_weight * prior
            + alignment_weight * alignment``; the quantity to minimise.
        reconstruction: ``sum_m MSE(x_m, g_m(z_m))`` (unweighted); exactly zero when switched off.
        prior: ``sum_m D(q(z_m), N(0, I))`` (unweighted); exactly zero when switched off.
        alignment: The alignment term (unweighted); exactly zero when switched off.
    """

    total: Tensor
    reconstruction: Tensor
    prior: Tensor
    alignment: Tensor


class JointWAE(nn.Module):
    r"""Joint Wasserstein autoencoder over M modalities (after Tolstikhin et al., 2018, WAE).

    .. math::
        z_m = f_m(x_m), \qquad
        \mathcal{L} = \lambda_{rec} \sum_m \mathrm{MSE}(x_m, g_m(z_m))
            + \lambda_{prior} \sum_m D(q(z_m), \mathcal{N}(0, I))
            + \lambda_{align} \, \mathrm{align}(z_1, \dots, z_M)

    D is the sliced Wasserstein distance or the IMQ-kernel MMD; align is the paired distance or
    cross-reconstruction. A zero weight or kind ``none`` switches a term off without computing it, so "no jWAE"
    is a configuration, not a code path. Cost: O(hidden_dim sum_m (d_m + d)) parameters; the prior penalty adds
    O(L n (d + log n)) (sliced Wasserstein, L projections) or O(n^2 d) (MMD) per modality and batch.

    Reference: I. Tolstikhin, O. Bousquet, S. Gelly, B. Schoelkopf, "Wasserstein Auto-Encoders", ICLR 2018.

    Args:
        input_dims: ``{m: d_m}`` in modality order; the order of every later output.
        config: Widths, penalties and weights.

    Example:
        >>> import torch
        >>> from probfusion.config import JWAEConfig
        >>> jwae = JointWAE(input_dims={"a": 5, "b": 3}, config=JWAEConfig(latent_dim=2, hidden_dim=8))
        >>> views = {"a": torch.randn(6, 5), "b": torch.randn(6, 3)}
        >>> {m: tuple(z.shape) for m, z in jwae.encode(views).items()}
        {'a': (6, 2), 'b': (6, 2)}
    """

    def __init__(self, *, input_dims: Mapping[str, int], config: JWAEConfig) -> None:
        super().__init__()
        if len(input_dims) == 0:
            raise ConfigError("JointWAE needs at least one modality; got an empty input_dims.")
        for name in input_dims:
            # nn.ModuleDict keys cannot hold dots or be empty.
            if not name or "." in name:
                raise ConfigError(f"Modality name {name!r} is not allowed; use a non-empty name without '.'.")
        if config.latent_dim is None or config.hidden_dim is None:
            raise ConfigError(
                "JointWAE needs explicit latent_dim and hidden_dim; resolve the data-scaled defaults first with "
                "probfusion.config.resolve_config (probfusion.fit does)."
            )
        self.config = config
        self.modalities: tuple[str, ...] = tuple(input_dims)
        self.encoders = nn.ModuleDict(
            {
                m: ModalityEncoder(
                    input_dim=d_m,
                    latent_dim=config.latent_dim,
                    hidden_dim=config.hidden_dim,
                    dropout=config.dropout,
                    linear_path=config.linear_path,
                )
                for m, d_m in input_dims.items()
            }
        )
        self.decoders = nn.ModuleDict(
            {
                m: ModalityDecoder(
                    latent_dim=config.latent_dim, output_dim=d_m, hidden_dim=config.hidden_dim, dropout=config.dropout
                )
                for m, d_m in input_dims.items()
            }
        )

    def encode(self, views: Views) -> dict[str, Tensor]:
        """Encode every modality.

        Args:
            views: ``{m: (n, d_m)}`` inputs holding at least the model's modalities.

        Returns:
            ``{m: (n, d)}`` latents in the model's modality order.

        Raises:
            InputDataError: If a modality of the model is missing from ``views``.
        """
        missing = [m for m in self.modalities if m not in views]
        if missing:
            raise InputDataError(
                f"Views lack modalities {missing}; the model expects {list(self.modalities)}, "
                f"got {list(views)}. Pass every modality the model was built with."
            )
        return {m: self.encoders[m](views[m]) for m in self.modalities}

    def loss(
        self, views: Views, latents: Mapping[str, Tensor], *, generator: torch.Generator | None = None
    ) -> JWAELoss:
        """The jWAE loss of one batch, given the latents from :meth:`encode` (so encoders run once).

        Args:
            views: ``{m: (n, d_m)}`` inputs, the reconstruction targets.
            latents: ``{m: (n, d)}`` latents of the same batch.
            generator: Source of the prior samples and projections; ``None`` uses torch's global RNG.

        Returns:
            The weighted total and the unweighted parts.
        """
        config = self.config
        zero = next(iter(latents.values())).new_zeros(())
        reconstruction = prior = alignment = zero
        if config.reconstruction_weight > 0:
            reconstruction = torch.stack(
                [F.mse_loss(self.decoders[m](latents[m]), views[m]) for m in self.modalities]
            ).sum()
        if config.prior_weight > 0 and config.prior_penalty is not PriorPenalty.NONE:
            prior = torch.stack(
                [
                    prior_divergence(
                        latents[m],
                        config.prior_penalty,
                        num_projections=config.num_projections,
                        generator=generator,
                    )
                    for m in self.modalities
                ]
            ).sum()
        if config.alignment_weight > 0 and len(self.modalities) > 1:
            if config.alignment is AlignmentKind.PAIRED:
                alignment = paired_distance([latents[m] for m in self.modalities])
            elif config.alignment is AlignmentKind.CROSS:
                ordered = {m: latents[m] for m in self.modalities}
                alignment = cross_reconstruction(ordered, views, self.decoders)
        total = (
            config.reconstruction_weight * reconstruction
            + config.prior_weight * prior
            + config.alignment_weight * alignment
        )
        return JWAELoss(total=total, reconstruction=reconstruction, prior=prior, alignment=alignment)
