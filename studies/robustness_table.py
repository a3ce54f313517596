"""Robustness table: clean and attacked accuracy, NLL, ECE and attack-detection AUROC per model on av-digits.

For each model in ``MODELS`` (deterministic LMF, TFN, and concatenation with a linear head, which is late fusion:
it adds per-modality logits), over several seeds: fit on av-digits,
attack the test set with L-inf PGD (EOT-PGD for stochastic models) at budgets 0.05, 0.1 and 0.2 training
standard deviations, on each modality alone and on both together, and score accuracy, NLL, ECE and the AUROC
of predictive entropy and mutual information for telling attacked from clean inputs. Gaussian noise over the
five severities gives MultiBench's relative robustness, and effective robustness against the concatenation
(late fusion) reference. Checks, reported whichever way they come out: accuracy falls with budget; PGD is at
least as strong as FGSM; EOT-PGD at least as strong as PGD on stochastic models.

The Bayesian LMF (ARD, max rank 16, SVI) is attacked with EOT-PGD and also scored under plain PGD.

Run: ``python studies/robustness_table.py`` (about 10 minutes on 2 cores); ``--smoke`` for a seconds-long check.
Writes ``studies/results/robustness_table/{results.csv,summary.json,table.md}``.
"""

from __future__ import annotations

import tempfile
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

from _common import FROZEN, markdown_table, mean_std, output_dir, parse_args, write_results

from probfusion import DataConfig, FusionConfig, RunConfig, TrainConfig, fit, load_run
from probfusion.config import BayesConfig, EvaluationConfig
from probfusion.evaluation import evaluate
from probfusion.metrics import effective_robustness, relative_robustness


@dataclass(frozen=True)
class ModelSpec:
    """One model of the table: its label, fusion config and the attack that fits it."""

    label: str
    fusion: FusionConfig
    attack: str = "pgd"
    reference: bool = False  # the late-fusion reference of effective robustness


MODELS: tuple[ModelSpec, ...] = (
    ModelSpec("LMF r=4", FusionConfig(linear_pool=False, model="lmf", rank=4)),
    ModelSpec(
        "LMF ARD (max rank 16)",
        FusionConfig(linear_pool=False, model="lmf", rank=16, rank_prior="ard"),
        attack="eot-pgd",
    ),
    ModelSpec("TFN", FusionConfig(linear_pool=False, model="tfn")),
    # A linear head on concatenated latents adds per-modality logits: late fusion (the MLP head would not be).
    ModelSpec("concat (late fusion)", FusionConfig(linear_pool=False, model="concat", head="linear"), reference=True),
)
EPS = (0.05, 0.1, 0.2)
METRICS = ("accuracy", "nll", "ece", "auroc_entropy", "auroc_mi")


def run_model(spec: ModelSpec, seed: int, scratch: Path, smoke: bool) -> tuple[list[dict], dict]:
    """Fit one model, attack and shift it; return table rows and its checks."""
    config = RunConfig(
        data=DataConfig(name="av-digits"),
        fusion=spec.fusion,
        train=TrainConfig(epochs=2) if smoke else TrainConfig(),
        bayes=BayesConfig(svi_steps=40, posterior_samples=8, train_encoders=False) if smoke else FROZEN,
        seed=seed,
        device="cpu",
    )
    run = load_run(fit(config, scratch / f"{spec.label.replace(' ', '_')}-{seed}").path)
    samples = 4 if smoke else 64
    attacked = evaluate(
        run,
        EvaluationConfig(attack=spec.attack, eps=EPS, modality="each", samples=samples, steps=3 if smoke else 10),
        name="attack",
    )
    noise = evaluate(run, EvaluationConfig(shift="noise", modality="all", samples=samples), name="noise")
    rows = [{"model": spec.label, "seed": seed, **r} for r in attacked.rows]
    noise_curve = [noise.rows[0]["accuracy"]] + [r["accuracy"] for r in noise.rows[1:]]
    checks = {name: c["passed"] for name, c in attacked.checks.items() if isinstance(c, dict) and "passed" in c}
    return rows, {"checks": checks, "noise_curve": noise_curve}


def main() -> None:
    args = parse_args(__doc__.splitlines()[0])
    out = output_dir(__file__, args)
    seeds = range(1 if args.smoke else args.seeds)
    rows: list[dict] = []
    extras: dict[tuple[str, int], dict] = {}
    with tempfile.TemporaryDirectory() as scratch:
        for spec in MODELS:
            for seed in seeds:
                model_rows, extra = run_model(spec, seed, Path(scratch), args.smoke)
                rows += model_rows
                extras[spec.label, seed] = extra
                clean = model_rows[0]["accuracy"]
                worst = min(r["accuracy"] for r in model_rows)
                print(f"{spec.label} seed {seed}: clean {clean:.4f}, worst attacked {worst:.4f}", flush=True)

    reference = next(s.label for s in MODELS if s.reference)
    grouped: dict[tuple, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    for r in rows:
        key = (r["model"], r["attack"], r["variant"], r["modality"], r["eps"])
        for metric in METRICS:
            grouped[key][metric].append(r[metric])
    table_rows, summary = [], {"models": {}, "eps": list(EPS), "seeds": len(seeds)}
    for key, values in grouped.items():
        cells = []
        for metric in METRICS:
            if any(v != v for v in values[metric]):  # NaN: clean rows, and MI of deterministic models
                cells.append("n/a")
                continue
            mean, std = mean_std(values[metric])
            cells.append(f"{mean:.3f} ± {std:.3f}")
        table_rows.append(
            [key[0], key[1] if key[1] == "none" else f"{key[1]} ({key[2]})", key[3], f"{key[4]:g}", *cells]
        )
        summary["models"].setdefault(key[0], {})[f"{key[1]}/{key[2]}/{key[3]}/{key[4]:g}"] = {
            m: None if any(v != v for v in values[m]) else mean_std(values[m])[0] for m in METRICS
        }
    robustness = {}
    for spec in MODELS:
        rel, eff = [], []
        for seed in seeds:
            curve = extras[spec.label, seed]["noise_curve"]
            rel.append(relative_robustness(curve))
            eff.append(effective_robustness(curve, extras[reference, seed]["noise_curve"]))
        checks = defaultdict(list)
        for seed in seeds:
            for name, passed in extras[spec.label, seed]["checks"].items():
                checks[name].append(passed)
        robustness[spec.label] = {
            "noise_curves": [extras[spec.label, seed]["noise_curve"] for seed in seeds],  # per seed, clean first
            "relative_robustness_noise": mean_std(rel)[0],
            "effective_robustness_noise_vs_late_fusion": mean_std(eff)[0],
            "checks_passed": {name: all(v) for name, v in checks.items()},
        }
    summary["robustness"] = robustness
    table = markdown_table(
        ["model", "attack", "modality", "eps (train sd)", "accuracy", "NLL", "ECE", "AUROC entropy", "AUROC MI"],
        table_rows,
    )
    table += "\n" + markdown_table(
        ["model", "relative robustness (noise)", "effective robustness vs late fusion", "checks passed"],
        [
            [
                label,
                f"{r['relative_robustness_noise']:.4f}",
                f"{r['effective_robustness_noise_vs_late_fusion']:+.4f}",
                ", ".join(f"{k}={'yes' if v else 'NO'}" for k, v in r["checks_passed"].items()),
            ]
            for label, r in robustness.items()
        ],
    )
    write_results(out, rows, summary, table)
    print(table)


if __name__ == "__main__":
    main()
