"""What ``probfusion predict`` needs from the training data, computed once at fit time and stored with the run.

Two things: the predictive entropies of the validation rows (the flag threshold for any target coverage is a
quantile of them) and a fixed sample of standardised training rows per modality (the donors a missing modality
is averaged over). Stored in ``weights.safetensors`` under ``reference.*`` (covered by the run's manifest), they
let a run predict new rows on a machine that has neither the training data nor its file.
"""

from __future__ import annotations

import torch
from torch import Tensor

from probfusion.fusion.protocol import Predictor
from probfusion.inference.data import TensorData
from probfusion.inference.predictive import SCORING_SEED_OFFSET, common_draw_probabilities
from probfusion.metrics.uncertainty import predictive_entropy

__all__ = ["DONORS", "PREFIX", "prediction_reference", "reference_tensors", "split_reference"]

DONORS = 32  # training rows a missing modality is averaged over (as in evaluate --shift missing)
PREFIX = "reference."


def prediction_reference(
    model: Predictor, train: TensorData, val: TensorData, *, samples: int, seed: int
) -> tuple[Tensor, dict[str, Tensor]]:
    """``(val_entropy (n_val,), {m: donors (K, d_m)})`` for a fitted model, on the CPU.

    The validation rows are scored under the draws ``predict`` uses (``seed + SCORING_SEED_OFFSET``); the
    K = :data:`DONORS` training rows are drawn jointly across modalities with a generator seeded by ``seed``.
    """
    draws = common_draw_probabilities(model, dict(val.views), samples, seed + SCORING_SEED_OFFSET)
    pick = torch.randperm(len(train), generator=torch.Generator().manual_seed(seed))[:DONORS]
    donors = {m: x[pick.to(x.device)].detach().cpu() for m, x in train.views.items()}
    return predictive_entropy(draws).double().cpu(), donors


def reference_tensors(reference: tuple[Tensor, dict[str, Tensor]]) -> dict[str, Tensor]:
    """The reference as flat ``reference.*`` tensors for a weights file (read back by :func:`split_reference`)."""
    val_entropy, donors = reference
    return {f"{PREFIX}val_entropy": val_entropy, **{f"{PREFIX}donor.{m}": x for m, x in donors.items()}}


def split_reference(tensors: dict[str, Tensor]) -> tuple[Tensor, dict[str, Tensor]] | None:
    """``(val_entropy, {m: donors})`` from a weights file's tensors, or None for runs stored without them."""
    if f"{PREFIX}val_entropy" not in tensors:
        return None
    donors = {k[len(PREFIX) + len("donor.") :]: v for k, v in tensors.items() if k.startswith(f"{PREFIX}donor.")}
    return tensors[f"{PREFIX}val_entropy"], donors
