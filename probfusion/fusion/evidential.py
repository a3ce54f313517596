r"""Evidential multi-view classifiers: per-modality Dirichlet opinions combined by TMC's or RCML's rule."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from probfusion._shapes import Views
from probfusion.config import EvidentialConfig, JWAEConfig
from probfusion.encoders.jwae import JointWAE
from probfusion.errors import ConfigError, InputDataError
from probfusion.fusion.opinions import average_evidence, dempster_shafer
from probfusion.options import EvidenceFunction, EvidentialFeatures

__all__ = ["Combination", "EvidentialClassifier", "EvidentialOutput"]


class Combination(StrEnum):
    """How the per-modality opinions become one."""

    DEMPSTER_SHAFER = "dempster-shafer"
    """TMC's reduced Dempster-Shafer rule (associative; evidence multiplies)."""
    AVERAGE = "average"
    """RCML's average evidence aggregation."""


@dataclass(frozen=True, eq=False)
class EvidentialOutput:
    """One forward pass of an :class:`EvidentialClassifier`.

    Attributes:
        view_alpha: `(M, n, c)` Dirichlet parameters of each modality's opinion, in modality order.
        alpha: `(n, c)` Dirichlet parameters of the combined opinion.
        latents: ``{m: (n, d)}`` the jWAE latents (empty on input features).
    """

    view_alpha: Tensor
    alpha: Tensor
    latents: dict[str, Tensor]


def _evidence(kind: EvidenceFunction, out: Tensor) -> Tensor:
    if kind is EvidenceFunction.SOFTPLUS:
        return F.softplus(out)
    if kind is EvidenceFunction.RELU:
        return F.relu(out)
    return torch.exp(out.clamp(max=10.0))


class EvidentialClassifier(nn.Module):
    r"""One evidence network per modality, Dirichlet opinions, and TMC's or RCML's combination.

    .. math::
        e_m = g(h_m(\phi_m(x_m))), \quad \alpha_m = e_m + 1, \quad b_m = e_m / S_m, \quad u_m = c / S_m,
        \qquad \alpha = \mathrm{combine}(e_1, \dots, e_M) + 1,

    with :math:`\phi_m` the jWAE encoder f_m (``features="latent"``) or the identity (``"input"``), h_m a linear
    map or a one-hidden-layer MLP, g the evidence function (softplus by default) and the combination the
    reduced Dempster-Shafer rule (TMC) or average evidence (RCML), see :mod:`probfusion.fusion.opinions`.
    The predictive is the Dirichlet mean :math:`\alpha / S`, answered as ``log alpha`` logits with ``s = 1``
    (softmax of them is the mean); :meth:`vacuity` is the combined opinion's uncertainty :math:`u = c / S`.
    Both are differentiable in the inputs. Training (the evidential losses) lives in
    :mod:`probfusion.inference.evidential_loss`.

    Cost: O(sum_m d_m h + M h c) parameters beyond the encoders; the combination adds O(M n c).

    References: Z. Han, C. Zhang, H. Fu, J. T. Zhou, "Trusted Multi-View Classification", ICLR 2021 (TPAMI 2022);
    C. Xu, J. Si, Z. Guan, W. Zhao, Y. Wu, X. Gao, "Reliable Conflictive Multi-View Learning", AAAI 2024.

    Args:
        input_dims: ``{m: d_m}`` in modality order.
        num_classes: Number of classes c.
        jwae: Encoder settings (used on latent features only).
        evidential: Features, evidence function and hidden width.
        combination: Dempster-Shafer (TMC) or average evidence (RCML).

    Example:
        >>> from probfusion.config import EvidentialConfig, JWAEConfig
        >>> model = EvidentialClassifier(input_dims={"a": 5, "b": 3}, num_classes=4,
        ...     jwae=JWAEConfig(latent_dim=2, hidden_dim=8), evidential=EvidentialConfig(),
        ...     combination="dempster-shafer")
        >>> views = {"a": torch.randn(6, 5), "b": torch.randn(6, 3)}
        >>> model.predictive_logits(views).shape, model.vacuity(views).shape
        (torch.Size([1, 6, 4]), torch.Size([6]))
    """

    def __init__(
        self,
        *,
        input_dims: Mapping[str, int],
        num_classes: int,
        jwae: JWAEConfig,
        evidential: EvidentialConfig,
        combination: Combination | str,
    ) -> None:
        super().__init__()
        if num_classes < 2:
            raise ConfigError(f"An evidential classifier needs at least 2 classes; got {num_classes}.")
        self.modalities: tuple[str, ...] = tuple(input_dims)
        self.num_classes = num_classes
        self.evidential = evidential
        self.combination = Combination(combination)
        latent = evidential.features is EvidentialFeatures.LATENT
        self.jwae: JointWAE | None = JointWAE(input_dims=input_dims, config=jwae) if latent else None
        widths = {m: jwae.latent_dim if latent else d_m for m, d_m in input_dims.items()}
        hidden = evidential.hidden_dim
        self.evidence_nets = nn.ModuleDict(
            {
                m: nn.Linear(w, num_classes)
                if hidden == 0
                else nn.Sequential(
                    nn.Linear(w, hidden), nn.ReLU(), nn.Dropout(jwae.dropout), nn.Linear(hidden, num_classes)
                )
                for m, w in widths.items()
            }
        )

    def _present(self, views: Views, *, subset: bool = False) -> list[str]:
        """The model's modalities that ``views`` holds: all of them, or (``subset``) at least one."""
        present = [m for m in self.modalities if m in views]
        missing = [m for m in self.modalities if m not in views]
        if not present or (missing and not subset):
            raise InputDataError(
                f"Views lack modalities {missing}; the model expects {list(self.modalities)}, got {list(views)}."
            )
        return present

    def opinions(self, views: Views, *, subset: bool = False) -> EvidentialOutput:
        """Each modality's Dirichlet and the combined one.

        Args:
            views: ``{m: (n, d_m)}`` inputs holding the model's modalities.
            subset: Allow ``views`` to hold only some of them; the absent ones are dropped from the combination
                (the opinion of the views given), as ``probfusion predict`` does for a missing modality.

        Returns:
            The per-view and combined Dirichlet parameters and the latents.
        """
        present = self._present(views, subset=subset)
        if self.jwae is not None:
            latents = {m: self.jwae.encoders[m](views[m]) for m in present}
            features = latents
        else:
            latents, features = {}, views
        kind = self.evidential.evidence
        evidence = torch.stack([_evidence(kind, self.evidence_nets[m](features[m])) for m in present])
        combine = dempster_shafer if self.combination is Combination.DEMPSTER_SHAFER else average_evidence
        return EvidentialOutput(view_alpha=evidence + 1.0, alpha=combine(evidence) + 1.0, latents=latents)

    def forward_with_latents(self, views: Views) -> tuple[Tensor, dict[str, Tensor]]:
        """``log alpha`` logits of the combined opinion and the latents they came from.

        Args:
            views: ``{m: (n, d_m)}`` inputs.

        Returns:
            A `(n, c)` tensor of logits (softmax gives the Dirichlet mean) and the ``{m: (n, d)}`` latents.
        """
        out = self.opinions(views)
        return out.alpha.log(), out.latents

    def forward(self, views: Views) -> Tensor:
        """``log alpha`` logits of the combined opinion, `(n, c)`."""
        return self.forward_with_latents(views)[0]

    def predictive_logits(self, views: Views, num_samples: int = 1) -> Tensor:
        """``log alpha`` of the combined opinion with a leading draw dimension of one.

        Args:
            views: ``{m: (n, d_m)}`` inputs.
            num_samples: Ignored beyond validation (one predictive: the Dirichlet mean).

        Returns:
            A `(1, n, c)` tensor of logits, differentiable in the inputs.
        """
        if num_samples < 1:
            raise ConfigError(f"num_samples must be a positive integer; got {num_samples}.")
        return self(views).unsqueeze(0)

    def partial_predictive_logits(self, views: Views) -> Tensor:
        """``(1, n, c)`` logits from the modalities ``views`` holds, the others dropped from the combination."""
        return self.opinions(views, subset=True).alpha.log().unsqueeze(0)

    def vacuity(self, views: Views) -> Tensor:
        """The combined opinion's uncertainty ``u = c / S`` per row, in (0, 1]; differentiable in the inputs.

        Args:
            views: ``{m: (n, d_m)}`` inputs.

        Returns:
            A `(n,)` tensor.
        """
        alpha = self.opinions(views).alpha
        return self.num_classes / alpha.sum(-1)

    def fusion_parameter_count(self) -> int:
        """Trainable parameters of the evidence networks (the combination rule has none)."""
        return sum(p.numel() for p in self.evidence_nets.parameters() if p.requires_grad)

    def parameter_count(self) -> int:
        """Trainable parameters of the whole model (encoders, decoders, evidence networks)."""
        return sum(p.numel() for p in self.parameters() if p.requires_grad)
