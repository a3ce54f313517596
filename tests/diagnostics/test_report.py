"""The RUN/report folder: written whole, refuses to overwrite silently, works for deterministic LMF."""

import copy
import dataclasses
import importlib
import json
import shutil

import pandas as pd
import pytest
import torch

from probfusion.diagnostics import (
    attribution_map,
    component_ablation,
    component_attributions,
    effective_rank_posterior,
    forest_plot,
    posterior,
    trace_plot,
    variational_pareto_k,
)
from probfusion.diagnostics.plots import _invariant_view, _varying
from probfusion.diagnostics.report import write_report
from probfusion.errors import ConfigError, RunExistsError

posterior_module = importlib.import_module("probfusion.diagnostics.posterior")  # the package re-exports a function
checks_module = importlib.import_module("probfusion.diagnostics.checks")
components_module = importlib.import_module("probfusion.diagnostics.components")

PNG = b"\x89PNG\r\n\x1a\n"


def test_figures_are_png(runs, nuts_run):
    idata = posterior(nuts_run)
    for png in (trace_plot(idata), forest_plot(idata), attribution_map(component_attributions(nuts_run))):
        assert png.startswith(PNG)
        assert len(png) > 5000


def test_trace_plot_leaves_out_constant_quantities_without_a_warning(runs):
    """A Gaussian rank prior fixes the precisions: ArviZ's KDE would warn "single value" (an error under pytest)."""
    idata = posterior(runs["svi"], num_draws=40, log_likelihood_split=None)
    idata.posterior["sorted_precision"][:] = 1.0
    idata.posterior["sorted_variance_share"][..., -1] = 0.0  # a pruned share of exactly 0
    view, constant = _varying(_invariant_view(idata))
    assert constant == ["log10_sorted_precision"]
    assert view.sizes["rank_order"] == idata.posterior.sizes["rank_order"] - 1
    assert trace_plot(idata).startswith(PNG)
    idata.posterior["sorted_variance_share"][:] = 0.5
    idata.posterior["effective_rank"][:] = 2
    assert trace_plot(idata).startswith(PNG)  # nothing varies: a note instead of an empty grid


def test_report_draws_once_and_matches_the_standalone_readouts(runs, tmp_path, monkeypatch):
    run = shutil.copytree(runs["svi"], tmp_path / "svi")
    calls = []
    original = posterior_module.draw_posterior
    for module in (posterior_module, checks_module, components_module):  # every module that draws
        monkeypatch.setattr(module, "draw_posterior", lambda *a, **k: calls.append(1) or original(*a, **k))
    report = write_report(run, num_draws=40, seed=3)
    assert len(calls) == 1
    monkeypatch.undo()
    rank = effective_rank_posterior(run, num_draws=40, seed=3)
    assert report.checks["effective_rank"] == rank
    assert report.checks["variational_pareto_k"] == variational_pareto_k(run, num_draws=40, seed=3)
    components = pd.read_csv(report.path / "components.csv")
    expected = pd.DataFrame(component_attributions(run, num_draws=40, seed=3).rows())
    pd.testing.assert_frame_equal(components, expected, check_exact=False, rtol=1e-12)
    ablation = pd.read_csv(report.path / "ablation.csv")
    expected = pd.DataFrame(component_ablation(run, split="test", num_draws=40, seed=3).rows())
    pd.testing.assert_frame_equal(ablation, expected, check_exact=False, rtol=1e-12)


def test_a_compare_name_equal_to_the_run_is_refused(runs, tmp_path):
    run = shutil.copytree(runs["svi"], tmp_path / "svi")
    with pytest.raises(ConfigError, match="named 'svi', like the reported run"):
        write_report(run, num_draws=40, compare={"svi": runs["svi-seed1"]})
    assert not (run / "report").exists()


def test_bayesian_report_writes_every_file(runs, tmp_path):
    run = shutil.copytree(runs["svi"], tmp_path / "svi")
    report = write_report(run, num_draws=40)
    names = {p.name for p in report.path.iterdir()}
    assert {"report.md", "checks.json", "summary.csv", "components.csv", "ablation.csv", "figures"} <= names
    assert {p.name for p in (report.path / "figures").iterdir()} == {"trace.png", "forest.png", "attributions.png"}
    checks = json.loads((report.path / "checks.json").read_text())
    assert {"effective_rank", "convergence", "loo", "variational_pareto_k"} <= set(checks)
    assert "variational Pareto k" in report.text
    assert "## Components" in report.text
    with pytest.raises(RunExistsError, match="--overwrite"):
        write_report(run, num_draws=40)
    assert write_report(run, num_draws=40, overwrite=True).path == report.path
    assert not [p for p in run.iterdir() if p.name.startswith(".report")]  # no staging folders left
    assert (report.path.stat().st_mode & 0o777) == (run.stat().st_mode & 0o777)  # ordinary permissions


def test_deterministic_report_and_failures_leave_nothing(runs, tmp_path):
    det = shutil.copytree(runs["det"], tmp_path / "det")
    report = write_report(det)
    assert "Deterministic run" in report.text
    assert {p.name for p in (report.path / "figures").iterdir()} == {"attributions.png"}
    tfn = shutil.copytree(runs["tfn"], tmp_path / "tfn")
    with pytest.raises(ConfigError, match="no rank components"):
        write_report(tfn)
    assert sorted(p.name for p in tfn.iterdir()) == sorted(p.name for p in runs["tfn"].iterdir())


def test_nuts_report_states_divergences_and_leaves_out_unidentifiable_component_tables(nuts_run, tmp_path):
    model = copy.deepcopy(nuts_run.model)
    draws = {name: getattr(model, f"draws_{name}").clone() for name in model.head.site_shapes()}
    # Components of clearly different weight (the tiny SVI run's may be near copies), then chain 1 labels them
    # otherwise.
    draws["theta"] = draws["theta"] * torch.tensor([3.0, 1.0, 0.3])
    perm, half = torch.tensor([2, 0, 1]), draws["bias"].shape[0] // 2
    draws["precision"][half:] = draws["precision"][half:][:, perm]
    draws["theta"][half:] = draws["theta"][half:][:, :, perm]
    for k in range(len(model.modalities)):
        draws[f"factor_{k}"][half:] = draws[f"factor_{k}"][half:][:, perm]
    model.store_draws(draws)
    run = dataclasses.replace(
        nuts_run,
        path=shutil.copytree(nuts_run.path, tmp_path / "nuts"),
        model=model,
        metrics={**nuts_run.metrics, "nuts_divergences": 2, "nuts_divergences_per_chain": [2, 0]},
    )
    report = write_report(run)
    assert report.checks["divergences"]["divergences"] == 2
    assert "2 divergent transitions" in report.text
    assert report.checks["components"]["identifiable"] is False
    assert "Not reported per index" in report.text
    names = {p.name for p in report.path.iterdir()}
    assert "components.csv" not in names
    assert "ablation.csv" not in names
    assert "summary.csv" in names  # the label-invariant summary stays
