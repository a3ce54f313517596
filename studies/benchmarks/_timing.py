"""Helpers shared by the benchmark scripts: result folder, best-of-repeats wall time, log-log exponents."""

from __future__ import annotations

import argparse
import platform
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import torch

BENCHMARK_RESULTS = Path(__file__).resolve().parents[1] / "results" / "benchmarks"


def benchmark_output_dir(script: str, args: argparse.Namespace) -> Path:
    """``--out`` if given, else ``studies/results/benchmarks/<script>`` (smoke: ``<script>-smoke`` beside it)."""
    out = args.out or BENCHMARK_RESULTS / (Path(script).stem + ("-smoke" if args.smoke else ""))
    out.mkdir(parents=True, exist_ok=True)
    return out


def best_seconds(fn: Callable[[], object], repeats: int, *, warmup: int = 1) -> float:
    """Minimum wall time of ``fn()`` over ``repeats`` calls, after ``warmup`` untimed calls.

    The minimum, not the mean (timeit's advice): on a shared machine the slower repeats measure the neighbours.
    """
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(max(repeats, 1)):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return min(times)


def loglog_exponent(x: Sequence[float], y: Sequence[float]) -> float:
    """Least-squares slope b of ``log y = a + b log x`` (the fitted power of a cost curve ``y ~ x^b``)."""
    if len(x) < 2:
        return float("nan")
    slope, _ = np.polyfit(np.log(np.asarray(x, dtype=float)), np.log(np.asarray(y, dtype=float)), 1)
    return float(slope)


def machine() -> dict[str, object]:
    """What the numbers were measured on (recorded next to them)."""
    return {
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "python": platform.python_version(),
        "processor": platform.processor() or platform.machine(),
    }
