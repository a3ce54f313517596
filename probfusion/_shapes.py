"""Shape legend used in every docstring, and the type of a batch of named modalities.

Letters:
    n: samples (rows), paired across modalities.
    m: a modality; M: the number of modalities (M >= 2 for fusion; never hard-coded to two).
    d_m: feature width of modality m's input.
    d: latent width of the jWAE encoders (the same for every modality).
    r: LMF rank (number of rank components).
    h: fused width (output of the fusion layer, input of the classifier head).
    c: number of classes.
    s: posterior or predictive samples; sample dimensions come first, ``(s, n, c)``.

In ArviZ, draws are ``(chain, draw, ...)``.
"""

from __future__ import annotations

from collections.abc import Mapping

from torch import Tensor

__all__ = ["Views"]

Views = Mapping[str, Tensor]
"""Named modalities of one batch, ``{m: (n, d_m) tensor}``, in the model's modality order."""
