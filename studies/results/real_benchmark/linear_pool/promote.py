"""Make the pooled rows of NOTES.md §20, §21 or §23 the benchmark's default rows, their head-only rows ``*-no-pool``.

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

§23 (``BayesConfig.train_encoders = None``: the SVI head trained end to end by default) renames too: the runner's
``lmf-ard-end-to-end`` rows become ``lmf-ard`` and ``lmf-ard-no-pool``, and the committed frozen-latent rows of
those two become ``lmf-ard-frozen`` and ``lmf-ard-frozen-no-pool`` (what ``real_benchmark.py`` now fits under
those names)::

    python studies/results/real_benchmark/linear_pool/promote.py 23
    python studies/real_benchmark.py --merge $C/linear_pool/rows-e2e-default.json $C/rows.json
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
REAL_SETS = ("av-digits", "av-digits-speaker", "mfeat", "scene15", "cub", "msrc_v1")
SEEDS = range(6)
KEYS = ("accuracy", "nll", "ece", "fit_seconds", "best_epoch", "weight", "C", "temperature")

# section -> (runner row files, {runner model: benchmark model}, {committed model: its new name}, output file)
STAGES = {
    "20": (
        ("rows-A.json", "rows-B.json"),
        {"lmf": "lmf", "concat": "concat"},
        {"lmf": "lmf-before-pool", "concat": "concat-before-pool"},
        "rows-pool-default.json",
    ),
    "21": (
        ("rows-ard.json", "rows-ard-2.json"),
        {"lmf-ard": "lmf-ard", "lmf-ard-laplace": "lmf-ard-laplace"},
        {"lmf-ard": "lmf-ard-before-pool", "lmf-ard-laplace": "lmf-ard-laplace-before-pool"},
        "rows-pool-default-21.json",
    ),
    "23": (
        ("rows-e2e-probe.json", "rows-e2e-cub.json", "rows-e2e.json"),
        {"lmf-ard-end-to-end": "lmf-ard"},
        {"lmf-ard": "lmf-ard-frozen", "lmf-ard-no-pool": "lmf-ard-frozen-no-pool"},
        "rows-e2e-default.json",
    ),
}


SUFFIX = {"pooled": "", "fusion-only": "-no-pool"}  # runner variant -> suffix of the benchmark model's name


def benchmark_rows(fitted: list[dict], models: dict[str, str], sets, seeds) -> list[dict]:
    """``runner.py`` rows as benchmark rows, ``pooled`` under the benchmark name and ``fusion-only`` as ``-no-pool``.

    Each keeps ``KEYS``; exits unless every (set, seed, model) of ``sets x seeds x models`` is there exactly once.
    """
    out = [
        {"set": r["set"], "seed": r["seed"], "model": models[r["model"]] + SUFFIX[r["variant"]]}
        | {k: r[k] for k in KEYS}
        for r in fitted
        if r["set"] in sets and r["model"] in models and r["variant"] in SUFFIX
    ]
    found = [(r["set"], r["seed"], r["model"]) for r in out]
    expected = {(s, k, m + f) for s in sets for k in seeds for m in models.values() for f in SUFFIX.values()}
    if set(found) != expected or len(found) != len(expected):
        raise SystemExit(f"missing rows: {sorted(expected - set(found))}; {len(found)} found, {len(expected)} expected")
    return out


def main() -> None:
    files, models, renamed, output = STAGES[sys.argv[1] if len(sys.argv) > 1 else "20"]
    committed = json.loads((HERE.parent / "rows.json").read_text())["rows"]
    if any(row["model"] in renamed.values() for row in committed):
        raise SystemExit(f"rows.json already holds the renamed rows ({', '.join(renamed.values())}): nothing to do.")
    fitted = [r for name in files for r in json.loads((HERE / name).read_text())]
    out = benchmark_rows(fitted, models, REAL_SETS, SEEDS)
    for row in committed:
        if row["model"] in renamed:
            out.append({**row, "model": renamed[row["model"]]})
    (HERE / output).write_text(json.dumps({"rows": out}))
    print(f"{len(out)} rows")


if __name__ == "__main__":
    main()
