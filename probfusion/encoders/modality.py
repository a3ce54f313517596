"""Per-modality encoder f_m: x_m -> z_m and decoder g_m: z_m -> x_m of the joint Wasserstein autoencoder."""

from __future__ import annotations

from torch import Tensor, nn

from probfusion.errors import ConfigError

__all__ = ["ModalityDecoder", "ModalityEncoder"]


def _mlp(*, in_dim: int, hidden_dim: int, out_dim: int, dropout: float, owner: str) -> nn.Sequential:
    for name, value in (("input width", in_dim), ("hidden_dim", hidden_dim), ("output width", out_dim)):
        if value < 1:
            raise ConfigError(f"{owner} {name} must be a positive integer; got {value}.")
    if not 0.0 <= dropout < 1.0:
        raise ConfigError(f"{owner} dropout must lie in [0, 1); got {dropout}.")
    # GELU rather than ReLU: no unit is dead for a whole batch, so every weight keeps a gradient.
    return nn.Sequential(
        nn.Linear(in_dim, hidden_dim),
        nn.GELU(),
        nn.Dropout(dropout),
        nn.Linear(hidden_dim, out_dim),
    )


class ModalityEncoder(nn.Module):
    r"""One-hidden-layer MLP encoder of one modality, with an optional direct linear path.

    .. math::
        z_m = f_m(x_m) = W_2 \, \mathrm{dropout}(\mathrm{GELU}(W_1 x_m + b_1)) + b_2 \; [+ A x_m]

    The linear path ``A x_m`` (no bias) makes every linear map of the inputs reachable from the start of
    training, which matters with few rows and wide inputs, where a linear model is hard to beat.

    Cost: O((hidden_dim + d) d_m + hidden_dim d) parameters and multiply-adds per sample. The latent is
    unconstrained; the jWAE prior penalty is what pulls its distribution toward N(0, I).

    Args:
        input_dim: Feature width d_m of the modality.
        latent_dim: Latent width d.
        hidden_dim: Width of the hidden layer.
        dropout: Dropout rate after the hidden activation.
        linear_path: Add the direct linear map ``A x_m``.

    Example:
        >>> import torch
        >>> encoder = ModalityEncoder(input_dim=5, latent_dim=3, hidden_dim=8)
        >>> encoder(torch.zeros(4, 5)).shape
        torch.Size([4, 3])
    """

    def __init__(
        self, *, input_dim: int, latent_dim: int, hidden_dim: int, dropout: float = 0.0, linear_path: bool = False
    ) -> None:
        super().__init__()
        self.input_dim = input_dim
        self.latent_dim = latent_dim
        self.net = _mlp(
            in_dim=input_dim, hidden_dim=hidden_dim, out_dim=latent_dim, dropout=dropout, owner="ModalityEncoder"
        )
        # Absent (not a zero map) without the path, so runs stored before it keep their state-dict keys.
        self.linear = nn.Linear(input_dim, latent_dim, bias=False) if linear_path else None

    def forward(self, x: Tensor) -> Tensor:
        """Encode one modality.

        Args:
            x: A `(n, d_m)` tensor of features for modality `m`.

        Returns:
            A `(n, d)` tensor of latents.
        """
        z = self.net(x)
        return z if self.linear is None else z + self.linear(x)


class ModalityDecoder(nn.Module):
    r"""One-hidden-layer MLP decoder of one modality, the mirror of :class:`ModalityEncoder`.

    .. math::
        \hat x_m = g_m(z) = W_2 \, \mathrm{dropout}(\mathrm{GELU}(W_1 z + b_1)) + b_2

    Cost: O(hidden_dim (d + d_m)) parameters and multiply-adds per sample.

    Args:
        latent_dim: Latent width d.
        output_dim: Feature width d_m of the reconstructed modality.
        hidden_dim: Width of the hidden layer.
        dropout: Dropout rate after the hidden activation.

    Example:
        >>> import torch
        >>> decoder = ModalityDecoder(latent_dim=3, output_dim=5, hidden_dim=8)
        >>> decoder(torch.zeros(4, 3)).shape
        torch.Size([4, 5])
    """

    def __init__(self, *, latent_dim: int, output_dim: int, hidden_dim: int, dropout: float = 0.0) -> None:
        super().__init__()
        self.latent_dim = latent_dim
        self.output_dim = output_dim
        self.net = _mlp(
            in_dim=latent_dim, hidden_dim=hidden_dim, out_dim=output_dim, dropout=dropout, owner="ModalityDecoder"
        )

    def forward(self, z: Tensor) -> Tensor:
        """Decode one modality.

        Args:
            z: A `(n, d)` tensor of latents (of this or of another modality).

        Returns:
            A `(n, d_m)` tensor of reconstructed features.
        """
        return self.net(z)
