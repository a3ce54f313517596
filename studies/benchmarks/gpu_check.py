"""GPU check: fit, evaluate (PGD) and predict on CUDA, with throughput beside the CPU, for a machine with a GPU.

The same default run (LMF on av-digits) is fitted, attacked and applied to its own test rows once per device in
one process; the script prints rows per second of each step on each device and the CUDA / CPU ratio, and checks
that the two devices agree on the clean test accuracy (to one row) and on the predictions (to 1e-4). Without a
CUDA device it says so and measures the CPU alone (the code path is device-agnostic; this keeps it run).

Run: ``python studies/benchmarks/gpu_check.py`` (a minute or two); ``--smoke`` for a seconds-long CPU check.
Writes ``studies/results/benchmarks/gpu_check/{results.csv,summary.json,table.md}``.
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import markdown_table, parse_args, write_results
from _timing import benchmark_output_dir, machine

from probfusion import RunConfig, TrainConfig, fit, load_run
from probfusion.config import EvaluationConfig
from probfusion.evaluation import evaluate


def _one(device: str, root: Path, smoke: bool) -> dict:
    config = RunConfig(device=device, train=TrainConfig(epochs=1 if smoke else None))
    started = time.perf_counter()
    run = fit(config, root / f"run-{device}")
    fit_s = time.perf_counter() - started
    loaded = load_run(run.path, device=device)
    test = loaded.splits()[2]
    started = time.perf_counter()
    report = evaluate(loaded, EvaluationConfig(eps=(0.1,), modality="all", samples=4), name="gpu-check")
    evaluate_s = time.perf_counter() - started
    views = {m: np.asarray(x, dtype=np.float64) for m, x in test.views.items()}
    started = time.perf_counter()
    prediction = loaded.predict(views)
    predict_s = time.perf_counter() - started
    n = test.num_samples
    return {
        "device": device,
        "fit_seconds": fit_s,
        "evaluate_rows_per_second": n / evaluate_s,
        "predict_rows_per_second": n / predict_s,
        "clean_accuracy": report.rows[0]["accuracy"],
        "n_test": n,
        "probabilities": prediction.probabilities,
    }


def main() -> None:
    args = parse_args(__doc__.splitlines()[0], default_seeds=1)
    out = benchmark_output_dir(__file__, args)
    devices = ["cpu", "cuda"] if torch.cuda.is_available() else ["cpu"]
    if len(devices) == 1:
        print("No CUDA device here: measuring the CPU alone (run this on a machine with a GPU for the ratio).")
    with tempfile.TemporaryDirectory() as tmp:
        rows = [_one(device, Path(tmp), args.smoke) for device in devices]
    summary: dict = {"machine": machine(), "devices": devices}
    if len(rows) == 2:
        cpu, cuda = rows
        summary.update(
            accuracy_agrees=abs(cpu["clean_accuracy"] - cuda["clean_accuracy"]) <= 1 / cpu["n_test"] + 1e-12,
            max_probability_difference=float(np.abs(cpu["probabilities"] - cuda["probabilities"]).max()),
            ratios={k: cuda[k] / cpu[k] for k in ("evaluate_rows_per_second", "predict_rows_per_second")},
        )
    table_rows = [
        (
            r["device"],
            f"{r['fit_seconds']:.1f}",
            f"{r['evaluate_rows_per_second']:.0f}",
            f"{r['predict_rows_per_second']:.0f}",
        )
        for r in rows
    ]
    table = markdown_table(("device", "fit s", "evaluate rows/s", "predict rows/s"), table_rows)
    write_results(out, [{k: v for k, v in r.items() if k != "probabilities"} for r in rows], summary, table)
    print(table)
    print({k: v for k, v in summary.items() if k != "machine"})


if __name__ == "__main__":
    main()
