"""H3: do Bayesian rank factors give better uncertainty? ARD-LMF against deterministic LMF, paired by seed.

Hypothesis (DESIGN.md H3): lower ECE and NLL, and higher AUROC for telling attacked from clean inputs, than
the deterministic LMF at equal accuracy.

For each split of av-digits (random; held-out speaker) and seed: fit deterministic LMF at rank 16 and the
Bayesian LMF with ARD over max rank 16 (SVI, 64 posterior samples). The Bayesian run's first stage *is* the
deterministic run of the same seed (same config, same seed: identical encoders and factors), then its head gets
an ARD posterior on the frozen latents, so each pair differs only in the Bayesian head. Scored on the test set
(64 posterior samples for the Bayesian model): clean accuracy, NLL and ECE (15 bins); then L-inf attacks on
both modalities at eps 0.1 and 0.2 training standard deviations, PGD (10 steps) on the deterministic model and
EOT-PGD (8 fresh posterior samples per step) on the Bayesian one, and the AUROC of predictive entropy for
telling attacked from clean inputs. Also reported, not in the verdict: the AUROC of mutual information and an
adaptive EOT-PGD whose loss also lowers the mutual information (NLL - MI).

Verdict rule (fixed before running). Pairing unit: one (split, seed). Three paired differences, each signed so
that positive favours the Bayesian model: clean ECE (det - Bayes), clean NLL (det - Bayes), and AUROC of
entropy under the standard attack at eps 0.1 (Bayes - det). Each is "better" if mean - 2 SE > 0, "worse" if
mean + 2 SE < 0, "no difference" otherwise (SE over units, at least two). **supported** if all three are
better; **refuted** if any is worse; **inconclusive** otherwise. "At equal accuracy" is checked, not assumed:
the paired clean-accuracy difference is reported with its interval, and the verdict says when it excludes 0.

Run: ``python studies/h3_bayes_vs_det_uncertainty.py --workers 2`` (20 seeds, 40 units: four times the
10 units of the first run, whose intervals were about twice too wide to decide; ``--seeds N``); ``--smoke`` for a
seconds-long check. Writes
``studies/results/h3_bayes_vs_det_uncertainty/`` (results.csv, summary.json with the verdict and the numbers
behind it, table.md, paired_differences.png).
"""

from __future__ import annotations

import argparse
import math
import tempfile
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from _common import (
    FROZEN,
    markdown_table,
    mean_std,
    output_dir,
    paired_difference,
    parse_args,
    write_figure,
    write_results,
)
from matplotlib.figure import Figure

from probfusion import DataConfig, FusionConfig, RunConfig, TrainConfig, fit, load_run
from probfusion.config import BayesConfig, EvaluationConfig
from probfusion.evaluation import evaluate

SPLITS = ("random", "speaker")
RANK = 16
EPS = (0.1, 0.2)
PRIMARY_EPS = 0.1
MODELS = {
    "deterministic LMF": (FusionConfig(linear_pool=False, model="lmf", rank=RANK), "pgd"),
    "ARD-LMF": (FusionConfig(linear_pool=False, model="lmf", rank=RANK, rank_prior="ard"), "eot-pgd"),
}
# (name, row key, sign): sign +1 when a larger value of (Bayes - det) favours the Bayesian model.
CRITERIA = (("ECE", "clean_ece", -1), ("NLL", "clean_nll", -1), ("AUROC entropy @0.1", "auroc_entropy_0.1", +1))


def run_one(model: str, split: str, seed: int, scratch: Path, smoke: bool) -> dict:
    """Fit one model, attack it, and return its row of clean and attacked scores."""
    fusion, attack = MODELS[model]
    config = RunConfig(
        data=DataConfig(name="av-digits", split=split),
        fusion=fusion,
        train=TrainConfig(epochs=2) if smoke else TrainConfig(),
        bayes=BayesConfig(svi_steps=40, posterior_samples=8, train_encoders=False) if smoke else FROZEN,
        seed=seed,
        device="cpu",
    )
    run = load_run(fit(config, scratch / f"{split}-{fusion.rank_prior.value}-s{seed}").path)
    evaluation = EvaluationConfig(
        attack=attack,
        eps=EPS,
        modality="all",
        steps=2 if smoke else 10,
        samples=4 if smoke else 64,
        attack_samples=2 if smoke else 8,
        seed=seed,
    )
    report = evaluate(run, evaluation)
    clean = report.rows[0]
    row = {
        "model": model,
        "split": split,
        "seed": seed,
        "attack": attack,
        "clean_accuracy": clean["accuracy"],
        "clean_nll": clean["nll"],
        "clean_ece": clean["ece"],
        "clean_brier": clean["brier"],
        "effective_rank": run.metrics.get("effective_rank", RANK),
    }
    for eps in EPS:  # the adaptive attack exists for stochastic models only
        row[f"accuracy_{eps:g}_adaptive"] = row[f"auroc_entropy_{eps:g}_adaptive"] = math.nan
        row[f"auroc_mi_{eps:g}_adaptive"] = math.nan
    for r in report.rows[1:]:
        tag = f"{r['eps']:g}" if r["variant"] == "standard" else f"{r['eps']:g}_adaptive"
        row[f"accuracy_{tag}"] = r["accuracy"]
        row[f"auroc_entropy_{tag}"] = r["auroc_entropy"]
        row[f"auroc_mi_{tag}"] = r["auroc_mi"]
    return row


def _workers_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--workers", type=int, default=1, help="processes that share the fits (default 1)")


def _one_thread() -> None:
    """Worker initialiser: one torch thread per process, so ``--workers`` processes do not oversubscribe."""
    import torch

    torch.set_num_threads(1)


def classify(diff: dict[str, float]) -> str:
    """'better', 'worse' or 'no difference' for a difference signed so that positive favours Bayes."""
    if diff["n"] < 2:
        return "no difference"
    if diff["low"] > 0:
        return "better"
    if diff["high"] < 0:
        return "worse"
    return "no difference"


def main() -> None:
    args = parse_args(__doc__.splitlines()[0], default_seeds=20, extra=_workers_option)
    out = output_dir(__file__, args)
    splits = ("random",) if args.smoke else SPLITS
    seeds = list(range(1 if args.smoke else args.seeds))
    jobs = [(model, split, seed) for split in splits for seed in seeds for model in MODELS]
    rows: list[dict] = []
    if args.workers < 1:
        raise SystemExit(f"--workers must be at least 1; got {args.workers}.")
    with (
        tempfile.TemporaryDirectory() as scratch,
        ProcessPoolExecutor(max_workers=args.workers, initializer=_one_thread) as pool,
    ):
        # Each fit is seeded by its own (split, seed): the rows do not depend on how the workers share them.
        futures = [pool.submit(run_one, model, split, seed, Path(scratch), args.smoke) for model, split, seed in jobs]
        try:
            for future in futures:
                rows.append(future.result())
                r = rows[-1]
                print(
                    f"{r['split']} seed {r['seed']} {r['model']}: acc {r['clean_accuracy']:.3f} "
                    f"nll {r['clean_nll']:.3f} ece {r['clean_ece']:.3f} auroc@0.1 {r['auroc_entropy_0.1']:.3f}",
                    flush=True,
                )
        except BaseException:  # one failed fit: drop the queued ones instead of waiting for them
            pool.shutdown(cancel_futures=True)
            raise

    units = [(split, seed) for split in splits for seed in seeds]

    def column(model: str, key: str, split: str | None = None) -> list[float]:
        return [
            next(r[key] for r in rows if (r["model"], r["split"], r["seed"]) == (model, sp, s))
            for sp, s in units
            if split is None or sp == split
        ]

    det, bayes = MODELS
    criteria = {}
    for name, key, sign in CRITERIA:
        b, d = column(bayes, key), column(det, key)
        diff = paired_difference(b, d) if sign > 0 else paired_difference(d, b)
        criteria[name] = {**diff, "outcome": classify(diff)}
    accuracy = paired_difference(column(bayes, "clean_accuracy"), column(det, "clean_accuracy"))
    outcomes = [c["outcome"] for c in criteria.values()]
    if all(o == "better" for o in outcomes):
        verdict = "supported"
    elif any(o == "worse" for o in outcomes):
        verdict = "refuted"
    else:
        verdict = "inconclusive"
    equal_accuracy = len(units) < 2 or accuracy["low"] <= 0 <= accuracy["high"]

    metrics = (
        ("clean accuracy", "clean_accuracy"),
        ("clean NLL", "clean_nll"),
        ("clean ECE", "clean_ece"),
        *[(f"accuracy, attacked @{e:g}", f"accuracy_{e:g}") for e in EPS],
        *[(f"AUROC entropy @{e:g}", f"auroc_entropy_{e:g}") for e in EPS],
        *[(f"AUROC MI @{e:g}", f"auroc_mi_{e:g}") for e in EPS],
        *[(f"AUROC entropy @{e:g}, adaptive", f"auroc_entropy_{e:g}_adaptive") for e in EPS],
    )
    table_rows, means = [], {}
    for split in splits:
        for label, key in metrics:
            cells = []
            for model in MODELS:
                values = [v for v in column(model, key, split) if v is not None and not math.isnan(v)]
                if values:
                    mean, std = mean_std(values)
                    cells.append(f"{mean:.3f} ± {std:.3f}")
                    means.setdefault(split, {}).setdefault(model, {})[key] = mean
                else:
                    cells.append("n/a")
            table_rows.append([split, label, *cells])
    summary = {
        "hypothesis": "H3: ARD-LMF has lower ECE and NLL and higher attack-detection AUROC than deterministic LMF",
        "data": "av-digits, random and held-out-speaker splits",
        "models": {m: {"rank": RANK, "attack": a} for m, (_f, a) in MODELS.items()},
        "seeds": len(seeds),
        "verdict_rule": (
            "unit (split, seed); paired differences signed to favour Bayes for clean ECE, clean NLL and AUROC of "
            "entropy under the standard attack at eps 0.1; better if mean - 2 SE > 0, worse if mean + 2 SE < 0; "
            "supported if all better, refuted if any worse, inconclusive otherwise"
        ),
        "criteria": criteria,
        "accuracy_difference_bayes_minus_det": accuracy,
        "equal_accuracy": equal_accuracy,
        "means": means,
        "verdict": verdict,
    }
    table = markdown_table(["split", "metric", *[f"{m} (mean ± sd)" for m in MODELS]], table_rows)
    table += "\n" + markdown_table(
        ["paired difference (positive favours ARD)", "mean", "± 2 SE", "outcome"],
        [[name, f"{c['mean']:+.4f}", f"{2 * c['se']:.4f}", c["outcome"]] for name, c in criteria.items()]
        + [["clean accuracy (ARD - det)", f"{accuracy['mean']:+.4f}", f"{2 * accuracy['se']:.4f}", "-"]],
    )
    table += (
        f"\n{len(units)} (split, seed) pairs. Verdict: **{verdict}**"
        + ("" if equal_accuracy else " (the accuracies differ: the interval of the accuracy difference excludes 0)")
        + ".\n"
    )
    figure = Figure(figsize=(7, 4))
    axis = figure.add_subplot()
    names = [*criteria, "accuracy"]
    diffs = [*criteria.values(), accuracy]
    axis.errorbar(range(len(names)), [d["mean"] for d in diffs], yerr=[2 * d["se"] for d in diffs], fmt="o", capsize=4)
    for k, name in enumerate(names):
        per_unit = (
            [a - b for a, b in zip(column(bayes, "clean_accuracy"), column(det, "clean_accuracy"), strict=True)]
            if name == "accuracy"
            else [
                sign * (a - b)
                for (n, key, sign) in CRITERIA
                if n == name
                for a, b in zip(column(bayes, key), column(det, key), strict=True)
            ]
        )
        axis.scatter([k + 0.15] * len(per_unit), per_unit, s=10, color="grey")
    axis.axhline(0.0, color="black", linewidth=0.8)
    axis.set_xticks(range(len(names)), names, rotation=15)
    axis.set_ylabel("paired difference, positive favours ARD (mean ± 2 SE; dots: units)")
    axis.set_title(f"H3 on av-digits, {len(units)} (split, seed) pairs — {verdict}")
    write_figure(out, "paired_differences.png", figure)
    write_results(out, rows, summary, table)
    print(table)


if __name__ == "__main__":
    main()
