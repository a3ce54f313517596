"""MKL solve time and GP fit time against the number of training points n, with fitted exponents, on mfeat.

The GP + MKL baseline (:func:`~probfusion.baselines.gp_fit.fit_gp_mkl`, default settings, kernels on the six
standardised input views, so no encoder is trained) on random subsets of n = 250, 500, 1000, 2000 of mfeat's
2,000 digits, with the labels "digit 0 against the rest": one binary Lanckriet problem (the ten one-vs-rest
problems of the ten-class fit cost ten times as much; ``mkl_solver_vs_reference.py`` times them at n = 2000).
Three times per n, each from one run:

* MKL solve: the cvxpy cone program on the rank-48 kernel factors (``MKLResult.seconds``);
* GP fit: the rest of ``fit_gp_mkl`` (median-heuristic scales, Nystrom factors, 100 Adam steps on the exact GP's
  marginal likelihood, which uses a subset of at most 512 points, so it flattens above n = 512);
* GP posterior: the first predictive call on 200 points, which builds the exact posterior (one eigendecomposition
  of the shared (n, n) kernel, O(n^3) whatever the number of classes; before issue 15 a Cholesky factor per
  class) and predicts.

Exponents: least squares of log time on log n. Profile: cProfile of one MKL solve at the largest n, split into
the conic solver's own time (cvxpy's ``solve_via_data``) and everything else (cvxpy's canonicalisation and
problem construction), which says whether a faster formulation or a faster solver would close the gap.

Run: ``python studies/benchmarks/gp_mkl_scaling.py`` (about a minute); ``--smoke`` for seconds.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import markdown_table, parse_args, write_results
from _timing import benchmark_output_dir, loglog_exponent, machine

from probfusion.baselines import fit_gp_mkl
from probfusion.config import DataConfig, GPMKLConfig
from probfusion.data.registry import load_dataset
from probfusion.data.transforms import Standardizer
from probfusion.inference.data import TensorData

PREDICT_POINTS = 200


def main() -> None:
    args = parse_args(__doc__.splitlines()[0], default_seeds=1)
    out = benchmark_output_dir(__file__, args)
    data = load_dataset(DataConfig(name="mfeat"), seed=0)
    views = Standardizer.fit(data.views).transform(data.views)
    if args.smoke:
        sizes, config = (60, 120), GPMKLConfig(features="input", gp_steps=3, factor_rank=8)
    else:
        sizes, config = (250, 500, 1000, 2000), GPMKLConfig(features="input")
    rows = []
    # One untimed fit first: the first call pays one-off costs (lazy imports, solver set-up) that are no part of n.
    warm_index = np.random.default_rng(12345).permutation(data.num_samples)[: min(sizes)]
    fit_gp_mkl(
        TensorData(
            views={m: torch.as_tensor(x[warm_index], dtype=torch.float32) for m, x in views.items()},
            labels=torch.as_tensor((data.labels[warm_index] == 0).astype(np.int64)),
        ),
        encoder=None,
        config=config,
        seed=0,
        num_classes=2,
    )
    for seed in range(args.seeds):
        order = np.random.default_rng(seed).permutation(data.num_samples)
        for n in sizes:
            index = order[:n]
            train = TensorData(
                views={m: torch.as_tensor(x[index], dtype=torch.float32) for m, x in views.items()},
                labels=torch.as_tensor((data.labels[index] == 0).astype(np.int64)),
            )
            probe = {m: torch.as_tensor(x[order[:PREDICT_POINTS]], dtype=torch.float32) for m, x in views.items()}
            fitted = fit_gp_mkl(train, encoder=None, config=config, seed=seed, num_classes=2)
            started = time.perf_counter()
            with torch.no_grad():
                fitted.model.predictive_logits(probe, 1)
            rows.append(
                {
                    "seed": seed,
                    "n": n,
                    "mkl_seconds": fitted.solver_seconds,
                    "gp_fit_seconds": fitted.fit_seconds - fitted.solver_seconds,
                    "gp_posterior_seconds": time.perf_counter() - started,
                    "exact_gp": bool(fitted.model.exact),
                    "mkl_status": fitted.solver_status,
                }
            )
            print(rows[-1], flush=True)
    profile = _profile_solve(views, data.labels, sizes[-1], config)
    print(profile, flush=True)
    quantities = ("mkl_seconds", "gp_fit_seconds", "gp_posterior_seconds")
    means = {q: [float(np.mean([r[q] for r in rows if r["n"] == n])) for n in sizes] for q in quantities}
    exponents = {q: loglog_exponent(list(sizes), means[q]) for q in quantities}
    summary = {
        "sizes": list(sizes),
        "mean_seconds": means,
        "exponents_in_n": exponents,
        "factor_rank": config.factor_rank,
        "gp_steps": config.gp_steps,
        "hyperparameter_points": config.hyperparameter_points,
        "problem": "mfeat, digit 0 vs rest, six RBF kernels on the standardised inputs",
        "mkl_profile_at_largest_n": profile,
        "machine": machine(),
        "smoke": args.smoke,
    }
    table = markdown_table(
        ["n", "MKL solve s", "GP fit s", "GP posterior (eigendecomposition + 200 predictions) s"],
        [
            [
                n,
                f"{means['mkl_seconds'][i]:.2f}",
                f"{means['gp_fit_seconds'][i]:.2f}",
                f"{means['gp_posterior_seconds'][i]:.3f}",
            ]
            for i, n in enumerate(sizes)
        ]
        + [
            [
                "fitted exponent of n",
                f"{exponents['mkl_seconds']:.2f}",
                f"{exponents['gp_fit_seconds']:.2f}",
                f"{exponents['gp_posterior_seconds']:.2f}",
            ]
        ],
    )
    table += (
        f"\nProfile of one MKL solve at n = {sizes[-1]}: {profile['total_seconds']:.2f} s, of which the conic solver "
        f"{profile['solver_seconds']:.2f} s ({profile['solver_share']:.0%}); the rest is cvxpy's problem "
        "construction and canonicalisation.\n"
    )
    write_results(out, rows, summary, table)
    print(table)
    print(out)


def _profile_solve(views: dict[str, np.ndarray], labels: np.ndarray, n: int, config: GPMKLConfig) -> dict[str, float]:
    """Profile one binary MKL solve on ``n`` points (cProfile): total time and the conic solver's share of it."""
    import cProfile
    import pstats

    from probfusion.baselines import kernel_factor, kernel_scale, solve_mkl_dual

    generator = torch.Generator().manual_seed(0)
    index = np.random.default_rng(0).permutation(len(labels))[:n]
    blocks = [torch.as_tensor(x[index], dtype=torch.float64) for x in views.values()]
    factors = []
    for block in blocks:
        scale = kernel_scale(block, kind=config.kernel, generator=generator)
        factors.append(
            kernel_factor(block, kind=config.kernel, scale=scale, max_rank=config.factor_rank, generator=generator)
        )
    target = torch.as_tensor((labels[index] == 0).astype(np.int64))
    profiler = cProfile.Profile()
    started = time.perf_counter()
    profiler.enable()
    solve_mkl_dual(factors, target, formulation=config.formulation, svm_c=config.svm_c)
    profiler.disable()
    total = time.perf_counter() - started
    stats = pstats.Stats(profiler).stats  # {(file, line, name): (calls, primitive, own, cumulative, callers)}
    solver = max((v[3] for k, v in stats.items() if k[2] == "solve_via_data"), default=0.0)
    return {"total_seconds": total, "solver_seconds": solver, "solver_share": solver / total if total else 0.0}


if __name__ == "__main__":
    main()
