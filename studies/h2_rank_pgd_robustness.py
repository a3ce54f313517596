"""H2: is low rank a spectral regularizer? PGD robust accuracy of deterministic LMF against its rank r.

Hypothesis (DESIGN.md H2): robust accuracy under PGD improves as r shrinks, up to a point.

For r in {1, 2, 4, 8, 16, 32} and several seeds: fit deterministic LMF on av-digits (random split, CLI defaults
otherwise: jWAE with the sliced-Wasserstein prior, d = 16, h = 32, 60 epochs with early stopping), then attack
the test set with L-inf PGD (10 steps, random start, strongest iterate kept) on both modalities together at
budgets 0.05, 0.1 and 0.2 training standard deviations. Every rank of one seed shares that seed's split and
minibatch order, so ranks are compared paired by seed.

Verdict rule (fixed before running). Primary: robust accuracy at eps = 0.1. For each seed, the least-squares
slope of robust accuracy on log2(r) over r >= 2 (r = 1 is left out of the slope so that a turn at the smallest
rank, the "up to a point", does not mask a trend; it is reported beside). With the mean slope over seeds and
its standard error (SE) (at least two seeds; one seed is inconclusive): **supported** if mean + 2 SE < 0
(robust accuracy rises as r shrinks); **refuted** if mean - 2 SE > -0.005 (a rise of half a point or more per
halving of r is ruled out); **inconclusive** otherwise.
Reported beside it: clean accuracy, the same slope for the attack's accuracy drop (clean - robust), which
separates robustness from clean fit, and the rank with the best mean robust accuracy.

Run: ``python studies/h2_rank_pgd_robustness.py`` (36 fits and PGD evaluations, about 6 minutes on idle cores;
11 minutes measured on 2 cores shared with other jobs; ``--seeds N``); ``--smoke`` for a seconds-long check.
Writes ``studies/results/h2_rank_pgd_robustness/`` (results.csv, summary.json with the verdict and the numbers
behind it, table.md, robust_accuracy_vs_rank.png).
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
from _common import markdown_table, mean_std, output_dir, paired_difference, parse_args, write_figure, write_results
from matplotlib.figure import Figure

from probfusion import DataConfig, FusionConfig, RunConfig, TrainConfig, fit, load_run
from probfusion.config import EvaluationConfig
from probfusion.evaluation import evaluate

RANKS = (1, 2, 4, 8, 16, 32)
EPS = (0.05, 0.1, 0.2)
PRIMARY_EPS = 0.1
MARGIN = 0.005  # half an accuracy point per halving of r: smaller effects count as no effect


def run_one(rank: int, seed: int, scratch: Path, smoke: bool) -> list[dict]:
    """Fit LMF at ``rank`` and return one row per budget (eps 0 is the clean test accuracy)."""
    config = RunConfig(
        data=DataConfig(name="av-digits"),
        fusion=FusionConfig(linear_pool=False, model="lmf", rank=rank),
        train=TrainConfig(epochs=2) if smoke else TrainConfig(),
        seed=seed,
        device="cpu",
    )
    run = load_run(fit(config, scratch / f"r{rank}-s{seed}").path)
    report = evaluate(run, EvaluationConfig(attack="pgd", eps=EPS, modality="all", steps=2 if smoke else 10))
    return [
        {
            "rank": rank,
            "seed": seed,
            "eps": row["eps"],
            "accuracy": row["accuracy"],
            "nll": row["nll"],
            "ece": row["ece"],
            "fusion_parameters": run.metrics["fusion_parameters"],
            "epochs_run": run.metrics["epochs_run"],
        }
        for row in report.rows
    ]


def slope_on_log_rank(ranks: list[int], values: list[float]) -> float:
    """Least-squares slope of ``values`` on log2(rank): the change per doubling of r."""
    return float(np.polyfit(np.log2(ranks), values, 1)[0])


def main() -> None:
    args = parse_args(__doc__.splitlines()[0], default_seeds=6)
    out = output_dir(__file__, args)
    ranks = (1, 2, 4) if args.smoke else RANKS
    seeds = list(range(1 if args.smoke else args.seeds))
    rows: list[dict] = []
    with tempfile.TemporaryDirectory() as scratch:
        for seed in seeds:
            for rank in ranks:
                rows += run_one(rank, seed, Path(scratch), args.smoke)
                robust = next(r["accuracy"] for r in rows[::-1] if r["eps"] == PRIMARY_EPS)
                print(f"seed {seed} r={rank}: clean {rows[-len(EPS) - 1]['accuracy']:.3f}, pgd@0.1 {robust:.3f}")

    def acc(rank: int, seed: int, eps: float) -> float:
        return next(r["accuracy"] for r in rows if r["rank"] == rank and r["seed"] == seed and r["eps"] == eps)

    slope_ranks = [r for r in ranks if r >= 2]
    robust_slopes = [slope_on_log_rank(slope_ranks, [acc(r, s, PRIMARY_EPS) for r in slope_ranks]) for s in seeds]
    drop_slopes = [
        slope_on_log_rank(slope_ranks, [acc(r, s, 0.0) - acc(r, s, PRIMARY_EPS) for r in slope_ranks]) for s in seeds
    ]
    clean_slopes = [slope_on_log_rank(slope_ranks, [acc(r, s, 0.0) for r in slope_ranks]) for s in seeds]
    robust = paired_difference(robust_slopes, [0.0] * len(seeds))
    if len(seeds) < 2:
        verdict = "inconclusive"  # no spread from one seed
    elif robust["high"] < 0:
        verdict = "supported"
    elif robust["low"] > -MARGIN:
        verdict = "refuted"
    else:
        verdict = "inconclusive"

    table_rows, curves = [], {}
    for eps in (0.0, *EPS):
        means, stds = [], []
        for rank in ranks:
            mean, std = mean_std([acc(rank, s, eps) for s in seeds])
            means.append(mean)
            stds.append(std)
        curves[eps] = (means, stds)
    for k, rank in enumerate(ranks):
        params = next(r["fusion_parameters"] for r in rows if r["rank"] == rank)
        cells = [f"{curves[eps][0][k]:.3f} ± {curves[eps][1][k]:.3f}" for eps in (0.0, *EPS)]
        table_rows.append([rank, params, *cells])
    best_rank = ranks[int(np.argmax(curves[PRIMARY_EPS][0]))]
    summary = {
        "hypothesis": "H2: robust accuracy under PGD improves as the LMF rank r shrinks, up to a point",
        "data": "av-digits, random split",
        "attack": "L-inf PGD, 10 steps, random start, both modalities, budgets in training standard deviations",
        "seeds": len(seeds),
        "ranks": list(ranks),
        "primary_eps": PRIMARY_EPS,
        "verdict_rule": (
            "per-seed slope of PGD accuracy (eps 0.1) on log2 r over r >= 2; supported if mean + 2 SE < 0; "
            f"refuted if mean - 2 SE > -{MARGIN}; inconclusive otherwise"
        ),
        "slope_robust_accuracy_per_doubling": robust,
        "slope_clean_accuracy_per_doubling": paired_difference(clean_slopes, [0.0] * len(seeds)),
        "slope_attack_drop_per_doubling": paired_difference(drop_slopes, [0.0] * len(seeds)),
        "best_rank_robust_accuracy": best_rank,
        "mean_accuracy": {
            f"eps={eps:g}": {str(r): curves[eps][0][k] for k, r in enumerate(ranks)} for eps in (0.0, *EPS)
        },
        "verdict": verdict,
    }
    table = markdown_table(
        ["rank r", "fusion parameters", "clean accuracy", *[f"PGD eps {eps:g}" for eps in EPS]], table_rows
    )
    s, c, d = robust, summary["slope_clean_accuracy_per_doubling"], summary["slope_attack_drop_per_doubling"]
    table += (
        f"\nSlope per doubling of r (r >= 2), mean ± 2 SE over {len(seeds)} seeds: PGD accuracy at eps "
        f"{PRIMARY_EPS:g} {s['mean']:+.4f} ± {2 * s['se']:.4f}; clean accuracy {c['mean']:+.4f} ± {2 * c['se']:.4f}; "
        f"attack drop (clean - PGD) {d['mean']:+.4f} ± {2 * d['se']:.4f}. Best mean PGD accuracy at r = {best_rank}. "
        f"Verdict: **{verdict}**.\n"
    )
    figure = Figure(figsize=(6, 4))
    axis = figure.add_subplot()
    for eps, (means, stds) in curves.items():
        axis.errorbar(ranks, means, yerr=stds, marker="o", capsize=3, label="clean" if eps == 0 else f"PGD eps {eps:g}")
    axis.set_xscale("log", base=2)
    axis.set_xticks(ranks, [str(r) for r in ranks])
    axis.set_xlabel("LMF rank r")
    axis.set_ylabel("test accuracy (mean ± sd over seeds)")
    axis.set_title(f"H2 on av-digits: accuracy vs rank ({len(seeds)} seeds) — {verdict}")
    axis.legend()
    write_figure(out, "robust_accuracy_vs_rank.png", figure)
    write_results(out, rows, summary, table)
    print(table)


if __name__ == "__main__":
    main()
