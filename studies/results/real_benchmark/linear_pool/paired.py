"""One runner arm against a stored arm, pooled and alone, paired by seed (NOTES.md §30-31).

`python paired.py MODEL BASE ROWS.json [ROWS.json ...]` from this folder, for example
`lmf-linear-head lmf ../linear_head/rows-*.json` (§30) or `lmf-gaussian lmf-ard ../gaussian_head/rows-*.json`
(§31). MODEL's rows come from the runner files given; BASE's from the benchmark's `rows.json` (as
`../ard_rank/compare.py` reads it: BASE pooled, BASE-no-pool alone) or from the same files. Prints test accuracy
%, means over the paired seeds, and the change with a 95% Student t interval over seeds.
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
    model, base, files = sys.argv[1], sys.argv[2], sys.argv[3:]
    cells = load()
    for path in files:
        for row in json.loads(Path(path).read_text()):
            cells[(row["set"], row["model"], row["variant"])][row["seed"]] = row
    columns = f"{base} pooled | {model} pooled | change (95% CI) | {base} alone | {model} alone | change (95% CI)"
    print(f"| set | {columns} |")
    print("|---|---|---|---|---|---|---|")
    for name in REAL:
        parts = []
        for variant in ("pooled", "fusion-only"):
            mine, ref = cells[(name, model, variant)], cells[(name, base, variant)]
            seeds = sorted(set(mine) & set(ref))
            a = 100 * np.array([ref[s]["accuracy"] for s in seeds])
            d = 100 * np.array([mine[s]["accuracy"] for s in seeds]) - a
            half = stats.t.ppf(0.975, d.size - 1) * d.std(ddof=1) / np.sqrt(d.size)
            low, high = d.mean() - half, d.mean() + half
            parts.append(f"{a.mean():.1f} | {a.mean() + d.mean():.1f} | {d.mean():+.1f} [{low:+.1f}, {high:+.1f}]")
        print(f"| {name} | " + " | ".join(parts) + " |")


if __name__ == "__main__":
    main()
