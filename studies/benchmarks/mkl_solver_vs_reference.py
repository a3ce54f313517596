"""MKL solve time on mfeat: the cone (low-rank factor) formulation against the dense QCQP, in one process.

Six RBF kernels (median heuristic) on the standardised mfeat views. Times, each measured here:

* one binary (one-vs-rest) Lanckriet problem through rank-k factors as second-order cones, at n = 500, 1000, 2000;
* the same problem with dense ``(n, n)`` quadratic forms (the formulation that took 15.6 s at n = 1000);
* the ten-class weights at n = 2000: all ten one-vs-rest problems (weights averaged), the joint problem solved once
  (one-vs-rest duals sharing the weights; ``multiclass="joint"``) on the factors projected on the default joint
  basis (``GPMKLConfig().basis_rank`` columns) and, for reference, on the unprojected factors, with the largest
  weight difference of each to the unprojected joint optimum; and the centred-alignment QP;
* SimpleMKL (reduced gradient, libsvm) on a subset, with the largest weight difference to the cone solution.

Goal: the binary cone solve at n = 2000 under 10 s on 2 cores, and the one-solve ten-class weights under 10 s.
Ratios are dense / cone time. Wall seconds and this process's CPU seconds are both recorded: on a shared machine
the wall time also counts the neighbours.
Run: ``python studies/benchmarks/mkl_solver_vs_reference.py`` (a few minutes); ``--smoke`` for seconds.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from _common import markdown_table, output_dir, parse_args, write_results

from probfusion.baselines import gram, kernel_factor, kernel_scale, simple_mkl, solve_mkl_dual
from probfusion.config import DataConfig, GPMKLConfig
from probfusion.data.registry import load_dataset
from probfusion.data.transforms import Standardizer


def _timed(**kwargs: object) -> tuple[object, float]:
    started = time.process_time()
    result = solve_mkl_dual(**kwargs)  # type: ignore[arg-type]
    return result, time.process_time() - started


def _multiclass(factors: list, labels: np.ndarray, *, exact: bool) -> dict:
    """Ten-class weights: one-vs-rest (ten solves), joint on the default basis, joint unprojected, alignment."""
    basis_rank = GPMKLConfig().basis_rank
    ovr, ovr_cpu = _timed(grams_or_factors=factors, y=labels, multiclass="one-vs-rest")
    joint, joint_cpu = _timed(grams_or_factors=factors, y=labels, basis_rank=basis_rank)
    aligned = solve_mkl_dual(factors, labels, formulation="alignment")
    row = {
        "ovr_seconds": ovr.seconds,
        "ovr_cpu_seconds": ovr_cpu,
        "ovr_beta": np.round(ovr.beta, 4).tolist(),
        "joint_basis_rank": basis_rank,
        "joint_seconds": joint.seconds,
        "joint_cpu_seconds": joint_cpu,
        "joint_status": joint.status,
        "joint_beta": np.round(joint.beta, 4).tolist(),
        "alignment_seconds": aligned.seconds,
        "alignment_beta": np.round(aligned.beta, 4).tolist(),
    }
    if exact:  # the same problem on the unprojected factors: what the projection costs in the weights
        full, full_cpu = _timed(grams_or_factors=factors, y=labels, basis_rank=None)
        row.update(
            joint_exact_seconds=full.seconds,
            joint_exact_cpu_seconds=full_cpu,
            joint_exact_status=full.status,
            joint_exact_beta=np.round(full.beta, 4).tolist(),
            joint_max_beta_difference_to_exact=float(np.abs(joint.beta - full.beta).max()),
            ovr_max_beta_difference_to_exact=float(np.abs(ovr.beta - full.beta).max()),
        )
    return row


def main() -> None:
    args = parse_args(__doc__.splitlines()[0], default_seeds=1)
    out = output_dir(__file__, args)
    data = load_dataset(DataConfig(name="mfeat"), seed=0)
    views = Standardizer.fit(data.views).transform(data.views)
    sizes, dense_sizes, rank, reference_n = (
        ((120, 200), (120,), 8, 60) if args.smoke else ((500, 1000, 2000), (500, 1000, 2000), 48, 300)
    )
    rows = []
    for seed in range(args.seeds):
        generator = torch.Generator().manual_seed(seed)
        order = np.random.default_rng(seed).permutation(data.num_samples)
        for n in sizes:
            index = order[:n]
            blocks = [torch.as_tensor(x[index], dtype=torch.float64) for x in views.values()]
            scales = [kernel_scale(b, kind="rbf", generator=generator) for b in blocks]
            start = time.perf_counter()
            factors = [
                kernel_factor(b, kind="rbf", scale=s, max_rank=rank, generator=generator)
                for b, s in zip(blocks, scales, strict=True)
            ]
            factor_seconds = time.perf_counter() - start
            binary = (data.labels[index] == 0).astype(int)
            cone = solve_mkl_dual(factors, binary)
            row = {
                "seed": seed,
                "n": n,
                "rank": rank,
                "factor_seconds": factor_seconds,
                "cone_seconds": cone.seconds,
                "cone_status": cone.status,
                "cone_beta": np.round(cone.beta, 4).tolist(),
            }
            if n in dense_sizes:
                dense = solve_mkl_dual(factors, binary, dense=True)
                row.update(
                    dense_seconds=dense.seconds,
                    dense_over_cone=dense.seconds / cone.seconds,
                    max_beta_difference=float(np.abs(dense.beta - cone.beta).max()),
                )
            if n == sizes[-1]:
                row.update(_multiclass(factors, data.labels[index], exact=not args.smoke))
            rows.append(row)
            print(row, flush=True)
        # SimpleMKL reference on a subset with exact Gram matrices (both solvers see the same kernels).
        index = order[:reference_n]
        grams = []
        for x in views.values():
            b = torch.as_tensor(x[index], dtype=torch.float64)
            grams.append(gram(b, b, kind="rbf", scale=kernel_scale(b, kind="rbf")).numpy())
        binary = (data.labels[index] == 0).astype(int)
        cone = solve_mkl_dual(grams, binary)
        start = time.perf_counter()
        reference = simple_mkl(grams, binary)
        rows.append(
            {
                "seed": seed,
                "n": reference_n,
                "rank": reference_n,
                "cone_seconds": cone.seconds,
                "simple_mkl_seconds": time.perf_counter() - start,
                "max_beta_difference": float(np.abs(reference.beta - cone.beta).max()),
            }
        )
        print(rows[-1], flush=True)
    table_rows = [
        [
            r["n"],
            r["rank"],
            f"{r['cone_seconds']:.2f}",
            f"{r.get('dense_seconds', float('nan')):.2f}",
            f"{r.get('dense_over_cone', float('nan')):.1f}",
            f"{r.get('simple_mkl_seconds', float('nan')):.2f}",
            f"{r.get('max_beta_difference', float('nan')):.1e}",
        ]
        for r in rows
    ]
    largest = [r for r in rows if r["n"] == sizes[-1] and "ovr_seconds" in r]
    summary = {
        "rows": rows,
        "binary_cone_seconds_at_largest_n": float(np.mean([r["cone_seconds"] for r in largest])),
        "ovr_cone_seconds_at_largest_n": float(np.mean([r["ovr_seconds"] for r in largest])),
        "ovr_cpu_seconds_at_largest_n": float(np.mean([r["ovr_cpu_seconds"] for r in largest])),
        "joint_seconds_at_largest_n": float(np.mean([r["joint_seconds"] for r in largest])),
        "joint_cpu_seconds_at_largest_n": float(np.mean([r["joint_cpu_seconds"] for r in largest])),
        "joint_basis_rank": GPMKLConfig().basis_rank,
        "joint_exact_seconds_at_largest_n": _mean_or_none(largest, "joint_exact_seconds"),
        "joint_exact_cpu_seconds_at_largest_n": _mean_or_none(largest, "joint_exact_cpu_seconds"),
        "joint_max_beta_difference_to_exact": _mean_or_none(largest, "joint_max_beta_difference_to_exact"),
        "ovr_max_beta_difference_to_exact": _mean_or_none(largest, "ovr_max_beta_difference_to_exact"),
        "goal_joint_under_10s_cpu": bool(np.mean([r["joint_cpu_seconds"] for r in largest]) < 10.0),
        "alignment_seconds_at_largest_n": float(np.mean([r["alignment_seconds"] for r in largest])),
        "goal_binary_under_10s": bool(np.mean([r["cone_seconds"] for r in largest]) < 10.0),
    }
    table = markdown_table(
        ["n", "factor rank k", "cone s", "dense s", "dense / cone", "SimpleMKL s", "max |beta diff|"], table_rows
    )
    exact = summary["joint_exact_seconds_at_largest_n"]
    table += (
        f"\nTen classes at n = {sizes[-1]}: one-vs-rest (ten solves) {summary['ovr_cone_seconds_at_largest_n']:.1f} "
        f"s (CPU {summary['ovr_cpu_seconds_at_largest_n']:.1f} s); joint, one solve on a rank-"
        f"{summary['joint_basis_rank']} basis {summary['joint_seconds_at_largest_n']:.1f} s (CPU "
        f"{summary['joint_cpu_seconds_at_largest_n']:.1f} s)"
        + (
            f"; joint on the unprojected factors {exact:.1f} s (CPU "
            f"{summary['joint_exact_cpu_seconds_at_largest_n']:.1f} s). Largest weight difference to the unprojected "
            f"joint optimum: projected {summary['joint_max_beta_difference_to_exact']:.4f}, one-vs-rest average "
            f"{summary['ovr_max_beta_difference_to_exact']:.4f}.\n"
            if exact is not None
            else ".\n"
        )
    )
    write_results(out, [{k: str(v) if isinstance(v, list) else v for k, v in r.items()} for r in rows], summary, table)
    print(table)
    print({k: v for k, v in summary.items() if k != "rows"})


def _mean_or_none(rows: list[dict], key: str) -> float | None:
    values = [r[key] for r in rows if key in r]
    return float(np.mean(values)) if values else None


if __name__ == "__main__":
    main()
