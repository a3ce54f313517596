"""Run every benchmark, then write ``studies/results/benchmarks/benchmarks.json`` and ``table.md`` (the README's table).

One command regenerates all performance numbers: ``python studies/benchmarks/run_all.py`` (about 5 minutes on
2 cores). Each benchmark runs as its own process (so one's memory and threads do not colour another's timings) and
writes its own folder, ``studies/results/benchmarks/<name>/`` (``bayes_vs_det`` and ``mkl_solver_vs_reference``
keep their older ``studies/results/<name>/``); this script then gathers their ``summary.json`` files into one
JSON and one markdown table, with each goal and whether it is met. With ``--out DIR`` every benchmark writes to
``DIR/<name>`` and the gathered files go to ``DIR``. ``--smoke`` runs the benchmarks in smoke mode in this process
(seconds each; separate processes would pay the package's start-up each time), leaving out the three made of
subprocesses (``streaming``, ``end_to_end``, ``profile_cli``), which the test suite smoke-runs on their own.
``--only a,b`` reruns just those benchmarks and gathers the others from the ``summary.json`` already in their
folders (the long ones, ``gp_classes`` and ``streaming``, take about 12 and 3 minutes).
"""

from __future__ import annotations

import json
import runpy
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import RESULTS, markdown_table, parse_args
from _timing import machine

from probfusion.runs import atomic_write_json, atomic_write_text

HERE = Path(__file__).resolve().parent
BENCHMARKS = (
    "lmf_vs_tfn",
    "lmf_official",
    "bayes_vs_det",
    "gp_mkl_scaling",
    "mkl_solver_vs_reference",
    "attack_cost",
    "gp_classes",
    "streaming",
    "end_to_end",
    "profile_cli",
)
# Benchmarks made of subprocesses (fits in fresh processes, CLI commands): left out of --smoke.
_SUBPROCESS_BENCHMARKS = ("streaming", "end_to_end", "profile_cli")


def _run(name: str, out: Path, smoke: bool) -> None:
    argv = [str(HERE / f"{name}.py"), "--out", str(out)] + (["--smoke"] if smoke else [])
    print(f"== {name}", flush=True)
    if smoke:
        saved = sys.argv
        sys.argv = argv
        try:
            runpy.run_path(argv[0], run_name="__main__")
        finally:
            sys.argv = saved
    else:
        subprocess.run([sys.executable, *argv], check=True)


def _num(value: float | None, spec: str) -> str:
    """Format a number; strict JSON stores NaN as null, shown as n/a."""
    return "n/a" if value is None else format(value, spec)


def _verdict(met: bool) -> str:
    return "met" if met else "**not met**"


def _rows(s: dict) -> list[list[str]]:
    """One row per measured quantity: benchmark, quantity, value, goal, verdict."""
    lmf, bayes, gp, mkl = s["lmf_vs_tfn"], s["bayes_vs_det"], s["gp_mkl_scaling"], s["mkl_solver_vs_reference"]
    attack = s["attack_cost"]
    r, paper, exps = lmf["ratios"], lmf["paper"], lmf["scaling_exponents_in_d_plus_1"]
    mosi = lmf["mosi"]
    rows = [
        [
            "LMF vs TFN (MOSI sizes)",
            "parameters, whole model (TFN / LMF)",
            f"{mosi['tfn']['whole_model_parameters']:,} / {mosi['lmf']['whole_model_parameters']:,} = "
            f"{r['parameter_ratio']:.1f}x",
            f">= {paper['parameter_ratio']:.1f}x (paper: 12.5M / 1.1M)",
            _verdict(r["parameter_ratio"] >= paper["parameter_ratio"]),
        ],
        [
            "LMF vs TFN (MOSI sizes)",
            "parameters, fusion stage (TFN / LMF)",
            f"{mosi['tfn']['fusion_parameters']:,} / {mosi['lmf']['fusion_parameters']:,} = "
            f"{r['fusion_parameter_ratio']:.0f}x",
            "-",
            "-",
        ],
        [
            "LMF vs TFN (MOSI sizes)",
            "training throughput (LMF / TFN)",
            f"{mosi['lmf']['train_examples_per_second']:.0f} / {mosi['tfn']['train_examples_per_second']:.0f} "
            f"ex/s = {r['train_ratio']:.2f}x",
            f">= 3x (paper {paper['train_ratio']:.2f}x)",
            _verdict(r["train_ratio"] >= 3.0),
        ],
        [
            "LMF vs TFN (MOSI sizes)",
            "inference throughput (LMF / TFN)",
            f"{mosi['lmf']['inference_examples_per_second']:.0f} / "
            f"{mosi['tfn']['inference_examples_per_second']:.0f} ex/s = {r['inference_ratio']:.2f}x",
            f"paper {paper['inference_ratio']:.2f}x",
            _verdict(r["inference_ratio"] >= paper["inference_ratio"]),
        ],
        [
            "LMF vs TFN, M = 3, d_m = 4..64",
            "fitted exponent of (d_m + 1): parameters; train-step time",
            f"LMF {_num(exps['lmf']['parameters'], '.2f')}; {_num(exps['lmf']['train_step_seconds'], '.2f')} / "
            f"TFN {_num(exps['tfn']['parameters'], '.2f')}; {_num(exps['tfn']['train_step_seconds'], '.2f')}",
            "LMF 1, TFN 3 (O(r sum d_m) vs O(prod d_m))",
            "-",
        ],
        [
            "Bayesian overhead",
            "SVI epoch / deterministic epoch (step: own batch sizes)",
            f"{bayes['svi_epoch_ratio']:.2f}x (step {bayes['svi_step_ratio']:.2f}x)",
            "<= 3x",
            _verdict(bayes["svi_epoch_ratio"] <= 3.0),
        ],
        [
            "Bayesian overhead",
            "predictive S = 1, 10, 100 / one deterministic pass",
            ", ".join(f"{float(v):.1f}x" for v in bayes["predictive_ratios"].values()),
            "<= 10x at S = 100",
            _verdict(bayes["predictive_ratio"] <= 10.0),
        ],
        [
            "Bayesian overhead",
            "predictive time exponent in S (1..100)",
            f"{bayes['predictive_exponent_in_samples']:.2f}",
            "< 1 (sub-linear)",
            _verdict(bayes["predictive_exponent_in_samples"] < 1.0),
        ],
    ]
    sizes, means, gexp = gp["sizes"], gp["mean_seconds"], gp["exponents_in_n"]
    for key, label in (
        ("mkl_seconds", "MKL solve (binary, cone)"),
        ("gp_fit_seconds", "GP fit"),
        ("gp_posterior_seconds", "GP posterior (shared eigendecomposition + predict)"),
    ):
        rows.append(
            [
                f"GP + MKL, n = {sizes[0]}..{sizes[-1]}",
                f"{label}: seconds; fitted exponent of n",
                ", ".join(f"{v:.2f}" for v in means[key]) + f"; n^{_num(gexp[key], '.2f')}",
                "-",
                "-",
            ]
        )
    rows.append(
        [
            "MKL at the largest n",
            "binary cone solve; ten one-vs-rest problems (s)",
            f"{mkl['binary_cone_seconds_at_largest_n']:.1f}; {mkl['ovr_cone_seconds_at_largest_n']:.1f}",
            "< 10 s",
            f"binary {_verdict(mkl['binary_cone_seconds_at_largest_n'] < 10)}, "
            f"ten-class {_verdict(mkl['ovr_cone_seconds_at_largest_n'] < 10)}",
        ]
    )
    if "joint_seconds_at_largest_n" in mkl:  # the ten-class weights from one problem, against ten solves
        exact = mkl.get("joint_exact_seconds_at_largest_n")
        rows.append(
            [
                "MKL at the largest n",
                f"ten classes, one joint solve (rank-{mkl['joint_basis_rank']} basis): wall s (CPU s); "
                "ten one-vs-rest solves",
                f"{mkl['joint_seconds_at_largest_n']:.1f} ({mkl['joint_cpu_seconds_at_largest_n']:.1f}); "
                f"{mkl['ovr_cone_seconds_at_largest_n']:.1f} ({mkl['ovr_cpu_seconds_at_largest_n']:.1f})",
                "< 10 s (CPU: the solver is single-threaded, and the wall time on a shared machine counts the "
                "neighbours)",
                _verdict(mkl["joint_cpu_seconds_at_largest_n"] < 10),
            ]
        )
        if exact is not None:
            rows.append(
                [
                    "MKL at the largest n",
                    "joint on unprojected factors: wall s (CPU s); max abs beta diff to it: projected, one-vs-rest",
                    f"{exact:.1f} ({mkl['joint_exact_cpu_seconds_at_largest_n']:.1f}); "
                    f"{mkl['joint_max_beta_difference_to_exact']:.3f}, {mkl['ovr_max_beta_difference_to_exact']:.3f}",
                    "-",
                    "-",
                ]
            )
    if "mkl_profile_at_largest_n" in gp:  # why the ten-class fit misses: where one binary solve spends its time
        profile = gp["mkl_profile_at_largest_n"]
        rows.append(
            [
                "MKL at the largest n",
                "profile of one binary solve: total; conic solver (share)",
                f"{profile['total_seconds']:.1f} s; {profile['solver_seconds']:.1f} s ({profile['solver_share']:.0%})",
                "-",
                "-",
            ]
        )
    official = s["lmf_official"]
    for row in official["rows"]:
        rows.append(
            [
                f"LMF vs official LMF code ({row['size']})",
                "forward + backward: official / probfusion time; each as a fraction of GEMM rate",
                f"{row['official_over_probfusion']:.2f}x; {row['probfusion_fraction_of_gemm']:.1%} / "
                f"{row['official_fraction_of_gemm']:.1%} of {official['gemm_gflops_per_second']:.0f} GFLOP/s",
                ">= 1x",
                _verdict(row["official_over_probfusion"] >= 1.0),
            ]
        )
    classes = s["gp_classes"]
    by_classes = {row["classes"]: row for row in classes["before"]}
    for row in classes["rows"]:
        before = by_classes.get(row["classes"])
        was = f" (before: {before['ratio']:.2f}x)" if before is not None else ""
        rows.append(
            [
                f"GP + MKL vs classes ({row['rows']:,} rows)",
                f"fit --model gp-mkl / default fit, one process, {row['classes']} classes",
                f"{row['gp_mkl_seconds']:.0f} s / {row['lmf_seconds']:.0f} s = {row['ratio']:.2f}x{was}",
                f"<= {classes['goal_ratio']:.0f}x at the most classes",
                _verdict(row["ratio"] <= classes["goal_ratio"]) if row is classes["rows"][-1] else "-",
            ]
        )
    for row in attack["rows"]:
        rows.append(
            [
                "Attack cost (eps 0.1, 10 steps)",
                f"{row['attack']} on {row['model']} ({row['posterior_draws_per_step']} draws/step)",
                f"{row['examples_per_second']:.0f} ex/s",
                "-",
                "-",
            ]
        )
    return rows


def _process_rows(s: dict) -> list[list[str]]:
    """Rows of the benchmarks that start processes of their own (streaming, end to end, profile)."""
    e2e, prof, stream = s["end_to_end"], s["profile_cli"], s["streaming"]
    largest = max(stream["sizes"])
    rate = next(r for r in stream["rows"] if r["source"] == "folder" and r["rows"] == largest)["train_rows_per_second"]
    rows = [
        [
            "Streaming (folder of .npy vs .npz)",
            "peak RSS of fit, 100k -> 1M rows; training rows/s at 1M",
            f"folder {stream['folder_peak_rss_ratio']:.2f}x (.npz {stream['npz_peak_rss_ratio']:.2f}x); "
            f"{rate:,.0f} rows/s",
            f"<= {stream['folder_peak_rss_ratio_goal']:.1f}x",
            _verdict(stream["folder_peak_rss_ratio"] <= stream["folder_peak_rss_ratio_goal"]),
        ]
    ]
    order = ("probfusion fit", "probfusion evaluate --attack pgd", "probfusion datasets")
    for name, record in sorted(e2e["commands"].items(), key=lambda item: order.index(item[0])):
        rows.append(
            [
                "End to end (default)",
                name,
                f"{record['wall_seconds']:.1f} s, peak RSS {record['peak_rss_mib']:.0f} MiB",
                "-",
                "-",
            ]
        )
    fit_profile = prof["profiles"].get("probfusion fit")
    if fit_profile is not None:
        rows.append(
            [
                "Profile of probfusion fit (cProfile, s)",
                "total; module loading; of it probfusion.baselines; of it torch._dynamo; training loop",
                f"{fit_profile['total']:.1f}; {fit_profile['module loading (imports)']:.1f}; "
                f"{fit_profile['of which probfusion.baselines (cvxpy, gpytorch)']:.1f}; "
                f"{fit_profile['of which torch._dynamo (first Adam)']:.1f}; {fit_profile['training loop']:.1f}",
                "-",
                "-",
            ]
        )
    fix = prof["fix"]
    rows.append(
        [
            "Profile-driven fix (SWD)",
            "one penalty + backward; one training epoch (before / after)",
            f"{fix['swd_call_speedup']:.1f}x; {fix['epoch_seconds_before']:.3f} / {fix['epoch_seconds_after']:.3f} s "
            f"= {fix['epoch_speedup']:.2f}x",
            "faster, same value",
            _verdict(fix["epoch_speedup"] > 1.0 and fix["swd_routes_abs_difference"] < 1e-5),
        ]
    )
    return rows


def main() -> None:
    args = parse_args(
        __doc__.splitlines()[0],
        default_seeds=1,
        extra=lambda p: p.add_argument(
            "--only", default=None, help="comma-separated benchmarks to rerun; the others' summaries are read back"
        ),
    )
    only = None if args.only is None else {name for name in args.only.split(",") if name}  # "": gather only
    if only is not None and not only <= set(BENCHMARKS):
        raise SystemExit(f"unknown benchmark(s) {sorted(only - set(BENCHMARKS))}; known: {list(BENCHMARKS)}")
    if args.out is not None:
        out = args.out
    elif args.smoke:
        out = RESULTS / "benchmarks-smoke"
    else:
        out = RESULTS / "benchmarks"
    out.mkdir(parents=True, exist_ok=True)
    folders = {}
    # Smoke skips the two benchmarks made of CLI subprocesses (half a minute each); the test suite smoke-runs them.
    for name in BENCHMARKS if not args.smoke else [b for b in BENCHMARKS if b not in _SUBPROCESS_BENCHMARKS]:
        # Full runs write each benchmark's own results folder (the two older ones keep theirs beside the others');
        # --out and --smoke keep them all under `out`.
        own_folder = RESULTS / name if name in ("bayes_vs_det", "mkl_solver_vs_reference") else out / name
        folder = out / name if (args.out is not None or args.smoke) else own_folder
        if only is None or name in only:
            _run(name, folder, args.smoke)
        folders[name] = folder
    summaries = {name: json.loads((folder / "summary.json").read_text()) for name, folder in folders.items()}
    rows = _rows(summaries) + (_process_rows(summaries) if "end_to_end" in summaries else [])
    gathered = {
        "benchmarks": summaries,
        "table": [dict(zip(("benchmark", "quantity", "value", "goal", "verdict"), r, strict=True)) for r in rows],
        "machine": machine(),
        "smoke": args.smoke,
        "command": "python studies/benchmarks/run_all.py",
    }
    table = markdown_table(["benchmark", "quantity", "measured", "goal", "verdict"], rows)
    atomic_write_json(out / "benchmarks.json", gathered)
    atomic_write_json(out / "summary.json", {"rows": gathered["table"], "smoke": args.smoke})
    atomic_write_text(out / "table.md", table)
    print(table)
    print(out)


if __name__ == "__main__":
    main()
