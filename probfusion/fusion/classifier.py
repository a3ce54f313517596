"""The deterministic multimodal classifier: jWAE encoders, a fusion layer and a classifier head."""

from __future__ import annotations

from collections.abc import Mapping
from typing import ClassVar

import torch
from torch import Tensor, nn

from probfusion._shapes import Views
from probfusion.config import FusionConfig, JWAEConfig
from probfusion.encoders.jwae import JointWAE
from probfusion.errors import ConfigError
from probfusion.fusion._common import add_linear_pool, concatenated, input_skip, linear_pool_active, pool_logits
from probfusion.fusion.factory import build_fusion, build_head

__all__ = ["MultimodalClassifier"]


class MultimodalClassifier(nn.Module):
    r"""jWAE encoders, then LMF, TFN or concatenation fusion, then a classifier head (point estimates).

    .. math::
        z_m = f_m(x_m), \qquad f = \mathrm{head}(\mathrm{fuse}(z_1, \dots, z_M)) [+ W [x_1; \dots; x_M] + b],
        \qquad \mathrm{logits} = \big((1 - w) f + w (A [x_1; \dots; x_M] + a)\big) / T

    with T the ``temperature`` buffer: 1 while training, then the validation-fitted temperature when
    ``TrainConfig.calibration`` is ``temperature`` (runs stored before it load with T = 1). The second term is
    the logistic-regression pool (``FusionConfig.linear_pool``; buffers ``linear_weight`` A, ``linear_bias`` a
    and ``pool_weight`` w), fitted after training by :mod:`probfusion.inference.linear_pool`; w = 0 while
    training and in a model built without it.

    Training minimises cross-entropy plus :meth:`JointWAE.loss` on the latents of one encoder pass
    (:meth:`forward_with_latents`); fitting lives in :mod:`probfusion.inference`, not here. Implements the
    :class:`~probfusion.fusion.protocol.Predictor` protocol with ``s = 1``.

    Cost: the encoders' O(hidden_dim sum_m (d_m + d)) parameters, plus O(r h M (d + 1)) for LMF (and O(h M d)
    for its additive path), O(h (d + 1)^M) for TFN or O(h M d) for concatenation, plus O(h c) for the head.

    References: Liu et al., 2018 (ACL), "Efficient Low-rank Multimodal Fusion with Modality-Specific Factors";
    Zadeh et al., 2017 (EMNLP), "Tensor Fusion Network"; Tolstikhin et al., 2018 (ICLR), "Wasserstein
    Auto-Encoders".

    Args:
        input_dims: ``{m: d_m}`` in modality order.
        num_classes: Number of classes c.
        jwae: Encoder, decoder and jWAE loss settings.
        fusion: Fusion layer settings; the head (``fusion.head``: ``mlp`` or ``linear``) has input width
            ``fusion.fused_dim``.
        layers: A ``(fusion layer, head)`` pair to use instead of the ones ``fusion`` names (the seed-form
            first stage of the Bayesian kind).

    Example:
        >>> import torch
        >>> from probfusion.config import FusionConfig, JWAEConfig
        >>> model = MultimodalClassifier(
        ...     input_dims={"a": 5, "b": 3}, num_classes=2,
        ...     jwae=JWAEConfig(latent_dim=2, hidden_dim=8), fusion=FusionConfig(rank=2, fused_dim=4))
        >>> model.predictive_logits({"a": torch.randn(6, 5), "b": torch.randn(6, 3)}).shape
        torch.Size([1, 6, 2])
    """

    # A run stored before the temperature existed was never recalibrated: T = 1 reproduces it
    # (:func:`probfusion.runs.checkpoint.load_module_state`).
    legacy_state: ClassVar[dict[str, float]] = {"temperature": 1.0}

    def __init__(
        self,
        *,
        input_dims: Mapping[str, int],
        num_classes: int,
        jwae: JWAEConfig,
        fusion: FusionConfig,
        layers: tuple[nn.Module, nn.Module] | None = None,
    ) -> None:
        super().__init__()
        self.jwae = JointWAE(input_dims=input_dims, config=jwae)
        self.modalities: tuple[str, ...] = self.jwae.modalities
        if layers is None:
            self.fusion = build_fusion(fusion, [jwae.latent_dim] * len(self.modalities))
            self.head: nn.Module = build_head(fusion, num_classes)
        else:
            self.fusion, self.head = layers
        self.num_classes = num_classes
        # The wide-and-deep skip (FusionConfig.input_linear, resolved; None builds none), zero at the start.
        self.input_linear = input_skip(
            enabled=bool(fusion.input_linear), num_inputs=sum(input_dims.values()), num_classes=num_classes
        )
        self.register_buffer("temperature", torch.ones(()))
        add_linear_pool(
            self, enabled=bool(fusion.linear_pool), num_inputs=sum(input_dims.values()), num_classes=num_classes
        )

    def forward_with_latents(self, views: Views) -> tuple[Tensor, dict[str, Tensor]]:
        """Logits and the latents they came from, so the jWAE loss reuses one encoder pass.

        Args:
            views: ``{m: (n, d_m)}`` inputs holding the model's modalities.

        Returns:
            A `(n, c)` tensor of logits and the ``{m: (n, d)}`` latents.
        """
        latents = self.jwae.encode(views)
        logits = self.head(self.fusion([latents[m] for m in self.modalities]))
        pooled = linear_pool_active(self)
        if self.input_linear is not None or pooled:
            x = concatenated(views, self.modalities)
            if self.input_linear is not None:
                logits = logits + self.input_linear(x)
            if pooled:
                logits = pool_logits(self, logits, x)
        return logits / self.temperature, latents

    def forward(self, views: Views) -> Tensor:
        """Class logits.

        Args:
            views: ``{m: (n, d_m)}`` inputs holding the model's modalities.

        Returns:
            A `(n, c)` tensor of logits.
        """
        return self.forward_with_latents(views)[0]

    def predictive_logits(self, views: Views, num_samples: int = 1) -> Tensor:
        """Logits with a leading draw dimension of one (the model is deterministic).

        Args:
            views: ``{m: (n, d_m)}`` inputs holding the model's modalities.
            num_samples: Ignored beyond validation: a point estimate has a single predictive draw.

        Returns:
            A `(1, n, c)` tensor of logits, differentiable in the inputs.
        """
        if num_samples < 1:
            raise ConfigError(f"num_samples must be a positive integer; got {num_samples}.")
        return self(views).unsqueeze(0)

    def fusion_parameter_count(self) -> int:
        """Number of trainable parameters of the fusion layer alone (the LMF vs TFN comparison).

        Returns:
            The count.
        """
        return sum(p.numel() for p in self.fusion.parameters() if p.requires_grad)

    def parameter_count(self) -> int:
        """Number of trainable parameters of the whole model (encoders, decoders, fusion, head).

        Returns:
            The count.
        """
        return sum(p.numel() for p in self.parameters() if p.requires_grad)
