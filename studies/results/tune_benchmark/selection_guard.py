"""NOTES §17: would a guarded choice (the defaults unless the best trial wins by z paired SEs) score better?

For every finished study of ``studies/tune_benchmark.py`` (``runs/tune_benchmark/<set>-seed<k>``): load trial 0
(the defaults) and the trial of lowest validation NLL, recompute each one's per-row validation NLL
(``probfusion.tuning.selection``, the rule ``tune`` now applies), and choose the lowest only if
``mean(d) > Z sd(d) / sqrt(n_val)`` with ``d_i = NLL_0(i) - NLL_best(i)``; score the chosen run on the test rows
with ``real_benchmark.score_test_split``, as the benchmark scores ``tune``. Prints one line per study and the
means over studies of both choices.
Run: ``python studies/results/tune_benchmark/selection_guard.py [runs/tune_benchmark]``.
"""

from __future__ import annotations

import json
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from real_benchmark import DEFAULT_SETS, score_test_split  # a study module, found through the path above

from probfusion.tuning.selection import paired_margin, validation_nll_rows

Z = 2.0
SEEDS = 3


def main() -> None:
    root = Path(sys.argv[1]) if len(sys.argv) > 1 else Path("runs/tune_benchmark")
    chosen: dict[str, list[dict]] = {"unguarded": [], "guarded": []}
    for name in DEFAULT_SETS:
        for seed in range(SEEDS):
            study = root / f"{name}-seed{seed}"
            summary = json.loads((study / "study.json").read_text())
            best = summary.get("lowest_trial", summary["best_trial"])  # best_trial: the guarded choice, once made
            trials = study / "trials"
            margin = paired_margin(validation_nll_rows(trials / "0000"), validation_nll_rows(trials / f"{best:04d}"))
            guarded = best if margin > Z else 0
            runs = {"best": best, "base": 0}
            scores = {k: score_test_split(study / "trials" / f"{n:04d}", seed) for k, n in runs.items()}
            chosen["unguarded"].append(scores["best"])
            chosen["guarded"].append(scores["best"] if guarded == best else scores["base"])
            print(
                f"{name} seed {seed}: best trial {best} beats trial 0 by {margin:.2f} SE -> keep {guarded}; test "
                f"accuracy best {100 * scores['best']['accuracy']:.1f}, trial 0 {100 * scores['base']['accuracy']:.1f}"
            )
    for rule, rows in chosen.items():
        accuracy = statistics.fmean(r["accuracy"] for r in rows)
        nll = statistics.fmean(r["nll"] for r in rows)
        print(f"{rule}: mean test accuracy {100 * accuracy:.2f} %, mean test NLL {nll:.4f} over {len(rows)} studies")


if __name__ == "__main__":
    main()
