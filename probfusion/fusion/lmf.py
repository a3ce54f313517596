"""Low-rank multimodal fusion (LMF): a CP-rank-r weight on the outer product of the augmented latents."""

from __future__ import annotations

import math
import string
from collections.abc import Sequence

import torch
from torch import Tensor, nn

from probfusion.errors import ConfigError
from probfusion.fusion._common import append_one, check_count, check_dims
from probfusion.fusion.concat import ConcatFusion
from probfusion.options import LMFInit, parse_option

__all__ = ["LowRankFusion"]

# Letters for the modality axes of full_weight's einsum; r and h are taken by rank and output.
_AXES = "".join(c for c in string.ascii_letters if c not in "rh")


class LowRankFusion(nn.Module):
    r"""Low-rank multimodal fusion, Liu et al.'s general form with modality-specific factors.

    With augmented latents :math:`\tilde z_m = [z_m; 1]` and factors
    :math:`W_m^{(i)} \in \mathbb{R}^{h \times (d_m + 1)}` for rank components i = 1..r,

    .. math::
        f(z_1, \dots, z_M) = \sum_{i=1}^{r} \prod_{m=1}^{M} W_m^{(i)} \tilde z_m
            = \mathcal{W} \cdot (\tilde z_1 \otimes \cdots \otimes \tilde z_M),
        \qquad \mathcal{W} = \sum_{i=1}^{r} \bigotimes_{m} W_m^{(i)}

    (product elementwise over the h outputs), i.e. :class:`~probfusion.fusion.tfn.TensorFusion` with a weight
    tensor of CP rank r. The constant 1 is the last coordinate of each :math:`\tilde z_m`, so the unimodal and
    bias terms are part of the same tensor and there is no separate bias.

    Cost: O(r h sum_m (d_m + 1)) parameters and multiply-adds per sample, against O(h prod_m (d_m + 1)) for
    the full tensor. Each factor is one ``nn.Parameter`` of shape `(r, h, d_m + 1)` in an ``nn.ParameterList``,
    so every factor is registered and trained.

    With ``additive_path=True`` a linear map of the concatenated latents is added, as a factorization machine
    adds linear terms to its low-rank pairwise interactions:

    .. math::
        f(z_1, \dots, z_M) = \sum_{i=1}^{r} \prod_{m=1}^{M} W_m^{(i)} \tilde z_m + A [z_1; \dots; z_M] + b,
        \qquad A \in \mathbb{R}^{h \times \sum_m d_m}

    (a :class:`~probfusion.fusion.concat.ConcatFusion` held as ``additive``). Without it the unimodal terms are
    reachable only through the constant coordinates of the factors (the sum over i of a product of M - 1
    constants times one linear term); with it they have their own parameters, and the layer contains
    concatenation fusion exactly (all factors zero). :meth:`component_outputs`, :meth:`full_weight` and the
    component diagnostics cover the interaction part only. Cost: h (sum_m d_m + 1) more parameters.

    M = 1 is accepted (it degenerates to a linear layer on ``[z_1; 1]`` with r-fold redundant parameters) so a
    unimodal run configured with ``lmf`` still works; :class:`~probfusion.fusion.concat.ConcatFusion` is the
    intended unimodal baseline.

    Reference: Z. Liu, Y. Shen, V. B. Lakshminarasimhan, P. P. Liang, A. Zadeh, L.-P. Morency, "Efficient
    Low-rank Multimodal Fusion with Modality-Specific Factors", ACL 2018.

    Args:
        input_dims: Latent widths d_m, one per modality, in order.
        rank: Number r of rank components.
        output_dim: Fused width h.
        init: Factor initialisation (:meth:`reset_parameters`).
        additive_path: Add the linear path ``A [z_1; ...; z_M] + b`` (default off: Liu et al.'s layer).

    Example:
        >>> import torch
        >>> lmf = LowRankFusion(input_dims=[3, 4], rank=2, output_dim=5)
        >>> lmf([torch.randn(6, 3), torch.randn(6, 4)]).shape
        torch.Size([6, 5])
        >>> lmf.full_weight().shape
        torch.Size([5, 4, 5])
    """

    def __init__(
        self,
        *,
        input_dims: Sequence[int],
        rank: int,
        output_dim: int,
        init: LMFInit | str = LMFInit.RANDOM,
        additive_path: bool = False,
    ) -> None:
        super().__init__()
        self.init = parse_option(init, LMFInit, name="LMF init")
        self.input_dims = check_dims("LowRankFusion", input_dims, output_dim)
        if rank < 1:
            raise ConfigError(f"LowRankFusion rank must be a positive integer; got {rank}.")
        if len(self.input_dims) > len(_AXES):
            raise ConfigError(f"LowRankFusion supports at most {len(_AXES)} modalities; got {len(self.input_dims)}.")
        self.rank = rank
        self.output_dim = output_dim
        self.factors = nn.ParameterList(nn.Parameter(torch.empty(rank, output_dim, d_m + 1)) for d_m in self.input_dims)
        # Off, nothing is created or drawn for it: a run without the path starts exactly as before.
        self.additive: ConcatFusion | None = (
            ConcatFusion(input_dims=self.input_dims, output_dim=output_dim) if additive_path else None
        )
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Initialise the factors as ``init`` says (``random`` or ``additive``).

        ``random``: every factor from N(0, s_m^2) with s_m^2 = r^(-1/M) / (d_m + 1). For standardised
        latents, E||z~_m||^2 = d_m + 1, so each projection W_m^(i) z~_m has variance r^(-1/M) per output unit;
        the product over M independent projections has variance r^(-1), and the sum over r components has
        variance about 1, whatever M. The interactions dominate, and the gradient of one factor is the product
        of the M - 1 others: with many modalities it is heavy-tailed, often near zero.

        ``additive``: the constant coordinate of every factor is ``k = r^(-1/(2M))`` (modality 0's with a random
        sign) and the others are drawn from N(0, k^2 / (M d_m)), so component i is
        ``+-r^(-1/2) prod_m (1 + u_m^(i) . z_m)`` with each ``u_m . z_m`` of variance 1 / M. Summed over the r
        components, the constant has variance 1 (zero mean), the linear (unimodal) part variance 1 and the
        pairwise interactions variance (M - 1) / (2 M): the model starts near late fusion, every factor's
        gradient starts near the constant of the others, and training grows the interactions it needs, whatever
        M.
        """
        num_modalities = len(self.input_dims)
        for factor, d_m in zip(self.factors, self.input_dims, strict=True):
            if self.init is LMFInit.RANDOM:
                std = math.sqrt(self.rank ** (-1.0 / num_modalities) / (d_m + 1))
                nn.init.normal_(factor, mean=0.0, std=std)
                continue
            constant = self.rank ** (-0.5 / num_modalities)
            with torch.no_grad():
                nn.init.normal_(factor, mean=0.0, std=constant / math.sqrt(num_modalities * max(d_m, 1)))
                factor[..., -1] = constant
                if factor is self.factors[0]:
                    factor[..., -1] *= torch.randint(0, 2, factor.shape[:-1]).mul(2).sub(1).to(factor.dtype)
        if self.additive is not None:  # PyTorch's default nn.Linear start, as concatenation fusion has
            self.additive.linear.reset_parameters()

    def component_outputs(self, latents: Sequence[Tensor]) -> Tensor:
        """Each rank component's fused output, before the sum over components.

        Args:
            latents: M tensors of shape `(n, d_m)`, one per modality, in order.

        Returns:
            A `(n, r, h)` tensor, ``prod_m (W_m^(i) z~_m)`` for each component i.
        """
        check_count("LowRankFusion", latents, len(self.factors))
        fused: Tensor | None = None
        # A loop over modalities; all r components and h outputs go through one einsum per modality.
        for z, factor in zip(latents, self.factors, strict=True):
            projected = torch.einsum("nd,rhd->nrh", append_one(z), factor)
            fused = projected if fused is None else fused * projected
        return fused  # type: ignore[return-value]

    def forward(self, latents: Sequence[Tensor]) -> Tensor:
        """Fuse the latents.

        Args:
            latents: M tensors of shape `(n, d_m)`, one per modality, in order.

        Returns:
            A `(n, h)` tensor, ``sum_i prod_m (W_m^(i) z~_m)`` (plus ``A [z_1; ...; z_M] + b`` with the additive
            path).
        """
        fused = self.component_outputs(latents).sum(dim=1)
        if self.additive is not None:
            fused = fused + self.additive(latents)
        return fused

    def full_weight(self) -> Tensor:
        """The dense CP tensor ``sum_i W_1^(i) x ... x W_M^(i)`` (for tests and TFN comparisons).

        Cost: O(r h prod_m (d_m + 1)); meant for tiny dimensions.

        Returns:
            A `(h, d_1 + 1, ..., d_M + 1)` tensor.
        """
        axes = _AXES[: len(self.factors)]
        equation = ",".join(f"rh{a}" for a in axes) + "->h" + axes
        return torch.einsum(equation, *self.factors)
