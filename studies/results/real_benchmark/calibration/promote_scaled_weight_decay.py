"""Make the weight-decay-scaled rows (NOTES.md §12, §12a) the benchmark's ``lmf`` and ``concat`` rows.

``TrainConfig.weight_decay = None`` (0.5 / n_train) became the default after §12a; the rows of that arm were
fitted by ``ablate_runner.py ... wdscaled`` with the code of the default, on the benchmark's seeds and splits.
This writes ``rows-weight-decay-default.json``: those rows as ``lmf`` / ``concat`` and the committed rows of the
previous default (1e-4) renamed ``lmf-wd1e-4`` / ``concat-wd1e-4``; then, from the repository root::

    python studies/results/real_benchmark/calibration/promote_scaled_weight_decay.py
    C=studies/results/real_benchmark
    python studies/real_benchmark.py --merge $C/calibration/rows-weight-decay-default.json $C/rows.json

(``--merge`` keeps the first file's row of each (set, seed, model), so the old ``lmf`` / ``concat`` rows drop out.)
"""

from __future__ import annotations

import json
from pathlib import Path

HERE = Path(__file__).resolve().parent
REAL_SETS = ("av-digits", "av-digits-speaker", "mfeat", "scene15", "cub", "msrc_v1")
SEEDS = (0, 1, 2)


def main() -> None:
    committed = json.loads((HERE.parent / "rows.json").read_text())["rows"]
    if any(row["model"].endswith("-wd1e-4") for row in committed):
        raise SystemExit("rows.json already holds the promoted rows (lmf-wd1e-4 present): nothing to do.")
    scaled = [r for k in (1, 2, 3) for r in json.loads((HERE / f"weight-decay-scaled-rows-{k}.json").read_text())]
    out = []
    for row in scaled:
        if row["set"] in REAL_SETS and row["seed"] in SEEDS and row["model"] in ("lmf", "concat"):
            out.append({key: value for key, value in row.items() if key != "variant"})
    found = {(r["set"], r["seed"], r["model"]) for r in out}
    expected = {(s, k, m) for s in REAL_SETS for k in SEEDS for m in ("lmf", "concat")}
    if found != expected:
        raise SystemExit(f"missing scaled rows: {sorted(expected - found)}")
    for row in committed:
        if row["model"] in ("lmf", "concat"):
            out.append({**row, "model": f"{row['model']}-wd1e-4"})
    (HERE / "rows-weight-decay-default.json").write_text(json.dumps({"rows": out}))
    print(f"{len(out)} rows")


if __name__ == "__main__":
    main()
