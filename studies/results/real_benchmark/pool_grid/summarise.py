"""NOTES.md §35: the pool with the default C grid against the wider one, paired within each fit, and the rule.

`python summarise.py` from this folder reads ``rows-*.json`` (``runner.py``'s output) and prints the markdown
table (test accuracy %, mean over each set's seeds; NLL; the wide grid's C choices) and the rule's verdict.
"""

import collections
import json
import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[2]))
from real_benchmark import paired_interval, signed_points  # noqa: E402  (the benchmark's own interval)

RULE_SETS = ("av-digits", "av-digits-speaker", "mfeat", "scene15", "cub", "msrc_v1", "synthetic-68x7", "synthetic-text")
REPORTED = ("synthetic-100x11",)
MODELS = ("lmf", "concat", "lmf-ard", "lmf-ard-laplace")
MAX_LOSS = 0.5  # points of test accuracy, per set and model


def load() -> dict:
    """``{(set, model, variant): {seed: row}}`` over every rows file here."""
    cells: dict = collections.defaultdict(dict)
    for path in sorted(HERE.glob("rows-*.json")):
        for row in json.loads(path.read_text()):
            cells[(row["set"], row["model"], row["variant"])][row["seed"]] = row
    return cells


def main() -> None:
    cells = load()
    mismatched = []
    for (name, model, variant), by_seed in list(cells.items()):
        if variant == "stored":
            refit = cells[(name, model, "refit-default")]
            pairs = [(seed, row, refit[seed]) for seed, row in by_seed.items()]
            same = [(a["weight"], a["C"]) == (b["weight"], b["C"]) for _, a, b in pairs]
            mismatched += [(name, model, seed) for (seed, _, _), ok in zip(pairs, same, strict=True) if not ok]
    print(f"refits of the default grid that do not give back the stored (w, C): {len(mismatched)}")
    print("| set | model | seeds | default grid | wide grid | change (95% CI) | NLL default / wide | C chosen (wide) |")
    print("|---|---|---|---|---|---|---|---|")
    by_model: dict = collections.defaultdict(lambda: {"acc": [], "nll": [], "worst": 0.0})
    for name in RULE_SETS + REPORTED:
        for model in MODELS:
            old, new = cells.get((name, model, "refit-default")), cells.get((name, model, "refit-wide"))
            if not old:
                continue
            seeds = sorted(set(old) & set(new))
            a = 100 * np.array([old[s]["accuracy"] for s in seeds])
            b = 100 * np.array([new[s]["accuracy"] for s in seeds])
            centre, low, high = paired_interval(b - a)
            nll_a, nll_b = (float(np.mean([c[s]["nll"] for s in seeds])) for c in (old, new))
            chosen = collections.Counter(new[s]["C"] for s in seeds)
            picks = ", ".join(f"{c:g}: {k}" for c, k in sorted(chosen.items()))
            change = f"{signed_points(centre)} [{signed_points(low)}, {signed_points(high)}]"
            print(
                f"| {name} | {model} | {len(seeds)} | {a.mean():.1f} | {b.mean():.1f} | {change} | "
                f"{nll_a:.3f} / {nll_b:.3f} | {picks} |"
            )
            if name in RULE_SETS:
                cell = by_model[model]
                cell["acc"].append((a.mean(), b.mean()))
                cell["nll"].append((nll_a, nll_b))
                cell["worst"] = min(cell["worst"], centre)
    verdict = True
    for model, cell in by_model.items():
        acc, nll = np.array(cell["acc"]), np.array(cell["nll"])
        accuracy, nll_mean = acc.mean(0), nll.mean(0)
        ok = cell["worst"] >= -MAX_LOSS and accuracy[1] >= accuracy[0] and nll_mean[1] <= nll_mean[0]
        verdict &= bool(ok)
        print(
            f"{model}: {len(acc)} sets, worst change {cell['worst']:+.2f}, mean accuracy {accuracy[0]:.2f} -> "
            f"{accuracy[1]:.2f}, mean NLL {nll_mean[0]:.4f} -> {nll_mean[1]:.4f}: {'ok' if ok else 'NOT MET'}"
        )
    print("rule:", "MET, the wide grid becomes the default" if verdict else "NOT MET, the grid stays")


if __name__ == "__main__":
    main()
