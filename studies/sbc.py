"""Simulation-based calibration of the Bayesian LMF head: NUTS (non-centred) and SVI (mean-field).

Hypothesis: NUTS on the head is calibrated, so the SBC ranks (Talts et al. 2018) of label-invariant quantities
are uniform (chi-square test over 10 bins, p > 0.01 for each quantity); mean-field SVI is not (its posterior
is too narrow), and the same statistic says how far it is from uniform.

Set-up: a small head (M = 2 modalities, d_m = 1, max rank 2, 2 classes, ARD with Gamma(1, 1)) on n = 20 fixed
inputs z_m ~ N(0, 1). Each simulation draws the head's parameters from its prior and the labels from the
model (Pyro's trace of the head with no labels), then fits the posterior by NUTS (non-centred, one chain of
60 warm-up and 38 kept steps, tree depth at most 5, every second draw kept: L = 19 draws) and by SVI (the
library's mean-field guide with its periodic re-expression, 500 steps, L = 19 independent guide draws), and
ranks the true value among the draws for: the two
precisions sorted by value, and the logit difference log p(y=1)/p(y=0) at three fixed probe inputs. Every
quantity is a function of the parameters that no relabelling of the components changes, which SBC needs
(raw factors are sign- and permutation-ambiguous). Divergent transitions are counted per fit.

Two worker processes share the simulations (results do not depend on the split: each simulation is seeded by
its index). L is small because Pyro's NUTS costs about 0.1 s per iteration here; SBC's power comes from the
number of simulations, and L + 1 = 20 ranks fall into 10 bins of 2.

Run: ``python studies/sbc.py`` (100 simulations: about 70 minutes on 2 shared cores); ``--seeds N`` sets the
number of simulations; ``--smoke`` for seconds. Results: ``studies/results/sbc/`` (``results.csv`` one row
per simulation with every rank, ``summary.json`` with the counts and p-values, ``table.md``, ``ranks.png``).
"""

from __future__ import annotations

import sys
import time
from concurrent.futures import ProcessPoolExecutor
from functools import partial
from pathlib import Path

import pyro
import torch
from pyro import poutine

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import markdown_table, output_dir, parse_args, write_figure, write_results
from matplotlib.figure import Figure

from probfusion.diagnostics.sbc import rank_statistic, rank_uniformity
from probfusion.fusion.bayesian_lmf import BayesianLowRankFusion, HeadGuide, head_logits
from probfusion.inference.mcmc import run_nuts_head
from probfusion.inference.svi import fit_svi

N, DIM, RANK, CLASSES, PROBES = 20, 1, 2, 2, 3
QUANTITIES = [*(f"precision_sorted_{i}" for i in range(RANK)), *(f"probe_logit_{j}" for j in range(PROBES))]
METHODS = ("nuts", "svi")
P_MIN = 0.01
WORKERS = 2


def quantities(sites: dict[str, torch.Tensor], probes: list[torch.Tensor]) -> torch.Tensor:
    """The label-invariant quantities of `(s, ...)` draws: an `(s, q)` tensor (sorted precisions, probe logits)."""
    logits = head_logits(probes, sites)  # (s, probes, 2)
    return torch.cat([sites["precision"].sort(-1).values, logits[..., 1] - logits[..., 0]], dim=-1)


def simulate(head: BayesianLowRankFusion, latents: list[torch.Tensor], seed: int) -> tuple[dict, torch.Tensor]:
    """Parameters from the prior and labels from the model, seeded (the caller's RNG is untouched)."""
    with torch.random.fork_rng(devices=[]), torch.no_grad():
        torch.manual_seed(seed)
        trace = poutine.trace(head).get_trace(latents)
    sites = {name: trace.nodes[name]["value"].unsqueeze(0) for name in head.site_shapes()}
    return sites, trace.nodes["obs"]["value"]


def one_simulation(sim: int, smoke: bool, latents: list, probes: list) -> dict:
    """Simulate, fit both ways and rank the truth."""
    head = BayesianLowRankFusion(input_dims=[DIM, DIM], rank=RANK, num_classes=CLASSES).double()
    true_sites, labels = simulate(head, latents, seed=10_000 + sim)
    true = quantities(true_sites, probes)[0]
    draws = 9 if smoke else 19
    row: dict = {"simulation": sim, "labels_ones": int(labels.sum())}
    started = time.perf_counter()
    nuts = run_nuts_head(
        head,
        latents,
        labels,
        num_warmup=10 if smoke else 60,
        num_draws=2 * draws,
        num_chains=1,
        seed=sim,
        max_tree_depth=4 if smoke else 5,
    )
    thinned = {k: v[0, 1::2] for k, v in nuts.draws.items()}  # every second draw: L near-independent draws
    row.update(nuts_divergences=nuts.divergences[0], nuts_seconds=round(time.perf_counter() - started, 2))
    started = time.perf_counter()
    pyro.clear_param_store()
    guide = HeadGuide(model=head, guide="mean-field").double()
    fit_svi(
        head,
        guide,
        latents,
        labels,
        steps=30 if smoke else 500,
        learning_rate=0.03,
        batch_size=N,
        seed=sim,
        realign_every=50,
    )
    with torch.no_grad():
        svi = guide.sample(draws, generator=torch.Generator().manual_seed(sim))
    row["svi_seconds"] = round(time.perf_counter() - started, 2)
    for method, sites in (("nuts", thinned), ("svi", svi)):
        with torch.no_grad():
            ranks = rank_statistic(true, quantities(sites, probes))
        row.update({f"{method}_{q}": int(r) for q, r in zip(QUANTITIES, ranks, strict=True)})
    return row


def figure(rows: list[dict], draws: int, bins: int) -> Figure:
    """Rank histograms, one panel per (method, quantity), with the uniform count and its 99% band."""
    fig = Figure(figsize=(2.4 * len(QUANTITIES), 4.4))
    axes = fig.subplots(len(METHODS), len(QUANTITIES), squeeze=False)
    expected = len(rows) / bins
    band = 2.576 * (expected * (1 - 1 / bins)) ** 0.5
    for i, method in enumerate(METHODS):
        for j, q in enumerate(QUANTITIES):
            ax = axes[i][j]
            ax.hist([r[f"{method}_{q}"] for r in rows], bins=bins, range=(0, draws + 1), color="0.6")
            ax.axhspan(max(expected - band, 0), expected + band, color="tab:blue", alpha=0.15)
            ax.axhline(expected, color="tab:blue", lw=1)
            ax.set_title(f"{method}: {q}", fontsize=8)
            ax.tick_params(labelsize=7)
    fig.suptitle("SBC ranks (uniform if calibrated; band: 99% for one bin)", fontsize=9)
    fig.tight_layout()
    return fig


def main() -> None:
    """Run the simulations and test the ranks for uniformity."""
    args = parse_args(__doc__.splitlines()[0], default_seeds=100)
    out = output_dir(__file__, args)
    simulations = 2 if args.smoke else args.seeds
    draws, bins = (9, 5) if args.smoke else (19, 10)
    g = torch.Generator().manual_seed(0)
    latents = [torch.randn(N, DIM, generator=g, dtype=torch.float64) for _ in range(2)]
    probes = [torch.randn(PROBES, DIM, generator=g, dtype=torch.float64) for _ in range(2)]
    work = partial(one_simulation, smoke=args.smoke, latents=latents, probes=probes)
    if args.smoke:
        rows = [work(sim) for sim in range(simulations)]
    else:
        with ProcessPoolExecutor(max_workers=WORKERS) as pool:
            rows = []
            for row in pool.map(work, range(simulations)):
                rows.append(row)
                print(f"simulation {len(rows)}/{simulations}: {row}", file=sys.stderr, flush=True)
    tests = {
        method: {
            q: rank_uniformity(torch.tensor([r[f"{method}_{q}"] for r in rows]), num_draws=draws, bins=bins)
            for q in QUANTITIES
        }
        for method in METHODS
    }
    divergences = [r["nuts_divergences"] for r in rows]
    summary = {
        "simulations": simulations,
        "draws_per_fit": draws,
        "bins": bins,
        "p_min": P_MIN,
        "setup": {"n": N, "dim": DIM, "rank": RANK, "classes": CLASSES, "probes": PROBES, "prior": [1.0, 1.0]},
        "tests": tests,
        "nuts_divergences_total": int(sum(divergences)),
        "nuts_fits_with_divergences": int(sum(d > 0 for d in divergences)),
        "verdict": {
            method: "uniform" if all(t["p_value"] > P_MIN for t in tests[method].values()) else "not uniform"
            for method in METHODS
        },
        "nuts_seconds_mean": sum(r["nuts_seconds"] for r in rows) / simulations,
        "svi_seconds_mean": sum(r["svi_seconds"] for r in rows) / simulations,
    }
    table = markdown_table(
        ["quantity", *(f"{m} chi2 (dof {bins - 1})" for m in METHODS), *(f"{m} p" for m in METHODS)],
        [
            [q, *(f"{tests[m][q]['chi2']:.1f}" for m in METHODS), *(f"{tests[m][q]['p_value']:.3g}" for m in METHODS)]
            for q in QUANTITIES
        ],
    )
    table += (
        f"\n{simulations} simulations, L = {draws} draws per fit, {bins} bins. NUTS divergences: "
        f"{summary['nuts_divergences_total']} in total, in {summary['nuts_fits_with_divergences']} fits. "
        f"Verdict (p > {P_MIN} for every quantity): NUTS {summary['verdict']['nuts']}, "
        f"SVI {summary['verdict']['svi']}.\n"
    )
    write_results(out, rows, summary, table)
    write_figure(out, "ranks.png", figure(rows, draws, bins))
    print(table)


if __name__ == "__main__":
    main()
