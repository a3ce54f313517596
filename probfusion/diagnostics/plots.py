"""Posterior figures as PNG bytes: ArviZ trace and forest plots, and the component x modality attribution map.

Figures are drawn on fresh :class:`matplotlib.figure.Figure` objects with the Agg canvas and their axes are
handed to ArviZ, so no pyplot state is created (safe in headless runs and threads), as in
:mod:`probfusion.plotting`.
"""

from __future__ import annotations

import io
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np
import xarray as xr
from matplotlib import MatplotlibDeprecationWarning
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from probfusion.diagnostics._arviz import az
from probfusion.diagnostics.attribution import Attribution

__all__ = ["attribution_map", "forest_plot", "trace_plot"]

_DPI = 110
_CONSTANT_SPREAD = 1e-9  # relative spread over draws below which an entry counts as constant


def _png(figure: Figure) -> bytes:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=_DPI, bbox_inches="tight")
    return buffer.getvalue()


def _arviz_plot(call: Callable[..., Any], *args: Any, **kwargs: Any) -> None:
    # ArviZ 0.23 passes matplotlib 3.11 an alias map in a deprecated form; the figure is unaffected.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", MatplotlibDeprecationWarning)
        call(*args, **kwargs)


def _figure(width: float, height: float) -> Figure:
    figure = Figure(figsize=(width, height))
    FigureCanvasAgg(figure)
    return figure


def _invariant_view(idata: az.InferenceData) -> xr.Dataset:
    """Label-invariant posterior quantities; precisions on a log10 scale (pruned ones reach 1e4 and beyond)."""
    post = idata.posterior
    return xr.Dataset(
        {
            "log10_sorted_precision": np.log10(post["sorted_precision"]),
            "sorted_variance_share": post["sorted_variance_share"],
            "effective_rank": post["effective_rank"],
        }
    )


def _varying(view: xr.Dataset) -> tuple[xr.Dataset, list[str]]:
    """The entries of ``view`` that vary over draws, and the names of the variables left out entirely.

    A constant entry (the fixed precisions of a Gaussian rank prior, a share of exactly 0, an effective rank
    that never moves) has no density to draw: ArviZ's KDE would warn and plot nothing. The trace plot draws one
    density per chain, so an entry must vary within every chain to be kept.
    """
    kept, constant = {}, []
    for name, values in view.data_vars.items():
        # NaN (non-finite values) counts as not varying; so does a spread of float rounding (log10 of fixed
        # precisions gathered in another order differs by 1e-14, where ArviZ's KDE fails as for a constant).
        spread = values.std("draw").min("chain").values
        scale = np.maximum(1.0, np.abs(values.mean(("chain", "draw")).values))
        varying = np.flatnonzero(np.atleast_1d(spread > _CONSTANT_SPREAD * scale))
        if len(varying) == 0:
            constant.append(str(name))
        elif spread.ndim == 0:
            kept[name] = values
        else:
            kept[name] = values.isel({values.dims[-1]: varying})
    return xr.Dataset(kept), constant


def trace_plot(idata: az.InferenceData) -> bytes:
    """ArviZ trace plot (density and trace per chain) of the label-invariant quantities that vary over draws.

    Args:
        idata: From :func:`~probfusion.diagnostics.posterior.posterior`.

    Returns:
        PNG bytes; the title names the variables left out because they are constant.
    """
    view, constant = _varying(_invariant_view(idata))
    title = f"{idata.posterior.attrs.get('inference', '')} posterior: label-invariant quantities"
    if constant:
        title += f" (constant, not shown: {', '.join(constant)})"
    rows = max(len(view.data_vars), 1)
    figure = _figure(11.0, 2.4 * rows)
    if view.data_vars:
        axes = np.array(figure.subplots(rows, 2, squeeze=False))
        _arviz_plot(az.plot_trace, view, axes=axes, compact=True, show=False)
    else:
        figure.text(0.5, 0.5, "every label-invariant quantity is constant over the draws", ha="center")
    figure.suptitle(title)
    figure.tight_layout()
    return _png(figure)


def forest_plot(idata: az.InferenceData, *, hdi_prob: float = 0.9) -> bytes:
    """ArviZ forest plot of sorted variance shares and log10 sorted precisions (one row per rank order).

    Args:
        idata: From :func:`~probfusion.diagnostics.posterior.posterior`.
        hdi_prob: Mass of the highest-density interval drawn.

    Returns:
        PNG bytes.
    """
    view = _invariant_view(idata)
    rank = view.sizes["rank_order"]
    figure = _figure(10.0, 1.0 + 0.3 * rank)
    left, right = figure.subplots(1, 2)
    for ax, name in ((left, "sorted_variance_share"), (right, "log10_sorted_precision")):
        _arviz_plot(az.plot_forest, view, var_names=[name], combined=True, hdi_prob=hdi_prob, ax=ax, show=False)
        ax.set_title(f"{name} ({int(100 * hdi_prob)}% HDI)")
    figure.tight_layout()
    return _png(figure)


def attribution_map(attribution: Attribution, *, title: str = "") -> bytes:
    """Heat map of each modality's share of each component (rows sorted by the component's output share).

    Args:
        attribution: From :func:`~probfusion.diagnostics.components.component_attributions`.
        title: Figure title.

    Returns:
        PNG bytes.
    """
    component = attribution.component_share.mean(0).numpy()
    share = attribution.modality_share.mean(0).numpy()
    order = np.argsort(-component)
    r, m = share.shape
    figure = _figure(1.6 + 1.1 * m, 1.2 + 0.35 * r)
    ax = figure.subplots()
    image = ax.imshow(share[order], vmin=0.0, vmax=1.0, cmap="viridis", aspect="auto")
    for row, i in enumerate(order):
        for col in range(m):
            value = share[i, col]
            ax.text(col, row, f"{value:.2f}", ha="center", va="center", color="w" if value < 0.6 else "k", fontsize=8)
    ax.set_xticks(range(m), labels=list(attribution.modalities))
    ax.set_yticks(range(r), labels=[f"c{i} ({100 * component[i]:.1f}%)" for i in order])
    ax.set_xlabel("modality")
    ax.set_ylabel("component (share of output variance)")
    ax.set_title(title or "modality share of each component's variance")
    figure.colorbar(image, ax=ax, fraction=0.05)
    return _png(figure)
