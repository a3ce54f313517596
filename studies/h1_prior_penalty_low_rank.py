"""H1: does jWAE conditioning let low rank fit? LMF accuracy at ranks 1-8 with and without the prior penalty.

Hypothesis (DESIGN.md H1): accuracy at small r is higher with the jWAE prior penalty than without.

What "conditioning" means here: the prior penalty (sliced Wasserstein distance of each modality's aggregate
latent distribution q(z_m) to N(0, I), weight 1) pulls the latents towards centred, unit-scale, decorrelated
coordinates, so the second-moment matrix E[z~ z~^T] of LMF's input z~ = [z; 1] is close to the identity (a
condition number near 1) and every rank factor's projection w . z~ starts well scaled. Without it (prior
penalty off: reconstruction and alignment only) nothing fixes the latents' scale or correlation. The study
measures this mechanism beside the accuracy: the log10 condition number of E[z~ z~^T] on the test latents and
the latents' root mean square (1 under the prior), means over modalities.

For each split of av-digits (random; held-out speaker), rank r in {1, 2, 4, 8} and seed: fit deterministic LMF
twice, with the penalty (CLI defaults: SWD, weight 1) and without (``prior_penalty="none"``), everything else
equal (d = 16, h = 32, alignment 0.1, 60 epochs, early stopping). The two arms of one (split, seed) share the
split and initial weights, so they are compared paired (not the minibatch order after the first epoch: one
generator draws both the shuffles and the sliced-Wasserstein directions, which only the penalty arm uses).

Verdict rule (fixed before running). Pairing unit: one (split, seed). Per unit, the accuracy difference
(penalty - no penalty) averaged over the small ranks r in {1, 2}; mean over units and its standard error SE
(at least two units). **supported** if mean - 2 SE > 0; **refuted** if mean + 2 SE < 0.01 (a gain of one
accuracy point or more is ruled out); **inconclusive** otherwise. Reported beside it: the same difference at
r in {4, 8} (the hypothesis says the help matters at small rank), train accuracy (the "fit"), and the
condition numbers.

Run: ``python studies/h1_prior_penalty_low_rank.py`` (64 fits of about 7 s each on an idle core: about 8
minutes; 17 minutes measured on 2 cores shared with other jobs; ``--seeds N``); ``--smoke`` for a seconds-long
check. Writes ``studies/results/h1_prior_penalty_low_rank/`` (results.csv, summary.json with the verdict and the
numbers behind it, table.md, accuracy_vs_rank.png).
"""

from __future__ import annotations

import math
import tempfile
from pathlib import Path

import torch
from _common import markdown_table, mean_std, output_dir, paired_difference, parse_args, write_figure, write_results
from matplotlib.figure import Figure

from probfusion import DataConfig, FusionConfig, JWAEConfig, RunConfig, TrainConfig, fit, load_run
from probfusion.api import LoadedRun

RANKS = (1, 2, 4, 8)
SMALL, LARGE = (1, 2), (4, 8)
SPLITS = ("random", "speaker")
ARMS = {"penalty": JWAEConfig(), "no penalty": JWAEConfig(prior_penalty="none", prior_weight=0.0)}
MARGIN = 0.01  # one accuracy point: smaller gains count as none


def latent_conditioning(run: LoadedRun) -> tuple[float, float]:
    """Conditioning of the test latents: (log10 cond E[z~ z~^T] with z~ = [z; 1], root mean square of z).

    Both are means over modalities; the root mean square is 1 under the N(0, I) prior.
    """
    test = run.tensors(run.splits()[2])
    with torch.no_grad():
        latents = run.model.jwae.encode(test.views)
    conditions, scales = [], []
    for z in latents.values():
        lifted = torch.cat([z.double(), torch.ones(len(z), 1, dtype=torch.float64)], dim=1)
        eigenvalues = torch.linalg.eigvalsh(lifted.T @ lifted / len(z))
        conditions.append(math.log10(float(eigenvalues[-1] / eigenvalues[0].clamp_min(1e-300))))
        scales.append(float(z.double().pow(2).mean().sqrt()))
    return sum(conditions) / len(conditions), sum(scales) / len(scales)


def run_one(split: str, arm: str, rank: int, seed: int, scratch: Path, smoke: bool) -> dict:
    """Fit one LMF and return its row."""
    config = RunConfig(
        data=DataConfig(name="av-digits", split=split),
        jwae=ARMS[arm],
        fusion=FusionConfig(linear_pool=False, model="lmf", rank=rank),
        train=TrainConfig(epochs=2) if smoke else TrainConfig(),
        seed=seed,
        device="cpu",
    )
    run = load_run(fit(config, scratch / f"{split}-{arm.replace(' ', '_')}-r{rank}-s{seed}").path)
    condition, scale = latent_conditioning(run)
    return {
        "split": split,
        "arm": arm,
        "rank": rank,
        "seed": seed,
        "test_accuracy": run.metrics["test"]["accuracy"],
        "test_nll": run.metrics["test"]["nll"],
        "train_accuracy": run.metrics["train"]["accuracy"],
        "log10_condition_number": condition,
        "latent_rms": scale,
        "epochs_run": run.metrics["epochs_run"],
    }


def main() -> None:
    args = parse_args(__doc__.splitlines()[0], default_seeds=4)
    out = output_dir(__file__, args)
    splits, ranks = (("random",), (1, 4)) if args.smoke else (SPLITS, RANKS)
    small, large = [r for r in SMALL if r in ranks], [r for r in LARGE if r in ranks]
    seeds = list(range(1 if args.smoke else args.seeds))
    rows: list[dict] = []
    with tempfile.TemporaryDirectory() as scratch:
        for split in splits:
            for seed in seeds:
                for rank in ranks:
                    for arm in ARMS:
                        rows.append(run_one(split, arm, rank, seed, Path(scratch), args.smoke))
                        r = rows[-1]
                        print(
                            f"{split} seed {seed} r={rank} {arm}: test {r['test_accuracy']:.3f} "
                            f"train {r['train_accuracy']:.3f} log10 cond {r['log10_condition_number']:.2f}",
                            flush=True,
                        )

    def value(split: str, arm: str, rank: int, seed: int, key: str = "test_accuracy") -> float:
        return next(r[key] for r in rows if (r["split"], r["arm"], r["rank"], r["seed"]) == (split, arm, rank, seed))

    def unit_means(arm: str, rank_set: list[int], key: str = "test_accuracy") -> list[float]:
        return [
            sum(value(split, arm, r, seed, key) for r in rank_set) / len(rank_set) for split in splits for seed in seeds
        ]

    small_diff = paired_difference(unit_means("penalty", small), unit_means("no penalty", small))
    large_diff = paired_difference(unit_means("penalty", large), unit_means("no penalty", large))
    train_diff = paired_difference(
        unit_means("penalty", small, "train_accuracy"), unit_means("no penalty", small, "train_accuracy")
    )
    if small_diff["n"] < 2:
        verdict = "inconclusive"  # no spread from one unit
    elif small_diff["low"] > 0:
        verdict = "supported"
    elif small_diff["high"] < MARGIN:
        verdict = "refuted"
    else:
        verdict = "inconclusive"

    table_rows, per_rank = [], {}
    for split in splits:
        for rank in ranks:
            cells = []
            for arm in ARMS:
                test = mean_std([value(split, arm, rank, s) for s in seeds])
                train = mean_std([value(split, arm, rank, s, "train_accuracy") for s in seeds])
                cond = mean_std([value(split, arm, rank, s, "log10_condition_number") for s in seeds])
                rms = mean_std([value(split, arm, rank, s, "latent_rms") for s in seeds])
                cells += [f"{test[0]:.3f} ± {test[1]:.3f}", f"{train[0]:.3f}", f"{cond[0]:.2f}", f"{rms[0]:.2f}"]
                per_rank.setdefault(split, {}).setdefault(arm, {})[str(rank)] = {
                    "test_accuracy": test,
                    "train_accuracy": train,
                    "log10_condition_number": cond,
                    "latent_rms": rms,
                }
            diff = paired_difference(
                [value(split, "penalty", rank, s) for s in seeds], [value(split, "no penalty", rank, s) for s in seeds]
            )
            cells.append(f"{diff['mean']:+.3f} ± {2 * diff['se']:.3f}")
            table_rows.append([split, rank, *cells])
    summary = {
        "hypothesis": "H1: LMF accuracy at small rank is higher with the jWAE prior penalty than without",
        "conditioning": (
            "log10 condition number of E[z~ z~^T], z~ = [z; 1], and latent RMS, on test latents, mean over modalities"
        ),
        "data": "av-digits, random and held-out-speaker splits",
        "seeds": len(seeds),
        "ranks": list(ranks),
        "verdict_rule": (
            "unit (split, seed); test accuracy penalty - no penalty averaged over r in {1, 2}; supported if mean - "
            f"2 SE > 0; refuted if mean + 2 SE < {MARGIN}; inconclusive otherwise"
        ),
        "difference_small_ranks": small_diff,
        "difference_large_ranks": large_diff,
        "train_difference_small_ranks": train_diff,
        "per_rank": per_rank,
        "verdict": verdict,
    }
    table = markdown_table(
        [
            "split",
            "rank r",
            "test acc, penalty",
            "train acc, penalty",
            "log10 cond, penalty",
            "latent RMS, penalty",
            "test acc, no penalty",
            "train acc, no penalty",
            "log10 cond, no penalty",
            "latent RMS, no penalty",
            "paired diff (± 2 SE)",
        ],
        table_rows,
    )
    table += (
        f"\nPaired test-accuracy difference (penalty - no penalty), mean ± 2 SE over {small_diff['n']} "
        f"(split, seed) units: r in {{1, 2}} {small_diff['mean']:+.4f} ± {2 * small_diff['se']:.4f}; r in {{4, 8}} "
        f"{large_diff['mean']:+.4f} ± {2 * large_diff['se']:.4f}; train accuracy at r in {{1, 2}} "
        f"{train_diff['mean']:+.4f} ± {2 * train_diff['se']:.4f}. Verdict: **{verdict}**.\n"
    )
    figure = Figure(figsize=(5 * len(splits), 4))
    for k, split in enumerate(splits):
        axis = figure.add_subplot(1, len(splits), k + 1)
        for arm in ARMS:
            means = [per_rank[split][arm][str(r)]["test_accuracy"][0] for r in ranks]
            stds = [per_rank[split][arm][str(r)]["test_accuracy"][1] for r in ranks]
            axis.errorbar(ranks, means, yerr=stds, marker="o", capsize=3, label=arm)
        axis.set_xscale("log", base=2)
        axis.set_xticks(ranks, [str(r) for r in ranks])
        axis.set_xlabel("LMF rank r")
        axis.set_ylabel("test accuracy (mean ± sd over seeds)")
        axis.set_title(f"av-digits, {split} split")
        axis.legend()
    figure.suptitle(f"H1: jWAE prior penalty on vs off ({len(seeds)} seeds) — {verdict}")
    write_figure(out, "accuracy_vs_rank.png", figure)
    write_results(out, rows, summary, table)
    print(table)


if __name__ == "__main__":
    main()
