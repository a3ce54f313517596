"""Make the pooled rows of NOTES.md §20 (or §21) the benchmark's default rows, their head-only rows ``*-no-pool``.

``FusionConfig.linear_pool = None`` became the default by §20's rule (lmf, concat) and then §21's (LMF with a rank
prior). Each of ``runner.py``'s fits gave a ``pooled`` row (the stored predictive, what ``real_benchmark.py
--models lmf`` now fits) and a ``fusion-only`` row from the same weights (what ``--models lmf-no-pool`` fits). This
writes ``rows-pool-default.json`` (§20) or ``rows-pool-default-21.json`` (§21) with those rows under the model's
name and ``<model>-no-pool``, and the committed rows of those models (before the pool) as
``<model>-before-pool``; then, from the repository root::

    python studies/results/real_benchmark/linear_pool/promote.py 20     # or 21
    C=studies/results/real_benchmark
    python studies/real_benchmark.py --merge $C/linear_pool/rows-pool-default.json $C/rows.json   # -21 for §21

(``--merge`` keeps the first file's row of each (set, seed, model), so the replaced rows drop out.)
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
REAL_SETS = ("av-digits", "av-digits-speaker", "mfeat", "scene15", "cub", "msrc_v1")
SEEDS = range(6)
KEYS = ("accuracy", "nll", "ece", "fit_seconds", "best_epoch", "weight", "C", "temperature")
# section -> (runner row files, models, output file)
STAGES = {
    "20": (("rows-A.json", "rows-B.json"), ("lmf", "concat"), "rows-pool-default.json"),
    "21": (("rows-ard.json", "rows-ard-2.json"), ("lmf-ard", "lmf-ard-laplace"), "rows-pool-default-21.json"),
}


def main() -> None:
    files, models, output = STAGES[sys.argv[1] if len(sys.argv) > 1 else "20"]
    committed = json.loads((HERE.parent / "rows.json").read_text())["rows"]
    if any(row["model"] == f"{models[0]}-no-pool" for row in committed):
        raise SystemExit(f"rows.json already holds the promoted rows ({models[0]}-no-pool present): nothing to do.")
    fitted = [r for name in files for r in json.loads((HERE / name).read_text())]
    out = []
    names = {"pooled": "{}", "fusion-only": "{}-no-pool"}
    for row in fitted:
        if row["set"] in REAL_SETS and row["model"] in models and row["variant"] in names:
            model = names[row["variant"]].format(row["model"])
            out.append({"set": row["set"], "seed": row["seed"], "model": model} | {k: row[k] for k in KEYS})
    found = {(r["set"], r["seed"], r["model"]) for r in out}
    expected = {(s, k, f) for s in REAL_SETS for k in SEEDS for m in models for f in (m, f"{m}-no-pool")}
    if found != expected:
        raise SystemExit(f"missing rows: {sorted(expected - found)}")
    for row in committed:
        if row["model"] in models:
            out.append({**row, "model": f"{row['model']}-before-pool"})
    (HERE / output).write_text(json.dumps({"rows": out}))
    print(f"{len(out)} rows")


if __name__ == "__main__":
    main()
