"""Diagnostics: a run's posterior as ArviZ ``InferenceData``, and what to make of it.

Effective rank, component attributions and removals, convergence and PSIS checks, LOO comparison, figures
and the ``probfusion report`` folder.

Example:
    >>> from probfusion.diagnostics import posterior, component_attributions     # doctest: +SKIP
    >>> idata = posterior("runs/av-digits-lmf-r16")                              # doctest: +SKIP
    >>> idata.posterior["modality_share"].mean(("chain", "draw"))                # doctest: +SKIP
"""

from probfusion.diagnostics.attribution import (
    Ablation,
    Attribution,
    ablation_from_draws,
    ablation_from_lmf,
    attribution_from_draws,
    attribution_from_lmf,
    modality_shapley,
)
from probfusion.diagnostics.checks import compare_runs, convergence_summary, loo_check, variational_pareto_k
from probfusion.diagnostics.components import attribution_from_posterior, component_ablation, component_attributions
from probfusion.diagnostics.evaluations import evaluation_table
from probfusion.diagnostics.plots import attribution_map, forest_plot, trace_plot
from probfusion.diagnostics.posterior import (
    PosteriorDraws,
    draw_posterior,
    draws_from_posterior,
    effective_rank_from_posterior,
    effective_rank_posterior,
    posterior,
)
from probfusion.diagnostics.report import Report, write_report

__all__ = [
    "Ablation",
    "Attribution",
    "PosteriorDraws",
    "Report",
    "ablation_from_draws",
    "ablation_from_lmf",
    "attribution_from_draws",
    "attribution_from_lmf",
    "attribution_from_posterior",
    "attribution_map",
    "compare_runs",
    "component_ablation",
    "component_attributions",
    "convergence_summary",
    "draw_posterior",
    "draws_from_posterior",
    "effective_rank_from_posterior",
    "effective_rank_posterior",
    "evaluation_table",
    "forest_plot",
    "loo_check",
    "modality_shapley",
    "posterior",
    "trace_plot",
    "variational_pareto_k",
    "write_report",
]
