"""Runner behind NOTES.md §35: each default fit's pool refitted with a wider C grid, on the same trained model.

Usage, from the repository root::

    python studies/results/real_benchmark/pool_grid/runner.py SETS SEEDS MODELS OUT.json

Each (set, seed, model) is fitted once at the defaults (``studies/real_benchmark.py``'s sets, splits and models).
Its pool is then refitted twice with ``fit_linear_pool``, as ``fit`` calls it: with the default grid (which must
give back the stored w and C, a check) and with ``WIDE``; the test split is scored after each. Rows: ``variant``
``stored`` (the run as fitted), ``refit-default``, ``refit-wide`` and ``fusion-only`` (pool weight 0), each with the
pool's ``weight``, ``C`` and ``temperature``. Rows already in OUT are kept.
"""

from __future__ import annotations

import json
import sys
import time
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parents[4]
sys.path[:0] = [str(ROOT / "studies"), str(ROOT), str(ROOT / "studies/results/real_benchmark/linear_pool")]

import real_benchmark as rb  # noqa: E402  (a study module, found through the path above)
from runner import pending_fits  # noqa: E402  (§20's runner: the same sets, splits, models and resumption)

from probfusion import fit, load_run  # noqa: E402
from probfusion.inference.linear_pool import fit_linear_pool, pool_state  # noqa: E402

WIDE = (0.001, 0.01, 0.1, 1.0, 10.0, 100.0)


def refit_pool(loaded, grid: tuple[float, ...]) -> dict:
    """Refit ``loaded``'s pool with ``grid`` in place (as ``fit`` does) and return its w, C and T."""
    train, val, _ = loaded.splits()
    fusion = replace(loaded.config.fusion, linear_pool_c_grid=grid)
    samples = loaded.metrics.get("posterior_samples", 1)
    pool, record = fit_linear_pool(
        loaded.model, loaded.tensors(train), loaded.tensors(val), fusion, num_samples=samples, seed=loaded.config.seed
    )
    return {"weight": pool.weight, "C": record["C"], "temperature": pool.temperature}


def main() -> None:
    sets, seeds, models = (arg.split(",") for arg in sys.argv[1:4])
    out = Path(sys.argv[4])
    rows = json.loads(out.read_text()) if out.exists() else []
    for name, seed, model, config, path in pending_fits(sets, seeds, models, out, rows):
        tick = time.perf_counter()
        run = fit(config, path)
        common = {"set": name, "seed": seed, "model": model, "fit_seconds": time.perf_counter() - tick}
        loaded = load_run(run.path)
        stored = run.metrics["linear_pool"]
        variants = {"stored": {k: stored[k] for k in ("weight", "C", "temperature")}}
        scores = {"stored": rb.score_loaded_test_split(loaded, seed)}
        for variant, grid in (("refit-default", config.fusion.linear_pool_c_grid), ("refit-wide", WIDE)):
            variants[variant] = refit_pool(loaded, grid)
            scores[variant] = rb.score_loaded_test_split(loaded, seed)
        fusion_t = stored["fusion_temperature"]
        with pool_state(loaded.model, weight=0.0, temperature=fusion_t):
            scores["fusion-only"] = rb.score_loaded_test_split(loaded, seed)
        variants["fusion-only"] = {"weight": 0.0, "C": None, "temperature": fusion_t}
        for variant, pool in variants.items():
            rows.append(common | {"variant": variant} | pool | scores[variant])
        wide = variants["refit-wide"]
        changes = f"C {stored['C']} -> {wide['C']}, w {stored['weight']} -> {wide['weight']}"
        print(name, seed, model, {v: round(s["accuracy"], 4) for v, s in scores.items()}, changes, flush=True)


if __name__ == "__main__":
    main()
