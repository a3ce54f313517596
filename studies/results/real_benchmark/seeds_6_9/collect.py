"""NOTES.md §32: the runner's rows of seeds 6-9 as benchmark rows, with the linear reference of the same splits.

From the repository root, after the two ``linear_pool/runner.py`` processes have written ``rows-A.json`` and
``rows-B.json`` here::

    python studies/results/real_benchmark/seeds_6_9/collect.py
    C=studies/results/real_benchmark
    python studies/real_benchmark.py --merge $C/rows.json $C/seeds_6_9/rows.json --out $C

Each runner fit gives a ``pooled`` row (the default predictive: the model's own name) and a ``fusion-only`` row
from the same weights (``<model>-no-pool``), as ``linear_pool/promote.py`` maps them; the logistic-regression rows
(each view, the concatenation, the linear reference) are fitted here by the benchmark's own ``logistic_rows``.
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE.parents[2]), str(HERE.parents[3])]

import real_benchmark as rb  # noqa: E402  (a study module, found through the path above)

sys.path.insert(0, str(HERE.parent / "linear_pool"))
from promote import REAL_SETS, benchmark_rows  # noqa: E402  (the same mapping and check as §20-23's promotions)

SEEDS = range(6, 10)
MODELS = ("lmf", "concat", "lmf-ard", "lmf-ard-laplace")


def main() -> None:
    fitted = [r for name in ("rows-A.json", "rows-B.json") for r in json.loads((HERE / name).read_text())]
    rows = benchmark_rows(fitted, {m: m for m in MODELS}, REAL_SETS, SEEDS)
    with tempfile.TemporaryDirectory() as scratch:
        for name in REAL_SETS:
            for seed in SEEDS:
                data = rb.data_config(name, seed, Path(scratch))
                rows += [{"set": name, "seed": seed, **r} for r in rb.logistic_rows(data, seed)]
    (HERE / "rows.json").write_text(json.dumps({"rows": rows}))
    print(f"{len(rows)} rows")


if __name__ == "__main__":
    main()
