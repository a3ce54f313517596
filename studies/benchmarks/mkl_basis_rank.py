"""The joint multi-class MKL's basis rank q: solve time against the weights' distance to the unprojected optimum.

``GPMKLConfig.basis_rank`` projects every kernel factor on the q leading left singular vectors of their
concatenation before the one joint solve (``probfusion/baselines/multiclass_mkl.py``). For each set, the same
RBF factors (median heuristic, rank 48 per view, standardised views) are solved unprojected and at each q; the
table gives the CPU seconds of each solve, the largest weight difference to the unprojected optimum and the
relative objective gap. The default q is the smallest whose worst weight difference over the sets is no larger
than that of the next larger q. Sets: mfeat (n = 2,000, the issue-15 benchmark size, 6 views, 10 classes) and
the real ``.mat`` sets in ``../shared/data`` (subsampled rows where noted).
Run: ``python studies/benchmarks/mkl_basis_rank.py`` (about 3 minutes, idle machine); ``--smoke`` for seconds.
"""

from __future__ import annotations

import itertools
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from _common import markdown_table, output_dir, parse_args, write_results

from probfusion.baselines import kernel_factor, kernel_scale, solve_mkl_dual
from probfusion.config import DataConfig, GPMKLConfig
from probfusion.data.mat import load_mat
from probfusion.data.registry import load_dataset
from probfusion.data.transforms import Standardizer

SHARED = Path(__file__).resolve().parents[3] / "shared" / "data"
MAT_SETS = {  # name: (file under SHARED, rows used)
    "cub": ("cub/cub_googlenet_doc2vec_c10.mat", 600),
    "msrc_v1": ("msrc_v1/MSRC_v1.mat", 210),
    "scene15": ("scene15/Scene-15.mat", 1500),
}


def _factors(views: dict[str, np.ndarray], rows: int, rank: int) -> list[np.ndarray]:
    standardised = Standardizer.fit(views).transform(views)
    generator = torch.Generator().manual_seed(0)
    factors = []
    for x in standardised.values():
        block = torch.as_tensor(x[:rows], dtype=torch.float64)
        scale = kernel_scale(block, kind="rbf", generator=generator)
        factors.append(np.asarray(kernel_factor(block, kind="rbf", scale=scale, max_rank=rank, generator=generator)))
    return factors


def _sets(smoke: bool) -> dict[str, tuple[dict[str, np.ndarray], np.ndarray, int]]:
    """``{name: (views in a seeded row order, labels, rows used)}``."""
    out = {}
    mfeat = load_dataset(DataConfig(name="mfeat"), seed=0)
    order = np.random.default_rng(0).permutation(mfeat.num_samples)
    out["mfeat"] = ({m: x[order] for m, x in mfeat.views.items()}, mfeat.labels[order], 150 if smoke else 2000)
    for name, (file, rows) in MAT_SETS.items():
        if (SHARED / file).is_file() and (not smoke or name == "msrc_v1"):
            data = load_mat(SHARED / file)
            order = np.random.default_rng(0).permutation(data.num_samples)
            labels = np.asarray(data.labels)[order]
            out[name] = ({m: x[order] for m, x in data.views.items()}, labels, 80 if smoke else rows)
    return out


def main() -> None:
    args = parse_args(__doc__.splitlines()[0], default_seeds=1)
    out = output_dir(__file__, args)
    rank, candidates = (8, (8, 16)) if args.smoke else (48, (32, 48, 64, 96))
    rows = []
    for name, (views, labels, n) in _sets(args.smoke).items():
        factors = _factors(views, n, rank)
        results = {}
        for q in (None, *candidates):
            started = time.process_time()
            results[q] = solve_mkl_dual(factors, labels[:n], basis_rank=q)
            seconds = time.process_time() - started
            exact = results[None]
            rows.append(
                {
                    "set": name,
                    "n": n,
                    "views": len(factors),
                    "classes": int(np.unique(labels[:n]).size),
                    "basis_rank": "none" if q is None else q,
                    "cpu_seconds": seconds,
                    "status": results[q].status,
                    "max_weight_difference": float(np.abs(results[q].beta - exact.beta).max()),
                    "relative_objective_gap": results[q].objective / exact.objective - 1.0,
                    "beta": " ".join(f"{b:.4f}" for b in results[q].beta),
                }
            )
            print(rows[-1], flush=True)
    worst = {q: max(r["max_weight_difference"] for r in rows if r["basis_rank"] == q) for q in candidates}
    # None of them (weights still improving at the largest q): the largest.
    smallest = next((q for q, larger in itertools.pairwise(candidates) if worst[q] <= worst[larger]), candidates[-1])
    summary = {
        "rows": rows,
        "worst_weight_difference": {str(q): worst[q] for q in candidates},
        "rule": "smallest q whose worst weight difference is at most that of the next larger q",
        "chosen_by_rule": smallest,
        "default_basis_rank": GPMKLConfig().basis_rank,
        "default_matches_rule": GPMKLConfig().basis_rank == smallest,
    }
    table = markdown_table(
        ["set", "n", "views", "classes", "basis rank q", "CPU s", "max weight diff to exact", "objective gap"],
        [
            [
                r["set"],
                r["n"],
                r["views"],
                r["classes"],
                r["basis_rank"],
                f"{r['cpu_seconds']:.1f}",
                f"{r['max_weight_difference']:.4f}",
                f"{r['relative_objective_gap']:+.4f}",
            ]
            for r in rows
        ],
    )
    table += (
        "\nWorst weight difference over the sets: "
        + ", ".join(f"q = {q}: {worst[q]:.4f}" for q in candidates)
        + f". Smallest q no worse than the next larger: {smallest} (default {GPMKLConfig().basis_rank}).\n"
    )
    write_results(out, rows, summary, table)
    print(table)


if __name__ == "__main__":
    main()
