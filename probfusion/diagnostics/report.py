"""Assemble a run's diagnostics and write them to ``RUN/report/`` in one piece.

Layout::

    <run>/report/
      report.md          everything below in words and tables, with each check's conclusion
      checks.json        effective rank posterior, convergence, NUTS divergences, variational Pareto-k (SVI, Laplace),
                         PSIS-LOO, whether the components are identifiable across chains
      summary.csv        az.summary of the label-invariant quantities (Bayesian runs)
      components.csv     one row per (component, modality): output share, modality share (90% interval)
      ablation.csv       one row per component: what removing it does on the test split

components.csv, ablation.csv and attributions.png are per-index tables: they are written only when component
i means the same component in every chain (:func:`~probfusion.diagnostics.checks.component_identifiability`).
      evaluations.csv    every evaluation under <run>/evaluations, one row per scored setting (if any)
      compare.csv        az.compare against the runs given to compare with (if any)
      figures/           trace.png and forest.png (Bayesian runs), attributions.png

A Bayesian run's posterior is drawn once (:func:`~probfusion.diagnostics.posterior.posterior`); the effective
rank, attributions, removals, Pareto-k and LOO comparison are all read from those draws. Everything is
computed before the folder is touched; it is written to a staging folder and renamed into place
(:func:`~probfusion.runs.atomic.staged_dir`), so a failure leaves no partial report, and an existing report is
replaced only with ``overwrite``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from probfusion.api import LoadedRun
from probfusion.diagnostics.checks import (
    compare_runs,
    component_identifiability,
    convergence_summary,
    divergence_check,
    loo_check,
    variational_pareto_k,
)
from probfusion.diagnostics.components import attribution_from_posterior, component_ablation, component_attributions
from probfusion.diagnostics.evaluations import evaluation_table
from probfusion.diagnostics.plots import attribution_map, forest_plot, trace_plot
from probfusion.diagnostics.posterior import (
    bayesian_model,
    draws_from_posterior,
    effective_rank_from_posterior,
    posterior,
    resolve_run,
)
from probfusion.errors import ConfigError, RunExistsError
from probfusion.fusion.bayesian_classifier import BayesianFusionClassifier
from probfusion.options import InferenceKind
from probfusion.runs.atomic import atomic_write_bytes, atomic_write_json, atomic_write_text, staged_dir
from probfusion.runs.lock import run_lock

__all__ = ["Report", "write_report"]

_EXISTS = "{target} already holds a report; pass --overwrite to replace it."


@dataclass(frozen=True, eq=False)
class Report:
    """A written report.

    Attributes:
        path: ``<run>/report``.
        text: The content of ``report.md``.
        checks: The content of ``checks.json``.
        figures: The PNG files written.
    """

    path: Path
    text: str
    checks: dict[str, Any]
    figures: tuple[Path, ...] = field(default=())


def _markdown(frame: pd.DataFrame, *, index: bool = False, digits: int = 3) -> str:
    """A GitHub markdown table (without the optional ``tabulate`` dependency of ``DataFrame.to_markdown``)."""
    frame = frame.reset_index() if index else frame

    def fmt(value: Any) -> str:
        return f"{value:.{digits}g}" if isinstance(value, float) else str(value)

    frame = frame.rename(columns={"index": ""})
    lines = ["| " + " | ".join(str(c) for c in frame.columns) + " |", "|" + "---|" * len(frame.columns)]
    lines += ["| " + " | ".join(fmt(v) for v in row) + " |" for row in frame.itertuples(index=False)]
    return "\n".join(lines) + "\n"


def _component_table(components: pd.DataFrame, ablation: pd.DataFrame) -> pd.DataFrame:
    wide = components.pivot(index="component", columns="modality", values="modality_share")
    wide.columns = [f"{m} share" for m in wide.columns]
    table = components.groupby("component")["component_share"].first().to_frame("output share").join(wide)
    table = table.join(ablation.set_index("component")[["accuracy_drop", "flip_rate", "total_variation"]])
    return table.sort_values("output share", ascending=False).reset_index()


def write_report(
    run: LoadedRun | Path | str,
    *,
    num_draws: int | None = None,
    seed: int = 0,
    compare: Mapping[str, LoadedRun | Path | str] | None = None,
    overwrite: bool = False,
) -> Report:
    """Compute a run's diagnostics and write ``<run>/report/``.

    Args:
        run: A loaded LMF run (Bayesian or deterministic) or its directory.
        num_draws: Posterior draws of an SVI run (NUTS: its stored draws).
        seed: Seed of the SVI draws.
        compare: Other Bayesian runs on the same training rows to rank by PSIS-LOO with this one (by name).
        overwrite: Replace an existing report.

    Returns:
        The report.

    Raises:
        ConfigError: For a run without rank components, ``compare`` given for a deterministic run, or a
            ``compare`` name equal to this run's folder name.
        RunExistsError: If a report exists and ``overwrite`` is false.
    """
    run = resolve_run(run)
    target = run.path / "report"
    if target.exists() and not overwrite:
        raise RunExistsError(_EXISTS.format(target=target))
    others = {name: resolve_run(other) for name, other in (compare or {}).items()}
    if run.path.name in others:
        raise ConfigError(
            f"A run to compare with is named {run.path.name!r}, like the reported run; give it another name."
        )
    for other in [run, *others.values()] if others else []:
        bayesian_model(other)  # fail on a run without a posterior before any work
    bayesian = isinstance(run.model, BayesianFusionClassifier)
    if bayesian:  # one posterior: every Bayesian read-out below comes from these draws
        idata = posterior(run, num_draws=num_draws, seed=seed)
        draws = draws_from_posterior(idata)
        attribution = attribution_from_posterior(idata)
        ablation_result = component_ablation(run, split="test", draws=draws)
    else:
        attribution = component_attributions(run, num_draws=num_draws, seed=seed)
        ablation_result = component_ablation(run, split="test")
    components = pd.DataFrame(attribution.rows())
    ablation = pd.DataFrame(ablation_result.rows())
    evaluations = evaluation_table(run)
    fusion = run.config.fusion
    title = f"# Report: {run.path.name}\n\n{fusion.model.value}, max rank {fusion.rank}, rank prior "
    lines = [
        title + f"{fusion.rank_prior.value}, data {run.config.data.name}, test accuracy "
        f"{run.metrics['test']['accuracy']:.4f}.\n"
    ]
    checks: dict[str, Any] = {}
    files: dict[str, str] = {}
    figures = {"attributions.png": attribution_map(attribution)}
    if bayesian:
        rank = effective_rank_from_posterior(idata)
        summary, convergence = convergence_summary(idata)
        checks.update(effective_rank=rank, convergence=convergence, loo=loo_check(idata))
        if run.config.bayes.inference is InferenceKind.NUTS:
            checks["divergences"] = divergence_check(run)
        else:  # an approximate q (SVI guide, Laplace Gaussian): how close to the posterior
            checks["variational_pareto_k"] = variational_pareto_k(run, draws=draws)
        checks["components"] = component_identifiability(idata)
        files["summary.csv"] = summary.to_csv()
        figures.update({"trace.png": trace_plot(idata), "forest.png": forest_plot(idata)})
        lo, hi = rank["effective_rank_interval"]
        lines.append(
            f"## Effective rank\n\n{rank['effective_rank']} (90% interval [{lo}, {hi}]) of {fusion.rank}, over "
            f"{rank['num_draws']} {idata.posterior.attrs['inference']} draws.\n"
        )
        lines.append("## Checks\n")
        names = ("convergence", "divergences", "variational_pareto_k", "loo", "components")
        lines += [f"- {checks[k]['conclusion']}" for k in names if k in checks]
        lines.append("\n## Posterior summary (label-invariant quantities)\n\n" + _markdown(summary, index=True))
        if others:
            table = compare_runs(
                {run.path.name: run, **others}, num_draws=num_draws, seed=seed, posteriors={run.path.name: idata}
            )
            files["compare.csv"] = table.to_csv()
            lines.append("## LOO comparison\n\n" + _markdown(table.drop(columns=["scale"]), index=True))
    else:
        checks["posterior"] = "deterministic run: one point estimate, no posterior diagnostics"
        lines.append("Deterministic run: attributions below are of the point estimate (one draw).\n")
    identifiable = checks.get("components", {}).get("identifiable", True)
    if identifiable:
        lines.append(
            "## Components\n\nShare of the output variance, each modality's Shapley share of the component's "
            "variance, and what removing the component does on the test split.\n\n"
            + _markdown(_component_table(components, ablation))
        )
    else:
        del figures["attributions.png"]
        lines.append(
            "## Components\n\nNot reported per index: the chains label the components differently, so component "
            "i pools different components (see the checks above). The sorted quantities in the summary are "
            "label-invariant.\n"
        )
    if len(evaluations):
        files["evaluations.csv"] = evaluations.to_csv(index=False)
        cols = [
            c
            for c in (
                "evaluation",
                "attack",
                "variant",
                "modality",
                "eps",
                "accuracy",
                "nll",
                "ece",
                "auroc_entropy",
                "auroc_mi",
            )
            if c in evaluations.columns
        ]
        lines.append("## Evaluations\n\n" + _markdown(evaluations[cols]))
    if identifiable:
        files["components.csv"] = components.to_csv(index=False)
        files["ablation.csv"] = ablation.to_csv(index=False)
    text = "\n".join(lines)
    _write(target, text, checks, files, figures, overwrite=overwrite)
    return Report(path=target, text=text, checks=checks, figures=tuple(target / "figures" / f for f in figures))


def _write(
    target: Path, text: str, checks: dict, files: dict[str, str], figures: dict[str, bytes], *, overwrite: bool
) -> None:
    with (
        run_lock(target.parent),
        staged_dir(target, overwrite=overwrite, exists_message=_EXISTS.format(target=target)) as staging,
    ):
        atomic_write_text(staging / "report.md", text)
        atomic_write_json(staging / "checks.json", checks)
        for name, content in files.items():
            atomic_write_text(staging / name, content)
        (staging / "figures").mkdir()
        for name, png in figures.items():
            atomic_write_bytes(staging / "figures" / name, png)
