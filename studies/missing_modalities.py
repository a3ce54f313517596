"""Accuracy with each modality missing at prediction time, per model kind and imputation route.

Question: when a modality is absent for every test row, how much accuracy does each model keep, and does
averaging over training rows of the missing modality (``marginal``, ``probfusion predict``'s default) keep more
than putting it at its training mean (``mean``)? Every model is fitted with CLI defaults (only the data and the
model kind changed); its own test rows are then handed to :func:`probfusion.prediction.predict` with one
modality's features removed. Reported whichever way it comes out: the complete-row accuracy, and the accuracy
with each modality missing under each route, mean and std over seeds.

Run: ``python studies/missing_modalities.py`` (about 10 minutes on 2 cores); ``--smoke`` for a seconds-long check.
Writes ``studies/results/missing_modalities/{results.csv,summary.json,table.md}``.
"""

from __future__ import annotations

import dataclasses
import tempfile
from collections import defaultdict
from pathlib import Path

import numpy as np
from _common import FROZEN, markdown_table, mean_std, output_dir, parse_args, write_results

from probfusion import DataConfig, FusionConfig, RunConfig, TrainConfig, fit, load_run
from probfusion.data.features import check_features
from probfusion.prediction import PredictionConfig, predict

MODELS = {
    "lmf": FusionConfig(linear_pool=False, model="lmf"),
    "lmf-ard": FusionConfig(linear_pool=False, model="lmf", rank_prior="ard"),
    "concat": FusionConfig(linear_pool=False, model="concat"),
}
SETS = ("av-digits", "mfeat")


def _one(data: str, label: str, fusion: FusionConfig, seed: int, root: Path, smoke: bool) -> list[dict]:
    config = RunConfig(data=DataConfig(name=data), fusion=fusion, bayes=FROZEN, seed=seed, device="cpu")
    if smoke:
        config = dataclasses.replace(
            config, train=TrainConfig(epochs=1), bayes=dataclasses.replace(config.bayes, svi_steps=5)
        )
    run = load_run(fit(config, root / f"{data}-{label}-{seed}").path)
    test = run.splits()[2]
    views = {m: np.asarray(x, dtype=np.float64) for m, x in test.views.items()}
    labels = np.asarray(run.class_labels, dtype=object)[test.labels]
    rows = []
    for gone in (None, *views):
        for route in ("marginal", "mean") if gone else ("complete",):
            given = {m: x for m, x in views.items() if m != gone}
            batch = check_features(given, run.input_dims, labels=labels, source=f"{data} test rows")
            result = predict(run, batch, PredictionConfig(imputation="marginal" if route == "complete" else route))
            rows.append(
                {
                    "data": data,
                    "model": label,
                    "seed": seed,
                    "missing": gone or "none",
                    "route": route,
                    "accuracy": result.summary["accuracy"],
                }
            )
    return rows


def main() -> None:
    args = parse_args(__doc__.splitlines()[0])
    out = output_dir(__file__, args)
    seeds = range(1 if args.smoke else args.seeds)
    sets = SETS[:1] if args.smoke else SETS
    rows: list[dict] = []
    with tempfile.TemporaryDirectory() as tmp:
        for data in sets:
            for label, fusion in MODELS.items():
                for seed in seeds:
                    rows += _one(data, label, fusion, seed, Path(tmp), args.smoke)
    cells: dict[tuple, list[float]] = defaultdict(list)
    for row in rows:
        cells[row["data"], row["model"], row["missing"], row["route"]].append(row["accuracy"])
    table_rows, summary = [], {}
    for (data, model, missing, route), values in cells.items():
        mean, std = mean_std(values)
        table_rows.append((data, model, missing, route, f"{100 * mean:.1f} ± {100 * std:.1f}"))
        summary[f"{data}/{model}/{missing}/{route}"] = {"mean": mean, "std": std, "n": len(values)}
    table = markdown_table(("data", "model", "missing modality", "route", "test accuracy % (mean ± std)"), table_rows)
    write_results(out, rows, summary, table)
    print(table)


if __name__ == "__main__":
    main()
