"""Evidential peers against fusion under PGD and conflictive rows: accuracy, ECE, and which uncertainty flags them.

Question (issue 12): do the evidential kinds (TMC's Dempster-Shafer and RCML's averaged evidence over
per-modality Dirichlet opinions) keep more accuracy and flag perturbed rows better than LMF, ARD-LMF and
concatenation? Every model is fitted with CLI defaults (``RunConfig`` with only the data and the model kind
changed) on av-digits and mfeat, over several seeds, then evaluated twice with :func:`probfusion.evaluation.evaluate`:

* **PGD** on all modalities together (L-inf, 10 steps, random start, budgets 0.05, 0.1 and 0.2 training standard
  deviations). The stochastic ARD-LMF gets EOT-PGD (8 fresh posterior draws per step) and the adaptive EOT-PGD
  whose loss also pushes the mutual information down (NLL - MI); the other kinds are deterministic and get PGD.
* **Conflict** (RCML's conflictive rows, :mod:`probfusion.robustness.conflict`) at severities 1, 3 and 5: at
  severity 3, 10 % of the test rows get noise of 0.5 times each feature's training range on a random subset of
  modalities and 40 % get one modality from a row of another class.

Reported per row, mean ± std over seeds, whichever way it comes out: test accuracy, ECE (15 bins), the AUROC of
predictive entropy, mutual information (ARD-LMF only; zero for deterministic models) and vacuity (tmc, rcml
only) for telling the attacked (or the conflictive) rows from the clean ones, and under conflict the accuracy on
the conflictive rows. The evaluation's sanity checks (accuracy monotone in budget, PGD at least as strong as
FGSM, stability, EOT-PGD vs PGD) are kept per model in ``summary.json``.

Run: ``python studies/conflict_table.py`` (see the README for the wall time on the shared 2-core machine);
``--smoke`` for a seconds-long check. Writes ``studies/results/conflict_table/{results.csv,summary.json,table.md}``.
"""

from __future__ import annotations

import dataclasses
import tempfile
import time
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

from _common import FROZEN, markdown_table, mean_std_cell, output_dir, parse_args, write_results

from probfusion import DataConfig, FusionConfig, RunConfig, TrainConfig, fit, load_run
from probfusion.config import BayesConfig, EvaluationConfig, SyntheticConfig
from probfusion.evaluation import evaluate


@dataclass(frozen=True)
class Model:
    """One model of the table: its label, fusion config and the attack that fits it."""

    label: str
    fusion: FusionConfig
    attack: str = "pgd"


MODELS: tuple[Model, ...] = (
    Model("tmc", FusionConfig(linear_pool=False, model="tmc")),
    Model("rcml", FusionConfig(linear_pool=False, model="rcml")),
    Model("lmf", FusionConfig(linear_pool=False, model="lmf")),
    Model("lmf-ard", FusionConfig(linear_pool=False, model="lmf", rank_prior="ard"), attack="eot-pgd"),
    Model("concat", FusionConfig(linear_pool=False, model="concat")),
)
# The smoke run covers the two code paths that differ (vacuity and Dempster-Shafer; posterior draws and EOT).
SMOKE_MODELS = ("tmc", "lmf-ard")
SETS = ("av-digits", "mfeat")
EPS = (0.05, 0.1, 0.2)
SEVERITIES = (1, 3, 5)
METRICS = ("accuracy", "ece", "auroc_entropy", "auroc_mi", "auroc_vacuity", "conflict_accuracy")
NAN = float("nan")


def _config(data: str, model: Model, seed: int, smoke: bool) -> RunConfig:
    if not smoke:
        return RunConfig(data=DataConfig(name=data), fusion=model.fusion, bayes=FROZEN, seed=seed, device="cpu")
    # Smoke: a small synthetic set (no bundled data read), two epochs, a short SVI.
    tiny = DataConfig(name="synthetic", synthetic=SyntheticConfig(num_samples=240, num_classes=3))
    config = RunConfig(data=tiny, fusion=model.fusion, train=TrainConfig(epochs=2), seed=seed, device="cpu")
    return dataclasses.replace(config, bayes=BayesConfig(svi_steps=20, posterior_samples=4, train_encoders=False))


def run_model(data: str, model: Model, seed: int, root: Path, smoke: bool) -> tuple[list[dict], dict]:
    """Fit one model, attack it and shift it; its table rows and its evaluation checks."""
    tick = time.perf_counter()
    run = load_run(fit(_config(data, model, seed, smoke), root / f"{data}-{model.label}-{seed}").path)
    fit_seconds = time.perf_counter() - tick
    samples, steps = (4, 3) if smoke else (64, 10)
    eps, severities = (EPS[-1:], (3,)) if smoke else (EPS, SEVERITIES)
    attack = EvaluationConfig(attack=model.attack, eps=eps, modality="all", samples=samples, steps=steps)
    attacked = evaluate(run, attack, name="attack")
    conflict = evaluate(
        run, EvaluationConfig(shift="conflict", severities=severities, samples=samples), name="conflict"
    )
    # Both evaluations score the clean test rows under the same seed and draws: keep the attack's clean row.
    rows = [{"set": data, "model": model.label, "seed": seed, **r} for r in attacked.rows + conflict.rows[1:]]
    checks = {}
    for report in (attacked, conflict):
        for name, check in report.checks.items():
            if isinstance(check, dict) and "passed" in check:
                checks[f"{report.path.name} {name}"] = bool(check["passed"])
    return rows, {"checks": checks, "fit_seconds": fit_seconds, "wall_seconds": time.perf_counter() - tick}


def _perturbation(row: dict) -> str:
    return row["attack"] if row["variant"] in ("clean", "standard") else f"{row['attack']} ({row['variant']})"


def summarise(rows: list[dict], extras: dict[tuple, dict]) -> tuple[dict, str]:
    """Mean ± std over seeds per (set, model, perturbation, budget or severity); the tables and the summary."""
    grouped: dict[tuple, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    for r in rows:
        key = (r["set"], r["model"], _perturbation(r), r["eps"])
        for metric in METRICS:
            grouped[key][metric].append(r.get(metric, NAN))
    summary: dict = {"eps": list(EPS), "severities": list(SEVERITIES), "cells": {}, "models": {}}
    full = []
    for (data, model, perturbation, eps), values in grouped.items():
        full.append([data, model, perturbation, f"{eps:g}", *(mean_std_cell(values[m]) for m in METRICS)])
        summary["cells"][f"{data}/{model}/{perturbation}/{eps:g}"] = {
            m: None if any(v != v for v in values[m]) else sum(values[m]) / len(values[m]) for m in METRICS
        } | {"seeds": len(values["accuracy"])}
    for (data, model, _seed), extra in extras.items():
        entry = summary["models"].setdefault(f"{data}/{model}", {"checks_passed": {}, "fit_seconds": []})
        entry["fit_seconds"].append(extra["fit_seconds"])
        for name, passed in extra["checks"].items():
            entry["checks_passed"][name] = entry["checks_passed"].get(name, True) and passed
    header = ["set", "model", "perturbation", "eps (train sd) / severity", "accuracy", "ECE"]
    header += ["AUROC entropy", "AUROC MI", "AUROC vacuity", "accuracy on conflictive rows"]
    table = _highlights(grouped) + "\n" + markdown_table(header, full)
    checks = [
        [key, ", ".join(f"{k}={'yes' if v else 'NO'}" for k, v in entry["checks_passed"].items())]
        for key, entry in summary["models"].items()
    ]
    table += "\n" + markdown_table(["set/model", "checks passed (every seed)"], checks)
    return summary, table


def _highlights(grouped: dict[tuple, dict[str, list[float]]]) -> str:
    """One line per (set, model): clean, the largest PGD budget, and conflict at severity 3."""
    lines = []
    pairs = dict.fromkeys((data, model) for data, model, _, _ in grouped)
    for data, model in pairs:
        attack = next(p for d, m, p, _ in grouped if (d, m) == (data, model) and p in ("pgd", "eot-pgd"))
        clean = grouped[data, model, "none", 0.0]
        hit = grouped[data, model, attack, EPS[-1]]
        shift = grouped.get((data, model, "conflict", 3.0)) or grouped[data, model, "conflict", float(SEVERITIES[-1])]
        lines.append(
            [
                data,
                model,
                mean_std_cell(clean["accuracy"]),
                mean_std_cell(clean["ece"]),
                f"{attack}: " + mean_std_cell(hit["accuracy"]),
                " / ".join(mean_std_cell(hit[m], digits=2) for m in ("auroc_entropy", "auroc_mi", "auroc_vacuity")),
                mean_std_cell(shift["accuracy"]),
                mean_std_cell(shift["conflict_accuracy"]),
                " / ".join(mean_std_cell(shift[m], digits=2) for m in ("auroc_entropy", "auroc_mi", "auroc_vacuity")),
            ]
        )
    header = ["set", "model", "clean accuracy", "clean ECE", f"accuracy, all modalities @ {EPS[-1]:g}"]
    header += ["AUROC entropy / MI / vacuity (attack)", "accuracy, conflict severity 3"]
    header += ["accuracy on conflictive rows", "AUROC entropy / MI / vacuity (conflict)"]
    return markdown_table(header, lines)


def main() -> None:
    args = parse_args(__doc__.splitlines()[0])
    out = output_dir(__file__, args)
    seeds = range(1 if args.smoke else args.seeds)
    sets = ("synthetic",) if args.smoke else SETS
    models = [m for m in MODELS if m.label in SMOKE_MODELS] if args.smoke else MODELS
    rows: list[dict] = []
    extras: dict[tuple, dict] = {}
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as scratch:
        for data in sets:
            for model in models:
                for seed in seeds:
                    model_rows, extra = run_model(data, model, seed, Path(scratch), args.smoke)
                    rows += model_rows
                    extras[data, model.label, seed] = extra
                    print(
                        f"{data} {model.label} seed {seed}: clean {model_rows[0]['accuracy']:.4f} "
                        f"({extra['wall_seconds']:.0f} s)",
                        flush=True,
                    )
    summary, table = summarise(rows, extras)
    summary["seeds"] = len(seeds)
    summary["wall_seconds"] = time.perf_counter() - started
    summary["machine"] = "shared 2-core CPU, OMP_NUM_THREADS=1 (other jobs running): timings are indicative only"
    write_results(out, rows, summary, table)
    print(table)


if __name__ == "__main__":
    main()
