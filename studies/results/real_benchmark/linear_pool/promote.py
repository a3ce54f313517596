"""Make §20's pooled rows the benchmark's ``lmf`` and ``concat`` rows, their fusion-only rows ``*-no-pool``.

``FusionConfig.linear_pool = None`` (on for the deterministic kinds) became the default by NOTES.md §20's rule.
Each of ``runner.py``'s fits gave a ``pooled`` row (the stored predictive, what ``real_benchmark.py --models lmf``
now fits) and a ``fusion-only`` row from the same weights (what ``--models lmf-no-pool`` fits). This writes
``rows-pool-default.json`` with those rows as ``lmf`` / ``concat`` and ``lmf-no-pool`` / ``concat-no-pool``, and the
committed ``lmf`` / ``concat`` rows (the §16 fits, before the pool) as ``lmf-before-pool`` / ``concat-before-pool``;
then, from the repository root::

    python studies/results/real_benchmark/linear_pool/promote.py
    C=studies/results/real_benchmark
    python studies/real_benchmark.py --merge $C/linear_pool/rows-pool-default.json $C/rows.json

(``--merge`` keeps the first file's row of each (set, seed, model), so the old ``lmf`` / ``concat`` rows drop out.)
"""

from __future__ import annotations

import json
from pathlib import Path

HERE = Path(__file__).resolve().parent
REAL_SETS = ("av-digits", "av-digits-speaker", "mfeat", "scene15", "cub", "msrc_v1")
SEEDS = range(6)
KEYS = ("accuracy", "nll", "ece", "fit_seconds", "best_epoch", "weight", "C", "temperature")


def main() -> None:
    committed = json.loads((HERE.parent / "rows.json").read_text())["rows"]
    if any(row["model"].endswith("-no-pool") for row in committed):
        raise SystemExit("rows.json already holds the promoted rows (lmf-no-pool present): nothing to do.")
    fitted = [r for name in ("rows-A.json", "rows-B.json") for r in json.loads((HERE / name).read_text())]
    out = []
    names = {"pooled": "{}", "fusion-only": "{}-no-pool"}
    for row in fitted:
        if row["set"] in REAL_SETS and row["variant"] in names:
            model = names[row["variant"]].format(row["model"])
            out.append({"set": row["set"], "seed": row["seed"], "model": model} | {k: row[k] for k in KEYS})
    found = {(r["set"], r["seed"], r["model"]) for r in out}
    expected = {(s, k, m) for s in REAL_SETS for k in SEEDS for m in ("lmf", "concat", "lmf-no-pool", "concat-no-pool")}
    if found != expected:
        raise SystemExit(f"missing rows: {sorted(expected - found)}")
    for row in committed:
        if row["model"] in ("lmf", "concat"):
            out.append({**row, "model": f"{row['model']}-before-pool"})
    (HERE / "rows-pool-default.json").write_text(json.dumps({"rows": out}))
    print(f"{len(out)} rows")


if __name__ == "__main__":
    main()
