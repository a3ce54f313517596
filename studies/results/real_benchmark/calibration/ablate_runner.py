"""Ablation runner behind NOTES.md §12 (kept as the record of how the weight-decay-scaled rows were made).

Usage, from the repository root::

    python studies/results/real_benchmark/calibration/ablate_runner.py SETS SEEDS MODELS VARIANTS OUT.json

for example ``scene15,cub 0,1,2 lmf,concat wdscaled rows.json``. Sets and models are those of
``studies/real_benchmark.py`` (same splits, same scoring). Variants: ``default`` (the defaults of the code run:
weight decay 1e-4 before NOTES.md §12a, 0.5 / n_train since, so ``default`` rows written before §12a are the
``wd1e-4`` arm); ``wdscaled`` (weight decay 0.5 / n_train); ``wd<value>``; ``small`` (latent 16, hidden 64, rank
16, fused 32). Rows already in OUT are kept (by set, seed, model and variant name).
"""

from __future__ import annotations

import json
import sys
import tempfile
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parents[4]
sys.path[:0] = [str(ROOT / "studies"), str(ROOT)]

import real_benchmark as rb  # noqa: E402  (a study module, found through the path above)

from probfusion.config import RunConfig  # noqa: E402
from probfusion.data import load_dataset, split_dataset  # noqa: E402

KEYS = ("accuracy", "nll", "ece", "fit_seconds", "best_epoch", "epochs_run")


def variant(name: str, config: RunConfig) -> RunConfig:
    """The run config of one ablation arm."""
    if name == "default":
        return config
    if name == "wdscaled":
        n = split_dataset(load_dataset(config.data, seed=config.seed), config.data, config.seed)[0].num_samples
        return replace(config, train=replace(config.train, weight_decay=0.5 / n))
    if name.startswith("wd"):
        return replace(config, train=replace(config.train, weight_decay=float(name[2:])))
    if name == "small":
        return replace(
            config,
            jwae=replace(config.jwae, latent_dim=16, hidden_dim=64),
            fusion=replace(config.fusion, rank=16, fused_dim=32),
        )
    raise SystemExit(f"unknown variant {name!r}")


def main() -> None:
    sets, seeds, models, variants = (arg.split(",") for arg in sys.argv[1:5])
    out = Path(sys.argv[5])
    rows = json.loads(out.read_text()) if out.exists() else []
    done = {(r["set"], r["seed"], r["model"], r["variant"]) for r in rows}
    with tempfile.TemporaryDirectory() as scratch_name:
        scratch = Path(scratch_name)
        for name in sets:
            for seed in map(int, seeds):
                data = rb.data_config(name, seed, scratch)
                for model in models:
                    for arm in variants:
                        if (name, seed, model, arm) in done:
                            continue
                        config = variant(arm, rb.MODELS[model](RunConfig(data=data, seed=seed)))
                        row = rb.model_row(config, scratch / f"run-{name}-{seed}-{model}-{arm}")
                        rows.append(
                            {"set": name, "seed": seed, "model": model, "variant": arm} | {k: row.get(k) for k in KEYS}
                        )
                        print(rows[-1], flush=True)
                        out.write_text(json.dumps(rows))


if __name__ == "__main__":
    main()
