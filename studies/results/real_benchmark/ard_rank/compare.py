"""NOTES.md §29's rule and ARD checks: the Bayesian head at 4x the maximum rank against the stored rank-16 rows.

`python compare.py` from this folder, after `linear_pool/runner.py ... lmf-ard-rank4x,lmf-rank4x rows-*.json`.
Reads this folder's `rows-*.json` (runner rows: a `variant` per predictive), the benchmark's `../rows.json` (rank
16: `lmf-ard` pooled, `lmf-ard-no-pool` its head alone, `lmf`, `lmf-no-pool`) and §26's stand-in rows
(`../ard_stand_ins/`). Prints the markdown table of NOTES.md §29 and the rule's verdict.
"""

import json
from collections import defaultdict
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
REAL = ("av-digits", "av-digits-speaker", "mfeat", "scene15", "cub", "msrc_v1")
STAND_INS = ("synthetic-68x7", "synthetic-text")
# Benchmark rows (one predictive each) as (model, variant) of the runner's rows.
BENCHMARK_ALIASES = {
    "lmf-ard": ("lmf-ard", "pooled"),
    "lmf-ard-no-pool": ("lmf-ard", "fusion-only"),
    "lmf": ("lmf", "pooled"),
    "lmf-no-pool": ("lmf", "fusion-only"),
}


def load() -> dict[tuple[str, str, str], dict[int, dict]]:
    """``{(set, model, variant): {seed: row}}`` from every source."""
    cells: dict[tuple[str, str, str], dict[int, dict]] = defaultdict(dict)
    for row in json.loads((HERE.parent / "rows.json").read_text())["rows"]:
        if row["set"] in REAL and row["model"] in BENCHMARK_ALIASES:
            model, variant = BENCHMARK_ALIASES[row["model"]]
            cells[(row["set"], model, variant)][row["seed"]] = row
    runner_files = [*HERE.glob("rows-*.json"), *(HERE.parent / "ard_stand_ins").glob("rows-*.json")]
    for path in runner_files:
        for row in json.loads(path.read_text()):
            cells[(row["set"], row["model"], row["variant"])][row["seed"]] = row
    return cells


def mean(cells, key: tuple[str, str, str], field: str = "accuracy", seeds=range(6)) -> float:
    """The mean of ``field`` over ``seeds`` (accuracy in %); NaN where a seed is missing."""
    rows = cells.get(key, {})
    if any(seed not in rows for seed in seeds):
        return float("nan")
    scale = 100.0 if field == "accuracy" else 1.0
    return float(np.mean([rows[seed][field] for seed in seeds])) * scale


def main() -> None:
    cells = load()
    header = (
        "| set | ARD r16 pooled | ARD 4x pooled | change | NLL r16 / 4x | ARD r16 alone | ARD 4x alone "
        "| LMF r16 pooled / alone | LMF 4x pooled / alone | 4x vs LMF 4x (pooled / alone) "
        "| 4x vs LMF r16 (pooled / alone) |"
    )
    lines = [header, "|" + "---|" * (header.count("|") - 1)]
    changes, nll16, nll4 = [], [], []
    for name in REAL + STAND_INS:
        a16, a4 = mean(cells, (name, "lmf-ard", "pooled")), mean(cells, (name, "lmf-ard-rank4x", "pooled"))
        n16 = mean(cells, (name, "lmf-ard", "pooled"), "nll")
        n4 = mean(cells, (name, "lmf-ard-rank4x", "pooled"), "nll")
        h16, h4 = mean(cells, (name, "lmf-ard", "fusion-only")), mean(cells, (name, "lmf-ard-rank4x", "fusion-only"))
        l16, l16a = mean(cells, (name, "lmf", "pooled")), mean(cells, (name, "lmf", "fusion-only"))
        l4, l4a = mean(cells, (name, "lmf-rank4x", "pooled")), mean(cells, (name, "lmf-rank4x", "fusion-only"))
        changes.append(a4 - a16)
        nll16.append(n16)
        nll4.append(n4)
        lines.append(
            f"| {name} | {a16:.1f} | {a4:.1f} | {a4 - a16:+.1f} | {n16:.3f} / {n4:.3f} | {h16:.1f} | {h4:.1f} "
            f"| {l16:.1f} / {l16a:.1f} | {l4:.1f} / {l4a:.1f} | {a4 - l4:+.1f} / {h4 - l4a:+.1f} "
            f"| {a4 - l16:+.1f} / {h4 - l16a:+.1f} |"
        )
    print("\n".join(lines))
    worst, gain = min(changes), float(np.mean(changes))
    nll_before, nll_after = float(np.mean(nll16)), float(np.mean(nll4))
    met = worst >= -1.0 and gain > 0 and nll_after <= nll_before
    print(
        f"\nRule (8 sets, seeds 0-5): worst change {worst:+.2f} (>= -1), mean change {gain:+.2f} (> 0), "
        f"mean pooled NLL {nll_before:.3f} -> {nll_after:.3f} (must not rise): {'MET' if met else 'NOT MET'}"
    )
    name = "av-digits-speaker"
    late = range(3, 6)
    print(
        f"{name}, seeds 3-5 only (after the probe): ARD r16 {mean(cells, (name, 'lmf-ard', 'pooled'), seeds=late):.1f}"
        f", 4x {mean(cells, (name, 'lmf-ard-rank4x', 'pooled'), seeds=late):.1f}, "
        f"LMF {mean(cells, (name, 'lmf', 'pooled'), seeds=late):.1f} (pooled)"
    )


if __name__ == "__main__":
    main()
