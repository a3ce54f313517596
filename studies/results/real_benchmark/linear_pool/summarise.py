"""Summary of NOTES.md §20's rows (and of any runner's: §21, §23, §26, §27).

`python summarise.py rows-*.json` (test accuracy %, NLL; means over seeds).
"""

import json
import sys
from collections import defaultdict
from pathlib import Path

import numpy as np

rows = [r for path in sys.argv[1:] for r in json.loads(Path(path).read_text())]
cells = defaultdict(list)
for r in rows:
    cells[(r["set"], r["model"], r["variant"])].append(r)
sets = list(dict.fromkeys(r["set"] for r in rows))
HEADER = (
    "set",
    "model",
    "seeds",
    "fusion-only acc",
    "pooled acc",
    "change",
    "linear-only acc",
    "fusion-only NLL",
    "pooled NLL",
    "w (mean, range)",
    "C chosen",
)
print("| " + " | ".join(HEADER) + " |")
print("|---|---|---|---|---|---|---|---|---|---|---|")
for s in sets:
    for m in dict.fromkeys(r["model"] for r in rows):  # in the order the rows were fitted
        alone, pooled, linear = (cells[(s, m, v)] for v in ("fusion-only", "pooled", "linear-only"))
        if not pooled:
            continue
        acc = [100 * np.mean([r["accuracy"] for r in part]) for part in (alone, pooled, linear)]
        nll = [np.mean([r["nll"] for r in part]) for part in (alone, pooled)]
        w = [r["weight"] for r in pooled]
        cs = ",".join(f"{r['C']:g}" for r in pooled)
        print(
            f"| {s} | {m} | {len(pooled)} | {acc[0]:.1f} | {acc[1]:.1f} | {acc[1] - acc[0]:+.1f} | {acc[2]:.1f} | "
            f"{nll[0]:.3f} | {nll[1]:.3f} | {np.mean(w):.2f} [{min(w):.2f}-{max(w):.2f}] | {cs} |"
        )
