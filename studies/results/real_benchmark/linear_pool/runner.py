"""Runner behind NOTES.md §20: fits with the logistic-regression pool, scoring the pooled and fusion-only predictives.

Usage, from the repository root::

    python studies/results/real_benchmark/linear_pool/runner.py SETS SEEDS MODELS OUT.json

for example ``scene15,cub 0,1,2 lmf,concat rows.json`` (§20) or
``... lmf-ard,lmf-ard-laplace ...`` (§21), ``... lmf-ard-end-to-end ...`` (§23: that arm, ``BayesConfig(train_encoders
=True)``, is now the default ``lmf-ard``, which reruns it). Sets, models, splits and scoring are those of
``studies/real_benchmark.py``; each fit sets ``FusionConfig.linear_pool = True`` and gives two rows from the same
trained weights: ``variant`` ``pooled`` (the stored predictive) and ``fusion-only`` (pool weight 0, the fusion
model's own temperature), plus the pool's ``w``, ``C`` and ``T``. Rows already in OUT are kept.
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parents[4]
sys.path[:0] = [str(ROOT / "studies"), str(ROOT)]

import real_benchmark as rb  # noqa: E402  (a study module, found through the path above)

from probfusion import fit, load_run  # noqa: E402
from probfusion.config import RunConfig  # noqa: E402
from probfusion.inference.linear_pool import pool_state  # noqa: E402


def pending_fits(sets: list[str], seeds: list[str], models: list[str], out: Path, rows: list[dict]) -> Iterator:
    """Each (set, seed, model) not yet in ``rows``, as ``(name, seed, model, config, run path)``.

    ``config`` is the benchmark model's config on that seed's split; the caller fits it at the path (a scratch
    folder) and appends its rows to ``rows``, which are written to ``out`` before the next fit is handed out, so
    an interrupted run resumes where it stopped.
    """
    done = {(r["set"], r["seed"], r["model"]) for r in rows}
    with tempfile.TemporaryDirectory() as scratch_name:
        scratch = Path(scratch_name)
        for name in sets:
            for seed in map(int, seeds):
                data = rb.data_config(name, seed, scratch)
                for model in models:
                    if (name, seed, model) in done:
                        continue
                    config = rb.MODELS[model](RunConfig(data=data, seed=seed))
                    yield name, seed, model, config, scratch / f"run-{name}-{seed}-{model}"
                    out.write_text(json.dumps(rows))
                    done.add((name, seed, model))


def main() -> None:
    sets, seeds, models = (arg.split(",") for arg in sys.argv[1:4])
    out = Path(sys.argv[4])
    rows = json.loads(out.read_text()) if out.exists() else []
    for name, seed, model, config, path in pending_fits(sets, seeds, models, out, rows):
        config = replace(config, fusion=replace(config.fusion, linear_pool=True))
        tick = time.perf_counter()
        run = fit(config, path)
        seconds = time.perf_counter() - tick
        pool = run.metrics["linear_pool"]
        loaded = load_run(run.path)
        common = {"set": name, "seed": seed, "model": model, "fit_seconds": seconds}
        common |= {k: pool[k] for k in ("weight", "C", "temperature", "fusion_temperature")}
        common |= {"best_epoch": run.metrics["best_epoch"], "val_n": run.metrics["val"]["n"]}
        # The resolved maximum rank, and the posterior's effective rank (None for point estimates).
        common |= {"rank": run.metrics.get("rank"), "effective_rank": run.metrics.get("effective_rank")}
        pooled = rb.score_loaded_test_split(loaded, seed)
        with pool_state(loaded.model, weight=0.0, temperature=pool["fusion_temperature"]):
            alone = rb.score_loaded_test_split(loaded, seed)
        tempered = pool["fusion_temperature"] is not None  # the deterministic kinds; not the Bayesian
        with pool_state(loaded.model, weight=1.0, temperature=1.0 if tempered else None):
            linear = rb.score_loaded_test_split(loaded, seed)
        for variant, s in (("pooled", pooled), ("fusion-only", alone), ("linear-only", linear)):
            rows.append(common | {"variant": variant} | s)
            print(
                {k: rows[-1][k] for k in ("set", "seed", "model", "variant", "accuracy", "nll")},
                "w",
                pool["weight"],
                "C",
                pool["C"],
                flush=True,
            )


if __name__ == "__main__":
    main()
