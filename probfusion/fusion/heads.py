"""The post-fusion network that turns the fused representation into class logits."""

from __future__ import annotations

from torch import Tensor, nn

from probfusion.errors import ConfigError

__all__ = ["ClassifierHead"]


class ClassifierHead(nn.Module):
    r"""ReLU, dropout, then a linear map from the fused width h to c class logits.

    .. math::
        \mathrm{logits} = \Theta \, \mathrm{dropout}(\mathrm{ReLU}(f)) + b, \qquad \Theta \in \mathbb{R}^{c \times h}

    Cost: O(h c) parameters and multiply-adds per sample.

    Args:
        fused_dim: Fused width h.
        num_classes: Number of classes c (at least 2).
        dropout: Dropout rate before the linear map.

    Example:
        >>> import torch
        >>> ClassifierHead(fused_dim=5, num_classes=3)(torch.randn(4, 5)).shape
        torch.Size([4, 3])
    """

    def __init__(self, *, fused_dim: int, num_classes: int, dropout: float = 0.0) -> None:
        super().__init__()
        if fused_dim < 1:
            raise ConfigError(f"ClassifierHead fused_dim must be a positive integer; got {fused_dim}.")
        if num_classes < 2:
            raise ConfigError(f"ClassifierHead needs at least 2 classes; got num_classes={num_classes}.")
        if not 0.0 <= dropout < 1.0:
            raise ConfigError(f"ClassifierHead dropout must lie in [0, 1); got {dropout}.")
        self.net = nn.Sequential(nn.ReLU(), nn.Dropout(dropout), nn.Linear(fused_dim, num_classes))

    def forward(self, fused: Tensor) -> Tensor:
        """Class logits.

        Args:
            fused: A `(n, h)` tensor of fused representations.

        Returns:
            A `(n, c)` tensor of logits.
        """
        return self.net(fused)
