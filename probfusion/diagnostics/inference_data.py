"""The adapter to ArviZ's data model: the only place that builds an ``InferenceData``.

ArviZ 0.23 builds ``InferenceData`` with ``az.from_dict``; ArviZ 1.x replaces it with a ``DataTree`` and
``from_dict`` of another signature. Keeping every constructor call here means the move touches one file.

Every array carries ``(chain, draw, ...)`` in front, as ArviZ expects; the dims after them are named by the
caller (``component``, ``modality``, ``output``, ...).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from probfusion.diagnostics._arviz import az

__all__ = ["build_inference_data"]


def build_inference_data(
    posterior: Mapping[str, np.ndarray],
    *,
    dims: Mapping[str, Sequence[str]],
    coords: Mapping[str, Sequence[Any]],
    log_likelihood: Mapping[str, np.ndarray] | None = None,
    observed_data: Mapping[str, np.ndarray] | None = None,
    attrs: Mapping[str, Any] | None = None,
) -> az.InferenceData:
    """An ``InferenceData`` with ``posterior`` and, when given, ``log_likelihood`` and ``observed_data`` groups.

    Args:
        posterior: ``{name: (chain, draw, *shape)}`` arrays.
        dims: Names of the dims after ``(chain, draw)`` of every variable (and of the observed data).
        coords: Coordinate values of the named dims.
        log_likelihood: ``{name: (chain, draw, n)}`` pointwise log-likelihoods (named like the observed data).
        observed_data: ``{name: (n,)}`` observations.
        attrs: Attributes (strings and numbers), stored on the ``posterior`` group.

    Returns:
        The ``InferenceData``.
    """
    idata = az.from_dict(
        posterior={k: np.asarray(v) for k, v in posterior.items()},
        log_likelihood=None if log_likelihood is None else {k: np.asarray(v) for k, v in log_likelihood.items()},
        observed_data=None if observed_data is None else {k: np.asarray(v) for k, v in observed_data.items()},
        dims={k: list(v) for k, v in dims.items()},
        coords={k: list(v) for k, v in coords.items()},
    )
    idata.posterior.attrs.update(dict(attrs or {}))
    return idata
