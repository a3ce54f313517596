"""Profile of ``probfusion fit`` and ``probfusion evaluate --attack pgd`` on the default, and the fix it led to.

1. cProfile over each command, run as a subprocess exactly as a user runs it. Written out: the top functions by
   cumulative and by own time (``fit_profile.txt``, ``evaluate_profile.txt``) and, in ``summary.json``, where the
   time goes: module loading (cumulative time of importlib's ``_find_and_load``, lazy imports included; of it,
   ``probfusion.baselines``, which ``probfusion.api`` imports eagerly and which pulls in cvxpy and GPyTorch, and
   ``torch._dynamo``, which torch imports lazily in the first optimiser's constructor), training, the jWAE's
   sliced Wasserstein penalty, the attacks and the figures. Parts overlap (a lazy import inside training counts
   in both).
2. The fix. Before it, a third of each training step went to POT's general 1-D Wasserstein solver (quantile
   functions: three sorts, two argsorts and two searchsorted per call). For two samples of equal size, the
   jWAE case, the optimal 1-D plan pairs sorted values, so :func:`probfusion.encoders.divergences.sliced_wasserstein`
   now sorts each projection once per side (POT stays for unequal sizes, and is imported only then, which also
   takes POT off every command's start-up). Measured here in one process, before (POT route, patched back in)
   against after: one penalty call with its backward pass at the default size (128 x 16, 50 directions), and the
   training epoch of the default model (best of alternating repeats). The two routes must agree to 1e-5.
3. What importing POT costs (a fresh process, after torch), which the lazy import saves every command; the
   profiles record whether any POT module was loaded.

Run: ``python studies/benchmarks/profile_cli.py`` (about a minute); ``--smoke`` for seconds.
"""

from __future__ import annotations

import io
import pstats
import subprocess
import sys
import tempfile
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import markdown_table, parse_args, write_results
from _timing import benchmark_output_dir, best_seconds, machine

from probfusion import fit
from probfusion.config import RunConfig, TrainConfig
from probfusion.encoders import divergences

# Where the time goes: (label, file suffix, function name) matched against pstats keys; cumulative seconds.
_PARTS = (
    ("module loading (imports)", "<frozen importlib._bootstrap>", "_find_and_load"),
    ("of which probfusion.baselines (cvxpy, gpytorch)", "probfusion/baselines/__init__.py", "<module>"),
    ("of which torch._dynamo (first Adam)", "torch/_dynamo/__init__.py", "<module>"),
    ("training loop", "probfusion/inference/training.py", "train_classifier"),
    ("sliced Wasserstein penalty", "probfusion/encoders/divergences.py", "sliced_wasserstein"),
    ("evaluation", "probfusion/evaluation.py", "evaluate"),
    ("attacks (PGD)", "probfusion/robustness/attacks.py", "pgd"),
    ("figures", "probfusion/evaluation.py", "_figures"),
)


def _profile(command: list[str], profile_path: Path, text_path: Path) -> dict[str, float]:
    runner = profile_path.with_suffix(".py")
    runner.write_text("from probfusion.cli.main import cli\ncli()\n")
    subprocess.run(
        [sys.executable, "-m", "cProfile", "-o", str(profile_path), str(runner), *command],
        check=True,
        capture_output=True,
    )
    stats = pstats.Stats(str(profile_path))
    buffer = io.StringIO()
    printer = pstats.Stats(str(profile_path), stream=buffer)
    printer.sort_stats("cumulative").print_stats(40)
    printer.sort_stats("tottime").print_stats(25)
    text_path.write_text(buffer.getvalue())
    parts = {"total": stats.total_tt, "pot_loaded": float(any("/ot/" in file for file, _, _ in stats.stats))}
    for label, suffix, name in _PARTS:
        matches = [v[3] for (file, _, func), v in stats.stats.items() if file.endswith(suffix) and func == name]
        parts[label] = max(matches, default=0.0)
    return parts


def _pot_route(source, target, *, num_projections, generator=None):
    """The pre-fix implementation: POT's general 1-D solver on every pair of projections."""
    import ot

    projections = divergences._random_directions(source.shape[1], num_projections, source, generator)
    return ot.sliced_wasserstein_distance(source, target, projections=projections, p=2)


def _epoch_seconds(epochs: int, scratch: Path, tag: str) -> float:
    run = fit(RunConfig(train=TrainConfig(epochs=epochs, patience=epochs), seed=0), scratch / tag)
    return min(record["seconds"] for record in _history(run.path))


def _history(path: Path) -> list[dict[str, float]]:
    lines = (path / "history.csv").read_text().splitlines()
    header = lines[0].split(",")
    return [dict(zip(header, map(float, line.split(",")), strict=True)) for line in lines[1:]]


def main() -> None:
    args = parse_args(__doc__.splitlines()[0], default_seeds=1)
    out = benchmark_output_dir(__file__, args)
    epochs, repeats, call_repeats = (1, 1, 20) if args.smoke else (10, 2, 300)
    with tempfile.TemporaryDirectory() as scratch_dir:
        scratch = Path(scratch_dir)
        if args.smoke:  # profiling fit and evaluate takes half a minute; start-up alone checks the plumbing
            commands = {"probfusion datasets": ("datasets", ["datasets"])}
        else:
            run = str(scratch / "cli_run")
            commands = {
                "probfusion fit": ("fit", ["fit", "--out", run]),
                "probfusion evaluate --attack pgd": ("evaluate", ["evaluate", run, "--attack", "pgd"]),
            }
        profiles = {
            name: _profile(command, scratch / f"{stem}.prof", out / f"{stem}_profile.txt")
            for name, (stem, command) in commands.items()
        }

        generator = torch.Generator().manual_seed(0)
        z = torch.randn(128, 16, generator=generator, requires_grad=True)
        prior = torch.randn(128, 16, generator=generator)

        def call(route):
            def run() -> float:
                value = route(z, prior, num_projections=50, generator=torch.Generator().manual_seed(1))
                value.backward()
                return value.item()

            return run

        agreement = abs(call(_pot_route)() - call(divergences.sliced_wasserstein)())
        call_before = best_seconds(call(_pot_route), call_repeats)
        call_after = best_seconds(call(divergences.sliced_wasserstein), call_repeats)

        fixed = divergences.sliced_wasserstein
        epoch_before, epoch_after = [], []
        for repeat in range(repeats):
            divergences.sliced_wasserstein = _pot_route
            try:
                epoch_before.append(_epoch_seconds(epochs, scratch, f"pot{repeat}"))
            finally:
                divergences.sliced_wasserstein = fixed
            epoch_after.append(_epoch_seconds(epochs, scratch, f"sorted{repeat}"))
    timer = "import time, torch; t = time.perf_counter(); import ot; print(time.perf_counter() - t)"
    ot_import = (
        float("nan")
        if args.smoke
        else float(subprocess.run([sys.executable, "-c", timer], capture_output=True, text=True, check=True).stdout)
    )
    fix = {
        "swd_call_seconds_before": call_before,
        "swd_call_seconds_after": call_after,
        "swd_call_speedup": call_before / call_after,
        "swd_routes_abs_difference": agreement,
        "epoch_seconds_before": min(epoch_before),
        "epoch_seconds_after": min(epoch_after),
        "epoch_speedup": min(epoch_before) / min(epoch_after),
        "pot_import_seconds": ot_import,
        "pot_loaded_by": [name for name, parts in profiles.items() if parts["pot_loaded"]],
    }
    if agreement > 1e-5:
        raise RuntimeError(f"The sorted and POT sliced-Wasserstein routes disagree by {agreement:.2e}.")
    rows = [{"command": c, "part": part, "seconds": s} for c, parts in profiles.items() for part, s in parts.items()]
    summary = {"profiles": profiles, "fix": fix, "epochs": epochs, "machine": machine(), "smoke": args.smoke}
    labels = ["total", *(label for label, _, _ in _PARTS)]
    table = markdown_table(
        ["cProfile (cumulative s)", *labels],
        [[name, *(f"{parts[label]:.2f}" for label in labels)] for name, parts in profiles.items()],
    )
    table += "\n" + markdown_table(
        ["fix: sorted 1-D W2 instead of POT's solver", "before (POT)", "after (sorted)", "speed-up"],
        [
            [
                "one SWD penalty + backward, 128 x 16, 50 directions (ms)",
                f"{call_before * 1e3:.3f}",
                f"{call_after * 1e3:.3f}",
                f"{fix['swd_call_speedup']:.1f}x",
            ],
            [
                "one training epoch of the default model (s)",
                f"{fix['epoch_seconds_before']:.3f}",
                f"{fix['epoch_seconds_after']:.3f}",
                f"{fix['epoch_speedup']:.2f}x",
            ],
        ],
    )
    loaded_by = ", ".join(fix["pot_loaded_by"]) or "none of the profiled commands"
    table += f"\nImporting POT takes {ot_import:.2f} s in a fresh process (after torch); now loaded by: {loaded_by}.\n"
    write_results(out, rows, summary, table)
    print(table)
    print(out)


if __name__ == "__main__":
    main()
