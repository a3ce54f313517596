"""The post-fusion network that turns the fused representation into class logits."""

from __future__ import annotations

from torch import Tensor, nn

from probfusion.errors import ConfigError
from probfusion.options import HeadKind, parse_option

__all__ = ["ClassifierHead"]


class ClassifierHead(nn.Module):
    r"""An optional ReLU, dropout, then a linear map from the fused width h to c class logits.

    .. math::
        \mathrm{logits} = \Theta \, \mathrm{dropout}(\phi(f)) + b, \qquad \Theta \in \mathbb{R}^{c \times h},
        \qquad \phi = \mathrm{ReLU} \ (\text{``mlp''}) \ \text{or} \ \phi = \mathrm{id} \ (\text{``linear''})

    The ``linear`` head keeps the fusion's structure: after concatenation fusion
    ``f = sum_m W_m z_m + b`` the logits are ``sum_m Theta W_m z_m + const``, additive in the modalities (late
    fusion), whereas the ReLU of the ``mlp`` head mixes them (concatenation then becomes an MLP on the joint
    latents).

    Cost: O(h c) parameters and multiply-adds per sample.

    Args:
        fused_dim: Fused width h.
        num_classes: Number of classes c (at least 2).
        dropout: Dropout rate before the linear map.
        kind: ``mlp`` (ReLU first) or ``linear`` (no nonlinearity).

    Example:
        >>> import torch
        >>> ClassifierHead(fused_dim=5, num_classes=3)(torch.randn(4, 5)).shape
        torch.Size([4, 3])
        >>> ClassifierHead(fused_dim=5, num_classes=3, kind="linear")(torch.randn(4, 5)).shape
        torch.Size([4, 3])
    """

    def __init__(
        self, *, fused_dim: int, num_classes: int, dropout: float = 0.0, kind: HeadKind | str = HeadKind.MLP
    ) -> None:
        super().__init__()
        if fused_dim < 1:
            raise ConfigError(f"ClassifierHead fused_dim must be a positive integer; got {fused_dim}.")
        if num_classes < 2:
            raise ConfigError(f"ClassifierHead needs at least 2 classes; got num_classes={num_classes}.")
        if not 0.0 <= dropout < 1.0:
            raise ConfigError(f"ClassifierHead dropout must lie in [0, 1); got {dropout}.")
        self.kind = parse_option(kind, HeadKind, name="head")
        activation = nn.ReLU() if self.kind is HeadKind.MLP else nn.Identity()
        # Identity in the ReLU's slot keeps the state-dict keys (net.2.*) of both kinds, and of earlier runs.
        self.net = nn.Sequential(activation, nn.Dropout(dropout), nn.Linear(fused_dim, num_classes))

    def forward(self, fused: Tensor) -> Tensor:
        """Class logits.

        Args:
            fused: A `(n, h)` tensor of fused representations.

        Returns:
            A `(n, c)` tensor of logits.
        """
        return self.net(fused)
