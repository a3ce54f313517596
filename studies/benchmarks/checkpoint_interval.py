"""What the resume checkpoint costs a fit: one written every epoch against the default interval, in one process.

A small set is where it matters: MSRC-v1's shape (210 rows of 7 classes in 5 views, here synthetic with 256
features per view) gives two optimizer steps per epoch, so the per-epoch checkpoint (model, best weights and Adam
state, about 240 tensors serialised and fsynced) weighs as much as the training itself. Both arms fit the same
default LMF config for a fixed number of epochs (no early stopping), alternating, and keep the best wall time of
their repeats; the ratio is per-epoch over the default (``fit(..., checkpoint_seconds=CHECKPOINT_SECONDS)``). The
two arms must reach identical metrics: the interval changes when the state is written, never what is trained.

Run: ``python studies/benchmarks/checkpoint_interval.py`` (about five minutes on 2 cores); ``--smoke`` for seconds.
"""

from __future__ import annotations

import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import markdown_table, parse_args, write_results
from _timing import benchmark_output_dir, machine

from probfusion import fit
from probfusion.config import DataConfig, RunConfig, SyntheticConfig, TrainConfig
from probfusion.runs.resume import CHECKPOINT_SECONDS


def main() -> None:
    args = parse_args(__doc__.splitlines()[0], default_seeds=1)
    out = benchmark_output_dir(__file__, args)
    epochs, repeats = (3, 1) if args.smoke else (150, 2)
    shape = SyntheticConfig(num_samples=210, num_modalities=5, dim=16 if args.smoke else 256, num_classes=7)
    config = RunConfig(
        data=DataConfig(name="synthetic", synthetic=shape),
        train=replace(TrainConfig(), epochs=epochs, patience=epochs),
        device="cpu",
    )
    arms = {"every epoch": 0.0, f"default ({CHECKPOINT_SECONDS:g} s)": CHECKPOINT_SECONDS}
    seconds: dict[str, list[float]] = {name: [] for name in arms}
    metrics: dict[str, dict] = {}
    with tempfile.TemporaryDirectory() as scratch:
        warm = replace(config, train=replace(config.train, epochs=1, patience=1))
        fit(warm, Path(scratch) / "warm-up")  # imports and first-call costs, in neither arm
        for repeat in range(repeats):
            for name, interval in arms.items():
                tick = time.perf_counter()
                run = fit(config, Path(scratch) / f"{repeat}-{interval}", checkpoint_seconds=interval)
                seconds[name].append(time.perf_counter() - tick)
                metrics[name] = run.metrics["test"]
    every, default = (min(seconds[name]) for name in arms)
    identical = len({repr(sorted(m.items())) for m in metrics.values()}) == 1
    rows = [
        {"checkpoint": name, "epochs": epochs, "best_seconds": round(min(seconds[name]), 2), "repeats": repeats}
        for name in arms
    ]
    summary = {
        "ratio_every_epoch_over_default": every / default,
        "share_of_fit_saved": 1 - default / every,
        "identical_metrics": identical,
        "machine": machine(),
        "smoke": args.smoke,
    }
    table = markdown_table(
        ["checkpoint", "epochs", "best of repeats (s)"],
        [(r["checkpoint"], r["epochs"], r["best_seconds"]) for r in rows],
    )
    table += f"\nper-epoch / default: {every / default:.2f}x; identical test metrics: {identical}\n"
    write_results(out, rows, summary, table)
    print(table)
    if not identical:
        raise SystemExit("The two arms' test metrics differ: the checkpoint interval changed the fit.")


if __name__ == "__main__":
    main()
