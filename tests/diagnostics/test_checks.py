"""R-hat/ESS summary, the variational Pareto-k (its densities against Pyro's), PSIS-LOO and LOO comparison."""

import dataclasses

import numpy as np
import pyro
import pyro.poutine as poutine
import pytest
import torch

from probfusion.api import load_run
from probfusion.diagnostics import compare_runs, convergence_summary, loo_check, posterior, variational_pareto_k
from probfusion.diagnostics._arviz import az
from probfusion.diagnostics.checks import (
    _log_guide,
    _log_joint,
    component_identifiability,
    divergence_check,
    pareto_k_threshold,
    training_fingerprint,
)
from probfusion.diagnostics.inference_data import build_inference_data
from probfusion.diagnostics.posterior import split_latents
from probfusion.errors import ConfigError
from tests.diagnostics.helpers import repaired_run


def test_log_joint_equals_pyros_trace_of_the_model(runs):
    run = load_run(runs["svi"])
    latents, labels = split_latents(run, "train")
    with torch.no_grad():
        draws = run.model.posterior_draws(3, torch.Generator().manual_seed(0))
        ours = _log_joint(run, draws, latents, labels)
        for k in range(3):
            sites = {name: value[k] for name, value in draws.items()}
            trace = poutine.trace(poutine.condition(run.model.head, data=sites)).get_trace(latents, labels)
            assert float(ours[k]) == pytest.approx(float(trace.log_prob_sum()), rel=1e-5)


def test_log_guide_is_the_lognormal_normal_density_of_the_draws(runs):
    run = load_run(runs["svi"])
    guide = run.model.guide
    with torch.no_grad():
        draws = run.model.posterior_draws(4, torch.Generator().manual_seed(1))
    means = guide.means()
    scales = {k: v[0] for k, v in guide.unpack(guide.scale().unsqueeze(0), constrain=False).items()}
    expected = torch.zeros(4)
    for name, value in draws.items():
        loc, scale = means[name], scales[name]
        d = pyro.distributions
        family = d.LogNormal(loc.log(), scale) if name == "precision" else d.Normal(loc, scale)
        expected = expected + family.log_prob(value).reshape(4, -1).sum(-1)
    with torch.no_grad():
        assert torch.allclose(_log_guide(run, draws), expected, rtol=1e-5)


def test_variational_pareto_k_spells_out_its_conclusion(runs, nuts_run):
    out = variational_pareto_k(runs["svi"], num_draws=100)
    assert out["num_draws"] == 100
    assert out["threshold"] == pytest.approx(pareto_k_threshold(100))
    assert out["passed"] == (out["k"] <= out["threshold"])
    assert "variational Pareto k" in out["conclusion"]
    assert 1.0 <= out["ess"] <= 100.0
    with pytest.raises(ConfigError, match="fitted by nuts"):
        variational_pareto_k(nuts_run)


def _invariant_idata(values: np.ndarray) -> az.InferenceData:
    """InferenceData with the label-invariant variables; ``values`` `(chain, draw, 2)` feed sorted_precision."""
    chains, draws, _ = values.shape
    rng = np.random.default_rng(9)
    return build_inference_data(
        {
            "sorted_precision": values,
            "sorted_variance_share": rng.dirichlet([2.0, 1.0], size=(chains, draws)),
            "effective_rank": np.full((chains, draws), 2),  # constant: left out of R-hat, as documented
            "bias": rng.normal(size=(chains, draws, 2)),
        },
        dims={"sorted_precision": ["rank_order"], "sorted_variance_share": ["rank_order"], "bias": ["output"]},
        coords={"rank_order": [0, 1], "output": [0, 1]},
    )


def test_convergence_summary_passes_mixed_chains_and_fails_stuck_ones():
    rng = np.random.default_rng(0)
    mixed = rng.normal(size=(4, 500, 2))
    table, out = convergence_summary(_invariant_idata(mixed))
    assert out["chains"] == 4
    assert out["draws"] == 500
    assert out["max_r_hat"] <= 1.01
    assert out["min_ess_bulk"] >= 400
    assert out["min_ess_tail"] >= 400
    assert out["passed"] is True
    assert "converged" in out["conclusion"]
    assert "NOT" not in out["conclusion"]
    stuck = mixed + np.array([0.0, 0.0, 3.0, 3.0])[:, None, None]  # two chains stuck in another mode
    table, out = convergence_summary(_invariant_idata(stuck))
    assert out["max_r_hat"] > 1.01
    assert float(table.loc["sorted_precision[0]", "r_hat"]) > 1.5
    assert out["passed"] is False
    assert "NOT converged" in out["conclusion"]


def test_convergence_summary_reports_rhat_and_ess_for_chains_only(runs, nuts_run):
    table, out = convergence_summary(posterior(nuts_run))
    assert {"r_hat", "ess_bulk", "ess_tail"} <= set(table.columns)
    assert any(i.startswith("sorted_precision") for i in table.index)
    assert not any(i.startswith("factor") for i in table.index)  # raw sites are label-dependent
    assert out["chains"] == 2
    assert "R-hat" in out["conclusion"]
    table, out = convergence_summary(posterior(runs["svi"], num_draws=30))
    assert "r_hat" not in table.columns
    assert out["passed"] is None


def test_loo_and_comparison(runs):
    idata = posterior(runs["svi"], num_draws=60)
    out = loo_check(idata)
    assert out["elpd_loo"] < 0
    assert out["n"] == idata.observed_data["y"].size
    assert 0.0 <= out["share_k_high"] <= 1.0
    assert "PSIS-LOO" in out["conclusion"]
    with pytest.raises(ConfigError, match="at least two runs"):
        compare_runs({"one": runs["svi"]})
    with pytest.raises(ConfigError, match="different training rows"):
        compare_runs({"a": runs["svi"], "b": runs["svi-seed1"]}, num_draws=30)
    table = compare_runs({"a": runs["svi"], "b": load_run(runs["svi"])}, num_draws=30, seed=0)
    assert set(table.index) == {"a", "b"}
    assert table["weight"].sum() == pytest.approx(1.0)
    given = compare_runs({"a": runs["svi"], "b": runs["svi"]}, posteriors={"a": idata}, num_draws=30, seed=0)
    assert given.loc["a", "elpd_loo"] == pytest.approx(out["elpd_loo"])  # the given posterior is used as is


def test_comparison_refuses_runs_with_the_same_labels_but_other_inputs(runs, tmp_path):
    other = repaired_run(runs["svi"], tmp_path / "svi-repaired")
    first, second = load_run(runs["svi"]).splits()[0], load_run(other).splits()[0]
    assert np.array_equal(first.labels, second.labels)  # what the old, label-only check compared
    assert not np.array_equal(first.views["b"], second.views["b"])
    assert training_fingerprint(load_run(runs["svi"])) != training_fingerprint(load_run(other))
    with pytest.raises(ConfigError, match="different training rows"):
        compare_runs({"a": runs["svi"], "b": other}, num_draws=30)


def test_divergence_check_reads_the_fit_record(runs, nuts_run):
    old = divergence_check(nuts_run)  # its metrics come from an SVI fit: no divergences recorded
    assert old["divergences"] is None
    assert old["passed"] is None
    assert "not recorded" in old["conclusion"]
    metrics = {**nuts_run.metrics, "nuts_divergences": 3, "nuts_divergences_per_chain": [0, 3]}
    out = divergence_check(dataclasses.replace(nuts_run, metrics=metrics))
    assert (out["divergences"], out["passed"], out["draws"]) == (3, False, 60)
    assert "3 divergent transitions" in out["conclusion"]
    assert "non-centred" in out["conclusion"]
    clean = divergence_check(dataclasses.replace(nuts_run, metrics={**metrics, "nuts_divergences_per_chain": [0, 0]}))
    assert clean["passed"] is True
    with pytest.raises(ConfigError, match="not sampled with NUTS"):
        divergence_check(load_run(runs["svi"]))


def test_invariant_summary_covers_probe_probabilities_and_the_log_likelihood(nuts_run):
    idata = posterior(nuts_run)
    assert idata.posterior["probe_probability"].shape[2:] == (4, 2)
    total = idata.log_likelihood["y"].sum("obs")
    assert np.allclose(idata.posterior["log_likelihood_total"], total)
    table, _ = convergence_summary(idata)
    assert "log_likelihood_total" in table.index
    assert any(i.startswith("probe_probability") for i in table.index)


def test_component_identifiability_tells_relabelled_chains_apart():
    rng = np.random.default_rng(1)
    shares = np.stack([rng.beta(8, 2, size=(2, 300)), rng.beta(1, 20, size=(2, 300))], axis=-1)

    def idata(values):
        return build_inference_data(
            {"variance_share": values}, dims={"variance_share": ["component"]}, coords={"component": [0, 1]}
        )

    same = component_identifiability(idata(shares))
    assert same["identifiable"] is True
    assert same["max_r_hat"] < 1.05
    swapped = shares.copy()
    swapped[1] = swapped[1, :, ::-1]  # chain 1 calls the big component 1
    out = component_identifiability(idata(swapped))
    assert out["identifiable"] is False
    assert "left out" in out["conclusion"]
    assert component_identifiability(idata(shares[:1]))["max_r_hat"] is None
