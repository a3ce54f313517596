"""Matplotlib figures for evaluations and studies, returned as PNG bytes (no pyplot, no global state).

Each function draws one figure on a fresh :class:`matplotlib.figure.Figure` with the Agg canvas, so it is safe
in threads and in headless runs, and returns the PNG so the caller decides where (and how atomically) it lands.
"""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from probfusion.metrics.calibration import ReliabilityBins

__all__ = ["entropy_histograms", "metric_curves", "optimization_history", "reliability_diagram"]

_DPI = 120


def _png(figure: Figure) -> bytes:
    FigureCanvasAgg(figure)
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=_DPI, bbox_inches="tight")
    return buffer.getvalue()


def metric_curves(
    curves: Mapping[str, tuple[Sequence[float], Sequence[float]]],
    *,
    xlabel: str,
    ylabel: str,
    title: str,
    marker: str | None = "o",
) -> bytes:
    """One line per curve of a metric against a budget or severity.

    Args:
        curves: ``{label: (x values, y values)}``; each curve in increasing x.
        xlabel: The x axis' label, with its unit.
        ylabel: The y axis' label.
        title: The figure's title.
        marker: The point marker (None for dense curves such as risk-coverage).

    Returns:
        The PNG.
    """
    figure = Figure(figsize=(5.5, 3.8))
    axes = figure.add_subplot()
    for label, (x, y) in curves.items():
        axes.plot(x, y, marker=marker, label=label)
    axes.set_xlabel(xlabel)
    axes.set_ylabel(ylabel)
    axes.set_title(title)
    axes.grid(alpha=0.3)
    if curves:
        axes.legend(fontsize="small")
    return _png(figure)


def reliability_diagram(bins: Mapping[str, ReliabilityBins], *, title: str) -> bytes:
    """Accuracy against confidence per bin, one panel per input set (clean, attacked, ...), with the diagonal.

    Args:
        bins: ``{label: reliability bins}``, for example ``{"clean": ..., "pgd eps=0.2": ...}``.
        title: The figure's title.

    Returns:
        The PNG.
    """
    figure = Figure(figsize=(3.6 * max(len(bins), 1), 3.6))
    for k, (label, b) in enumerate(bins.items()):
        axes = figure.add_subplot(1, len(bins), k + 1)
        edges = b.edges.detach().cpu().numpy()
        width = np.diff(edges)
        accuracy = np.nan_to_num(b.accuracy.detach().cpu().numpy())
        confidence = b.confidence.detach().cpu().numpy()
        axes.bar(edges[:-1], accuracy, width=width, align="edge", edgecolor="black", alpha=0.7, label="accuracy")
        confidence = np.where(np.isnan(confidence), accuracy, confidence)  # empty bins: no gap drawn
        axes.bar(
            edges[:-1],
            np.abs(confidence - accuracy),
            bottom=np.minimum(confidence, accuracy),
            width=width,
            align="edge",
            color="red",
            alpha=0.25,
            label="gap to confidence",
        )
        axes.plot([0, 1], [0, 1], linestyle="--", color="gray")
        axes.set_xlim(0, 1)
        axes.set_ylim(0, 1)
        axes.set_xlabel("confidence")
        axes.set_ylabel("accuracy" if k == 0 else "")
        axes.set_title(f"{label} (n={int(b.count.sum())})", fontsize="small")
        if k == 0:
            axes.legend(fontsize="small", loc="upper left")
    figure.suptitle(title)
    return _png(figure)


def entropy_histograms(scores: Mapping[str, np.ndarray], *, xlabel: str, title: str) -> bytes:
    """Overlaid, density-normalised histograms of an uncertainty score per input set.

    Args:
        scores: ``{label: (n,) scores}``, for example predictive entropy of clean and attacked inputs.
        xlabel: The score's name and unit.
        title: The figure's title.

    Returns:
        The PNG.
    """
    figure = Figure(figsize=(5.5, 3.8))
    axes = figure.add_subplot()
    values = [np.asarray(v, dtype=np.float64).ravel() for v in scores.values()]
    finite = np.concatenate(values) if values else np.zeros(1)
    high = float(finite.max()) if finite.size and finite.max() > 0 else 1.0
    edges = np.linspace(0.0, high, 31)
    for label, v in zip(scores, values, strict=True):
        axes.hist(v, bins=edges, density=True, alpha=0.5, label=label)
    axes.set_xlabel(xlabel)
    axes.set_ylabel("density")
    axes.set_title(title)
    if scores:
        axes.legend(fontsize="small")
    return _png(figure)


def optimization_history(
    complete: Sequence[tuple[int, float]], pruned: Sequence[tuple[int, float]], *, ylabel: str, title: str
) -> bytes:
    """A search's objective per trial (lower is better) with the best value so far.

    Args:
        complete: ``(trial number, objective)`` of the complete trials.
        pruned: ``(trial number, last reported value)`` of the pruned trials that reported one.
        ylabel: The objective's name.
        title: The figure's title.

    Returns:
        The PNG.
    """
    figure = Figure(figsize=(5.5, 3.8))
    axes = figure.add_subplot()
    complete = sorted(complete)
    if complete:
        numbers, values = zip(*complete, strict=True)
        axes.scatter(numbers, values, s=18, label="complete trial")
        axes.step(numbers, np.minimum.accumulate(values), where="post", color="red", label="best so far")
    if pruned:
        numbers, values = zip(*sorted(pruned), strict=True)
        axes.scatter(numbers, values, s=18, marker="x", color="gray", label="pruned (last reported)")
    axes.set_xlabel("trial")
    axes.set_ylabel(ylabel)
    axes.set_title(title)
    axes.grid(alpha=0.3)
    if complete or pruned:
        axes.legend(fontsize="small")
    return _png(figure)
