"""Diagnostic behind the H4 over-estimates: H4's synthetic fit (SVI mean-field, max rank 16, M = 2) at a label noise.

H4's generator labels rows by ``argmax(score + noise * N(0, 1))`` with noise 0.1. This probe reruns r* = 1, 2, 3
(5 seeds each) through :func:`h4_ard_rank_recovery.synthetic_run` at another noise and prints each effective rank.
Run: ``python studies/results/h4_ard_rank_recovery/label_noise_probe.py 1.0`` (about 3 minutes on one core).
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
import h4_ard_rank_recovery as h4  # a study module, found through the path above

from probfusion.config import BayesConfig
from probfusion.options import SyntheticLabels


def main() -> None:
    noise = float(sys.argv[1]) if len(sys.argv) > 1 else 1.0
    bayes = BayesConfig()
    argmax = SyntheticLabels.ARGMAX  # the labels of the run it diagnoses
    runs = [
        h4.synthetic_run(r, 2, s, smoke=False, bayes=bayes, noise=noise, labels=argmax)
        for r in (1, 2, 3)
        for s in range(5)
    ]
    for run in runs:
        print(
            f"noise {noise:g}, planted rank {run['planted_rank']}, seed {run['seed']}: "
            f"effective rank {run['effective_rank']}"
        )
    over = sum(run["effective_rank"] > run["planted_rank"] for run in runs)
    exact = sum(run["recovered"] for run in runs)
    print(f"over-estimated {over}, exact {exact} of {len(runs)}")


if __name__ == "__main__":
    main()
