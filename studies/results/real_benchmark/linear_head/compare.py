"""NOTES.md §30's reading: LMF with a linear head against the default LMF, pooled and alone, paired by seed.

`python compare.py` from this folder, after `linear_pool/runner.py ... lmf-linear-head rows-*.json`.
"""

import json
import sys
from pathlib import Path

import numpy as np
from scipy import stats

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "ard_rank"))
from compare import REAL, load  # noqa: E402  (§29's reader of the stored and runner rows)


def main() -> None:
    cells = load()
    for path in HERE.glob("rows-*.json"):
        for row in json.loads(path.read_text()):
            cells[(row["set"], row["model"], row["variant"])][row["seed"]] = row
    print(
        "| set | lmf pooled | linear head pooled | change (95% CI) | lmf alone | linear head alone | change (95% CI) |"
    )
    print("|---|---|---|---|---|---|---|")
    for name in REAL:
        parts = []
        for variant in ("pooled", "fusion-only"):
            base, mine = cells[(name, "lmf", variant)], cells[(name, "lmf-linear-head", variant)]
            seeds = sorted(set(base) & set(mine))
            a = 100 * np.array([base[s]["accuracy"] for s in seeds])
            b = 100 * np.array([mine[s]["accuracy"] for s in seeds])
            d = b - a
            half = stats.t.ppf(0.975, d.size - 1) * d.std(ddof=1) / np.sqrt(d.size)
            low, high = d.mean() - half, d.mean() + half
            parts.append(f"{a.mean():.1f} | {b.mean():.1f} | {d.mean():+.1f} [{low:+.1f}, {high:+.1f}]")
        print(f"| {name} | " + " | ".join(parts) + " |")


if __name__ == "__main__":
    main()
