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

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE.parent / "ard_rank"), str(HERE.parents[2])]
from compare import REAL, load  # noqa: E402  (§29's reader of the stored and runner rows)
from real_benchmark import paired_interval, signed_points  # noqa: E402  (the benchmark's own interval)


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
            if len(seeds) < 2:
                raise SystemExit(f"{name}, {variant}: {len(seeds)} seed(s) with both {model} and {base}; need 2")
            a = 100 * np.array([ref[s]["accuracy"] for s in seeds])
            d = 100 * np.array([mine[s]["accuracy"] for s in seeds]) - a  # (k,) over the paired seeds
            centre, low, high = paired_interval(d)
            change = f"{signed_points(centre)} [{signed_points(low)}, {signed_points(high)}]"
            parts.append(f"{a.mean():.1f} | {a.mean() + centre:.1f} | {change}")
        print(f"| {name} | " + " | ".join(parts) + " |")


if __name__ == "__main__":
    main()
