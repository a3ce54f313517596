"""GP-MKL against the default LMF fit as the number of classes grows (issue 15): wall time of each, and their ratio.

For each class count c (10, 21, 68, 100 by default) one synthetic set shaped like "100leaves" (three views of 64
features, 1,600 rows, balanced classes; the default stratified split gives 1,088 training, 192 validation and 320
test rows) is written to a scratch ``.npz`` and fitted twice in this one process, one after the other on the same
rows, through :func:`probfusion.api.fit` with the configuration ``probfusion fit --data FILE`` builds (default LMF) and
``probfusion fit --data FILE --model gp-mkl`` builds (everything else default, so GP-MKL's first stage is the same
LMF fit and its second stage the one-solve multi-class MKL and the GP). The ratio gp-mkl / LMF cancels most of the
machine's load, which moves both; the goal is at most 3x at 100 classes. Each row also records gp-mkl's own split:
MKL solve and the rest of the GP stage (``metrics.json``). A tiny untimed pair of fits runs first, so neither
timed fit pays the one-off imports.

Each view is the class's random centre (scaled 0.6) plus unit Gaussian noise, so each view alone is weak and the
three together separate the classes. The code measured is whatever ``probfusion`` this interpreter imports
(``probfusion_path`` and ``git_sha`` in each row), so the same script times the code before a change
(``PYTHONPATH=<old checkout> python studies/benchmarks/gp_classes.py --out DIR``) and after; ``--before DIR``
adds such runs' rows to this run's table, and ``--append`` keeps the rows already in ``--out`` of the class counts
not rerun (one class count per invocation keeps each run short).

Run: ``python studies/benchmarks/gp_classes.py`` (about 3 minutes per class count on 2 cores after issue 15;
``--classes 100`` for one), ``--smoke`` for seconds.
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import markdown_table, write_results
from _timing import BENCHMARK_RESULTS, machine

import probfusion
from probfusion.api import fit
from probfusion.config import DataConfig, FusionConfig, GPMKLConfig, RunConfig, TrainConfig

CLASSES = (10, 21, 68, 100)
ROWS, VIEWS, WIDTH = 1600, 3, 64
GOAL = 3.0


def _args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="tiny sizes: checks the script runs")
    parser.add_argument("--classes", default=",".join(map(str, CLASSES)), help="comma-separated class counts")
    parser.add_argument("--seed", type=int, default=0, help="seed of the data and of both fits")
    parser.add_argument("--out", type=Path, default=None, help="output folder (default: results/benchmarks/<script>)")
    parser.add_argument("--before", type=Path, nargs="+", default=[], help="folders of runs of this on the old code")
    parser.add_argument("--append", action="store_true", help="keep --out's rows of the class counts not rerun")
    return parser.parse_args()


def write_set(path: Path, *, classes: int, rows: int, seed: int) -> Path:
    """A balanced ``classes``-class set of ``rows`` rows and three 64-feature views, as a probfusion ``.npz``."""
    rng = np.random.default_rng(seed)
    labels = np.arange(rows) % classes
    rng.shuffle(labels)
    views = {
        f"x_v{m}": (0.6 * rng.normal(size=(classes, WIDTH))[labels] + rng.normal(size=(rows, WIDTH))).astype(np.float32)
        for m in range(VIEWS)
    }
    np.savez(path, y=labels, **views)
    return path


def _time_fit(config: RunConfig, out: Path) -> tuple[float, dict]:
    started = time.perf_counter()
    run = fit(config, out)
    return time.perf_counter() - started, run.metrics


def measure(classes: int, scratch: Path, *, seed: int, smoke: bool) -> dict:
    """Fit default LMF, then gp-mkl, on one set; their wall times, ratio and gp-mkl's stage times."""
    rows = 120 if smoke else ROWS
    data = write_set(scratch / f"c{classes}.npz", classes=classes, rows=rows, seed=seed)
    train = TrainConfig(epochs=2) if smoke else TrainConfig()
    gp = GPMKLConfig(gp_steps=3, factor_rank=8) if smoke else GPMKLConfig()
    configs = {
        kind: RunConfig(data=DataConfig(name=str(data)), fusion=FusionConfig(model=kind), train=train, gp=gp, seed=seed)
        for kind in ("lmf", "gp-mkl")
    }
    lmf_seconds, lmf = _time_fit(configs["lmf"], scratch / f"lmf{classes}")
    gp_seconds, gpm = _time_fit(configs["gp-mkl"], scratch / f"gp{classes}")
    return {
        "classes": classes,
        "rows": rows,
        "train_rows": int(lmf["train"]["n"]),
        "lmf_seconds": lmf_seconds,
        "gp_mkl_seconds": gp_seconds,
        "ratio": gp_seconds / lmf_seconds,
        "gp_first_stage_seconds": gpm["train_seconds"],
        "mkl_seconds": gpm["mkl_solver_seconds"],
        "gp_rest_seconds": gpm["gp_fit_seconds"] - gpm["mkl_solver_seconds"],
        "lmf_test_accuracy": lmf["test"]["accuracy"],
        "gp_mkl_test_accuracy": gpm["test"]["accuracy"],
        "lmf_test_nll": lmf["test"]["nll"],
        "gp_mkl_test_nll": gpm["test"]["nll"],
        "git_sha": json.loads((scratch / f"gp{classes}" / "config.json").read_text())["provenance"]["git_sha"],
        "probfusion_path": str(Path(probfusion.__file__).resolve().parent),
    }


def _number(text: str) -> object:
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


def _read(folders: list[Path]) -> dict[int, dict]:
    """``{classes: row}`` from the ``results.csv`` of each folder (later folders win)."""
    rows = {}
    for folder in folders:
        if (folder / "results.csv").is_file():
            with (folder / "results.csv").open() as handle:
                rows.update({int(r["classes"]): {k: _number(v) for k, v in r.items()} for r in csv.DictReader(handle)})
    return rows


def main() -> None:
    args = _args()
    out = args.out or BENCHMARK_RESULTS / (Path(__file__).stem + ("-smoke" if args.smoke else ""))
    out.mkdir(parents=True, exist_ok=True)
    classes = (3, 5) if args.smoke else tuple(int(c) for c in args.classes.split(","))
    rows = []
    with tempfile.TemporaryDirectory() as scratch:
        # One tiny untimed pair first: lazy imports (cvxpy, GPyTorch) and first-call set-up are no part of c.
        (Path(scratch) / "warm-up").mkdir()
        measure(3, Path(scratch) / "warm-up", seed=args.seed, smoke=True)
        for c in classes:
            rows.append(measure(c, Path(scratch), seed=args.seed, smoke=args.smoke))
            print({k: v for k, v in rows[-1].items() if k != "probfusion_path"}, flush=True)
    if args.append:
        fresh = {r["classes"] for r in rows}
        rows = sorted([*(r for c, r in _read([out]).items() if c not in fresh), *rows], key=lambda r: r["classes"])
    before = _read(args.before)
    table_rows = []
    for r in rows:
        b = before.get(r["classes"])
        old = [f"{b[k]:.1f}" for k in ("gp_mkl_seconds", "lmf_seconds")] if b else ["-", "-"]
        table_rows.append(
            [
                r["classes"],
                f"{r['rows']:,} ({r['train_rows']:,})",
                *old,
                f"{b['ratio']:.2f}x" if b else "-",
                f"{r['gp_mkl_seconds']:.1f}",
                f"{r['lmf_seconds']:.1f}",
                f"{r['ratio']:.2f}x",
                f"{r['mkl_seconds']:.1f} / {r['gp_rest_seconds']:.1f}",
            ]
        )
    table = markdown_table(
        [
            "classes",
            "rows (training)",
            "before: gp-mkl s",
            "before: LMF s",
            "before: ratio",
            "gp-mkl s",
            "LMF s",
            "ratio",
            "gp-mkl: MKL s / rest of GP stage s",
        ],
        table_rows,
    )
    largest = max(rows, key=lambda r: r["classes"])
    verdict = "met" if largest["ratio"] <= GOAL else "not met"
    table += (
        f"\nAt {largest['classes']} classes gp-mkl takes {largest['ratio']:.2f}x the default LMF fit "
        f"(goal <= {GOAL:g}x): {verdict}.\n"
    )
    summary = {
        "rows": rows,
        "before": list(before.values()),
        "goal_ratio": GOAL,
        "ratio_at_most_classes": largest["ratio"],
        "verdict": verdict,
        "machine": machine(),
        "smoke": args.smoke,
    }
    write_results(out, rows, summary, table)
    print(table)
    print(f"ratio gp-mkl / LMF at {largest['classes']} classes: {largest['ratio']:.2f}")
    print(out)


if __name__ == "__main__":
    main()
