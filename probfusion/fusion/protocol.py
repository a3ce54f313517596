"""The one seam between predictors and everything downstream (attacks, shifts, metrics, diagnostics)."""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from torch import Tensor

from probfusion._shapes import Views

__all__ = ["PartialViewPredictor", "Predictor", "VacuityPredictor"]


@runtime_checkable
class Predictor(Protocol):
    """Anything that turns a batch of named modalities into per-draw class logits.

    Deterministic models return one draw (``s = 1``); Bayesian ones ``num_samples`` draws of the posterior
    predictive. Outputs are differentiable in the inputs, so attacks can use them.

    Attributes:
        modalities: The modality names the predictor expects in ``views``, in order.
    """

    modalities: tuple[str, ...]

    def predictive_logits(self, views: Views, num_samples: int = 1) -> Tensor:
        """Per-draw logits.

        Args:
            views: ``{m: (n, d_m)}`` inputs.
            num_samples: Number of posterior draws s (ignored by deterministic models, which give s = 1).

        Returns:
            A `(s, n, c)` tensor of logits.
        """
        ...


@runtime_checkable
class VacuityPredictor(Predictor, Protocol):
    """A predictor that also reports the vacuity of its (combined) subjective opinion (``tmc``, ``rcml``).

    Evaluation scores it beside predictive entropy and mutual information (``auroc_vacuity``).
    """

    def vacuity(self, views: Views) -> Tensor:
        """The uncertainty mass ``u = c / S`` of the combined Dirichlet opinion.

        Args:
            views: ``{m: (n, d_m)}`` inputs.

        Returns:
            A `(n,)` tensor in (0, 1], differentiable in the inputs.
        """
        ...


@runtime_checkable
class PartialViewPredictor(Predictor, Protocol):
    """A predictor that can combine only the modalities it is given (late fusion of opinions: ``tmc``, ``rcml``).

    ``probfusion predict`` uses it for a row with a modality missing instead of imputing that modality.
    """

    def partial_predictive_logits(self, views: Views) -> Tensor:
        """``(s, n, c)`` logits from the modalities that ``views`` holds (at least one)."""
        ...
