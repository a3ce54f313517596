"""A tune study's trials averaged instead of one chosen: greedy ensemble selection, scored offline (NOTES.md §25).

§22 and §24 hand back one trial chosen on validation NLL, and on 21-450 validation rows that choice is noisy. This
study asks whether the average of a study's trials does better. Procedure (Caruana et al. 2004, "Ensemble
selection from libraries of models"; auto-sklearn's ensemble builder): the candidates are the complete trials
whose runs the study kept; starting from an empty ensemble, each of ``--rounds`` rounds adds, with replacement,
the candidate whose addition gives the lowest validation NLL of the uniform average of the chosen members'
predictive probabilities (ties: the lower trial number); the weights are the counts over the rounds. The
ensemble's test rows are then scored as ``real_benchmark.py`` scores a model (accuracy, NLL, ECE-15), beside
the references of the study's own ``tune_benchmark.py`` run (``summary.json``: linear reference, concat, the
tuned single trial). The table's ceiling column is the best test accuracy of any candidate, chosen on the test
rows themselves: no selection rule can reach it, and it bounds what choosing among the study's trials can give.

Variants: ``all`` (every complete trial) and ``lmf`` (the lmf trials only; reported, not part of §25's rule).

Run: ``python studies/tune_ensemble.py`` (the §24 studies in ``runs/tune_benchmark-models``, the references from
``studies/results/tune_benchmark/models-24``); ``--smoke`` for a seconds-long check on a tiny study it makes.
Writes ``studies/results/tune_ensemble/{rows.json,summary.json,table.md}``.
"""

from __future__ import annotations

import argparse
import json
import re
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
from _common import RESULTS, markdown_table, mean_std
from real_benchmark import _scores, split_predictive

from probfusion import load_run
from probfusion.runs import atomic_write_json, atomic_write_text

VARIANTS = ("all", "lmf")


def greedy_ensemble(val_probs: np.ndarray, val_labels: np.ndarray, rounds: int) -> np.ndarray:
    """Caruana's forward selection with replacement on validation NLL.

    Args:
        val_probs: ``(k, n, c)`` each candidate's validation predictive probabilities.
        val_labels: ``(n,)`` the validation labels.
        rounds: How many members to add (a candidate may be added more than once).

    Returns:
        ``(k,)`` weights summing to one (counts over ``rounds``).
    """
    # Only the probability of the true class enters the NLL: (k, n).
    true = val_probs[:, np.arange(len(val_labels)), val_labels]
    counts = np.zeros(len(true))
    total = np.zeros(true.shape[1])
    for step in range(rounds):
        nll = -np.log(np.maximum((total + true) / (step + 1), 1e-300)).mean(axis=1)
        pick = int(np.argmin(nll))  # argmin takes the first minimum: the lower trial number on a tie
        counts[pick] += 1
        total += true[pick]
    return counts / rounds


def study_rows(study: Path, seed: int, rounds: int) -> list[dict]:
    """One row per variant: the ensemble's test scores, its members and weights, and the candidates' count."""
    trials = {int(p.name): p for p in sorted((study / "trials").iterdir()) if (p / "metrics.json").is_file()}
    kinds, val, test = {}, {}, {}
    for number, path in trials.items():
        loaded = load_run(path)
        _, val_split, test_split = loaded.splits()
        kinds[number] = loaded.config.fusion.model.value
        val[number], val_labels = split_predictive(loaded, val_split, seed)
        test[number], test_labels = split_predictive(loaded, test_split, seed)
    rows = []
    for variant in VARIANTS:
        numbers = [n for n in trials if variant == "all" or kinds[n] == variant]
        if not numbers:  # no candidate of this kind (or no kept trial at all): no row
            continue
        weights = greedy_ensemble(np.stack([val[n] for n in numbers]), val_labels, rounds)
        mix = np.einsum("k,knc->nc", weights, np.stack([test[n] for n in numbers]))
        members = {str(n): float(w) for n, w in zip(numbers, weights, strict=True) if w > 0}
        row = {"variant": variant, "candidates": len(numbers), "members": members, **_scores(mix, test_labels)}
        row["member_kinds"] = sorted({kinds[int(n)] for n in members})
        # Not achievable, a ceiling: the best test accuracy of any candidate (chosen on the test rows themselves).
        row["oracle_accuracy"] = max(float((test[n].argmax(1) == test_labels).mean()) for n in numbers)
        rows.append(row)
    return rows


def summarise(rows: list[dict], references: dict) -> tuple[dict, str]:
    """Per set and variant: mean ensemble accuracy and NLL against max(linear reference, concat) and tune."""
    sets = list(dict.fromkeys(r["set"] for r in rows))
    summary, table = {"sets": {}}, []
    for name in sets:
        models = references["sets"][name]["models"]
        best_reference = max(models["linear reference"]["accuracy_mean"], models["concat"]["accuracy_mean"])
        entry = {"max_linear_concat_accuracy": best_reference, "tune_accuracy": models["tune"]["accuracy_mean"]}
        for variant in VARIANTS:
            mine = [r for r in rows if r["set"] == name and r["variant"] == variant]
            if not mine:
                continue
            acc, acc_std = mean_std([r["accuracy"] for r in mine])
            nll, _ = mean_std([r["nll"] for r in mine])
            oracle, _ = mean_std([r["oracle_accuracy"] for r in mine])
            margin = 100 * (acc - best_reference)
            size = np.mean([len(r["members"]) for r in mine])
            entry[variant] = {"accuracy_mean": acc, "accuracy_std": acc_std, "nll_mean": nll, "seeds": len(mine)}
            entry[variant] |= {"minus_max_linear_concat_points": margin, "distinct_members_mean": size}
            entry[variant]["oracle_accuracy_mean"] = oracle
            tune_cells = [f"{100 * models['tune']['accuracy_mean']:.1f}", f"{models['tune']['nll_mean']:.3f}"]
            verdict = f"{'yes' if margin >= 0 else 'NO'} ({margin:+.1f})"
            scores = [f"{100 * acc:.1f} ± {100 * acc_std:.1f}", f"{nll:.3f}", f"{100 * best_reference:.1f}"]
            tail = [verdict, f"{size:.1f}", f"{100 * oracle:.1f}", str(len(mine))]
            table.append([name, variant, *scores, *tune_cells, *tail])
        summary["sets"][name] = entry
    for variant in VARIANTS:
        present = [s for s in sets if variant in summary["sets"][s]]
        margins = [summary["sets"][s][variant]["minus_max_linear_concat_points"] for s in present]
        nlls = [summary["sets"][s][variant]["nll_mean"] for s in present]
        summary[variant] = {
            "sets_passing": sum(m >= 0 for m in margins),
            "mean_minus_max_linear_concat_points": float(np.mean(margins)) if margins else None,
            "mean_test_nll": float(np.mean(nlls)) if nlls else None,
        }
    header = ["set", "members", "ensemble test accuracy %", "ensemble test NLL", "max(linear, concat)"]
    header += ["tune (one trial)", "tune NLL", "ensemble >= max(linear, concat) (points)", "distinct members"]
    header += ["ceiling: best trial on test", "seeds"]
    return summary, markdown_table(header, table)


def smoke(out: Path) -> tuple[Path, dict]:
    """A four-trial study of two-epoch fits on the embedded default set, and made-up references (plumbing only)."""
    from tune_benchmark import smoke_settings

    from probfusion import RunConfig
    from probfusion.tuning import ChoiceDimension, tune

    settings, train = smoke_settings()
    settings = replace(settings, trials=4, space=replace(settings.space, model=ChoiceDimension(("lmf", "concat"))))
    tune(RunConfig(train=train, device="cpu"), out / "studies" / "smoke-seed0", settings)
    ref = {"accuracy_mean": 0.5, "nll_mean": 1.0}
    return out / "studies", {"sets": {"smoke": {"models": dict.fromkeys(("linear reference", "concat", "tune"), ref)}}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--studies", type=Path, default=Path("runs") / "tune_benchmark-models")
    parser.add_argument("--references", type=Path, default=RESULTS / "tune_benchmark" / "models-24")
    parser.add_argument("--rounds", type=int, default=25, help="ensemble selection rounds (§25: 25)")
    parser.add_argument("--out", type=Path, default=None, help="output folder [default: studies/results/tune_ensemble]")
    parser.add_argument("--smoke", action="store_true", help="a tiny study made here: checks the script runs")
    args = parser.parse_args()
    tick = time.perf_counter()
    if args.smoke:
        scratch = Path(tempfile.mkdtemp(prefix="tune-ensemble-smoke-"))
        studies, references = smoke(scratch)
        out = args.out or scratch / "out"
    else:
        studies, out = args.studies, args.out or RESULTS / "tune_ensemble"
        references = json.loads((args.references / "summary.json").read_text())
    rows = []
    for study in sorted(p for p in studies.iterdir() if (p / "study.json").is_file()):
        match = re.fullmatch(r"(.+)-seed(\d+)", study.name)
        if match is None:
            continue
        name, seed = match[1], int(match[2])
        for row in study_rows(study, seed, args.rounds):
            rows.append({"set": name, "seed": seed, **row})
        print(f"{study.name}: " + ", ".join(f"{r['variant']} {100 * r['accuracy']:.1f}" for r in rows[-2:]))
    summary, table = summarise(rows, references)
    summary |= {"rounds": args.rounds, "studies": str(studies), "wall_seconds": time.perf_counter() - tick}
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_json(out / "rows.json", {"rows": rows})
    atomic_write_json(out / "summary.json", summary)
    atomic_write_text(out / "table.md", table)
    print(table)
    print({v: summary[v] for v in VARIANTS})
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
