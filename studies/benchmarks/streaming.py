"""Streaming: peak memory of ``probfusion fit --data DIR/`` as the rows grow 10x, rows per second, and equality.

Synthetic data (two modalities of 32 float32 features, four classes from a planted interaction, a shipped
80/10/10 split) is written chunk by chunk to a scratch folder as ``x_a.npy``, ``x_b.npy``, ``y.npy`` and
``split.npy``, at 100k and 1M rows (``--smoke``: 2k and 20k), and as an ``.npz`` of the same arrays. Each fit
runs the CLI in a fresh subprocess under a small wrapper that reads ``resource.getrusage(RUSAGE_CHILDREN)``:
the peak resident set size of that fit alone (file pages mapped by the process count; the page cache does not).
The model is small (LMF rank 4, latent 8, batch 4096, 2 epochs) so the data, not the model, decides memory.
Throughput on a machine shared with other jobs varies by tens of percent between runs; the 1-minute load average
at the end is recorded with the rows.

Reported per size and source: peak RSS, wall seconds, training rows per second (training rows x epochs over the
training seconds in ``metrics.json``, validation scoring included) and the test accuracy. The acceptance: the
folder's peak RSS at 1M rows within 1.5x of that at 100k, and the folder's metrics identical to the ``.npz``'s
at 100k. The in-memory fit runs at both sizes, to show what streaming saves; at 1M its accuracy must be equal
too (the NLL and Brier of splits past ``EXACT_SCORING_LIMIT`` probabilities come from float64 sums and differ
from the in-memory float32 means in the seventh digit).

Run: ``python studies/benchmarks/streaming.py`` (a few minutes; about 0.6 GB of scratch disk at 1M rows).
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import markdown_table, parse_args, write_results
from _timing import benchmark_output_dir, machine
from end_to_end import _cli, _measure

DIM = 32
CHUNK = 65_536
FIT = ["--model", "lmf", "--rank", "4", "--latent-dim", "8", "--fused-dim", "8", "--epochs", "2", "--patience", "5"]
FIT += ["--batch-size", "4096", "--device", "cpu"]


def write_folder(folder: Path, n: int, seed: int) -> None:
    """Write ``n`` rows in chunks (never all in memory): ``x_a``, ``x_b`` ``(n, 32)`` float32, ``y``, ``split``."""
    from numpy.lib.format import open_memmap

    folder.mkdir(parents=True)
    rng = np.random.default_rng(seed)
    arrays = {
        "x_a": open_memmap(folder / "x_a.npy", mode="w+", dtype=np.float32, shape=(n, DIM)),
        "x_b": open_memmap(folder / "x_b.npy", mode="w+", dtype=np.float32, shape=(n, DIM)),
        "y": open_memmap(folder / "y.npy", mode="w+", dtype=np.int64, shape=(n,)),
        "split": open_memmap(folder / "split.npy", mode="w+", dtype=np.int8, shape=(n,)),
    }
    for start in range(0, n, CHUNK):
        b = min(CHUNK, n - start)
        a, c = rng.normal(size=(b, DIM)).astype(np.float32), rng.normal(size=(b, DIM)).astype(np.float32)
        a[:, 2:] += 3.0  # features that need centring
        noise = 0.3 * rng.normal(size=(2, b))
        arrays["x_a"][start : start + b], arrays["x_b"][start : start + b] = a, c
        arrays["y"][start : start + b] = 2 * (a[:, 0] * c[:, 0] + noise[0] > 0) + (a[:, 1] + c[:, 1] + noise[1] > 0)
        arrays["split"][start : start + b] = np.searchsorted([0.8, 0.9], rng.random(b))
    for array in arrays.values():
        array.flush()
    del arrays


def write_npz(folder: Path, path: Path) -> None:
    """The folder's arrays as one ``.npz`` (the in-memory path's input)."""
    np.savez(path, **{p.stem: np.load(p) for p in sorted(folder.glob("*.npy"))})


def fit_once(cli: list[str], data: Path, run: Path) -> dict:
    """Fit in a fresh process; its peak RSS, wall time, rows per second and metrics."""
    record = _measure([*cli, "fit", "--data", str(data), "--out", str(run), *FIT])
    metrics = json.loads((run / "metrics.json").read_text())
    n_train = metrics["train"]["n"]
    return {
        "peak_rss_mib": record["peak_rss_mib"],
        "wall_seconds": record["wall_seconds"],
        "train_rows_per_second": n_train * metrics["epochs_run"] / metrics["train_seconds"],
        "rows_per_wall_second": sum(metrics[s]["n"] for s in ("train", "val", "test")) / record["wall_seconds"],
        "metrics": {s: metrics[s] for s in ("train", "val", "test")},
    }


def _agreement(folder: dict, npz: dict) -> dict:
    """Whether two fits' split metrics are identical; accuracy equality and the largest relative NLL/Brier gap."""
    gaps = [abs(folder[s][k] - npz[s][k]) / abs(npz[s][k]) for s in npz for k in ("nll", "brier")]
    return {
        "identical": folder == npz,
        "accuracy_equal": all(folder[s]["accuracy"] == npz[s]["accuracy"] for s in npz),
        "max_relative_nll_brier_difference": max(gaps),
    }


def main() -> None:
    args = parse_args(__doc__.splitlines()[0], default_seeds=1)
    out = benchmark_output_dir(__file__, args)
    sizes = (2_000, 20_000) if args.smoke else (100_000, 1_000_000)
    cli = _cli()
    rows, results = [], {}
    with tempfile.TemporaryDirectory() as scratch:
        for n in sizes:
            folder = Path(scratch) / f"rows{n}"
            write_folder(folder, n, seed=n)
            write_npz(folder, Path(scratch) / f"rows{n}.npz")
            sources = {"folder": folder, "npz": Path(scratch) / f"rows{n}.npz"}
            for source, data in sources.items():
                result = fit_once(cli, data, Path(scratch) / f"run-{source}-{n}")
                results[(source, n)] = result
                rows.append(
                    {
                        "source": source,
                        "rows": n,
                        "peak_rss_mib": result["peak_rss_mib"],
                        "wall_seconds": result["wall_seconds"],
                        "train_rows_per_second": result["train_rows_per_second"],
                        "rows_per_wall_second": result["rows_per_wall_second"],
                        "test_accuracy": result["metrics"]["test"]["accuracy"],
                    }
                )
                print(rows[-1], flush=True)
            (Path(scratch) / f"rows{n}.npz").unlink(missing_ok=True)
    small, large = sizes
    ratio = results[("folder", large)]["peak_rss_mib"] / results[("folder", small)]["peak_rss_mib"]
    agreement = {n: _agreement(results[("folder", n)]["metrics"], results[("npz", n)]["metrics"]) for n in sizes}
    equal = agreement[small]["identical"]
    summary = {
        "sizes": list(sizes),
        "rows": rows,
        "folder_peak_rss_ratio": ratio,
        "folder_peak_rss_ratio_goal": 1.5,
        "folder_equals_npz_at_smallest": equal,
        "folder_vs_npz": {str(n): value for n, value in agreement.items()},
        "metrics": {f"{s}-{n}": results[(s, n)]["metrics"] for s, n in results},
        "fit_options": FIT,
        "load_average_1min_at_end": os.getloadavg()[0],
        "machine": machine(),
        "smoke": args.smoke,
    }
    summary["npz_peak_rss_ratio"] = results[("npz", large)]["peak_rss_mib"] / results[("npz", small)]["peak_rss_mib"]
    table = markdown_table(
        ["source", "rows", "peak RSS MiB", "wall s", "training rows/s", "rows/s end to end", "test accuracy"],
        [
            [
                r["source"],
                f"{r['rows']:,}",
                f"{r['peak_rss_mib']:.0f}",
                f"{r['wall_seconds']:.1f}",
                f"{r['train_rows_per_second']:,.0f}",
                f"{r['rows_per_wall_second']:,.0f}",
                f"{r['test_accuracy']:.4f}",
            ]
            for r in rows
        ],
    )
    table += (
        f"\nfolder peak RSS {large:,} / {small:,} rows: {ratio:.2f}x (goal <= 1.5x: "
        f"{'met' if ratio <= 1.5 else 'not met'}); folder metrics identical to the .npz's at {small:,} rows: {equal}; "
        f"at {large:,} rows accuracy equal: {agreement[large]['accuracy_equal']}, largest relative NLL/Brier "
        f"difference {agreement[large]['max_relative_nll_brier_difference']:.1e} (splits past the exact-scoring cap "
        "are scored from float64 sums)\n"
    )
    write_results(out, rows, summary, table)
    print(table)
    print(out)


if __name__ == "__main__":
    main()
