"""End to end: wall time and peak memory of ``probfusion fit`` and ``probfusion evaluate --attack pgd`` on the default.

Each command runs as a subprocess of a small wrapper process that starts it, waits, and reads
``resource.getrusage(RUSAGE_CHILDREN)``: that command's peak resident set size alone (Linux reports kilobytes).
``probfusion datasets`` is timed too: it does no work beyond importing the package, so it measures start-up.
Wall time is the best of the repeats, peak memory the largest. Commands, all in a scratch folder:

* ``probfusion fit --out RUN`` (LMF rank 4 on av-digits, 60 epochs with early stopping)
* ``probfusion evaluate RUN --attack pgd`` (PGD at eps 0.05, 0.1, 0.2 on each modality, figures, checks)
* ``probfusion datasets`` (start-up alone)

Run: ``python studies/benchmarks/end_to_end.py`` (about a minute); ``--smoke`` runs ``fit --epochs 1`` and
``evaluate --eps 0.1`` once, without the start-up measurement.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import markdown_table, parse_args, write_results
from _timing import benchmark_output_dir, machine

# Runs argv[1:] as a child, then reports its wall time and peak RSS (the only child this wrapper ever has).
_WRAPPER = """
import json, resource, subprocess, sys, time
started = time.perf_counter()
done = subprocess.run(sys.argv[1:], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
wall = time.perf_counter() - started
peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
print(json.dumps({"wall_seconds": wall, "peak_rss_mib": peak / 1024, "returncode": done.returncode,
                  "stderr_tail": done.stderr[-800:]}))
"""


def _cli() -> list[str]:
    """The installed console script next to this interpreter, else the click group through ``-c``."""
    script = Path(sys.executable).with_name("probfusion")
    if script.is_file():
        return [str(script)]
    return [sys.executable, "-c", "from probfusion.cli.main import cli; cli()"]


def _measure(command: list[str]) -> dict:
    done = subprocess.run([sys.executable, "-c", _WRAPPER, *command], capture_output=True, text=True, check=True)
    record = json.loads(done.stdout.strip().splitlines()[-1])
    if record["returncode"] != 0:
        raise RuntimeError(f"{' '.join(command)} failed: {record['stderr_tail']}")
    return record


def main() -> None:
    args = parse_args(__doc__.splitlines()[0], default_seeds=1)
    out = benchmark_output_dir(__file__, args)
    repeats = 1 if args.smoke else 2
    cli = _cli()
    rows = []
    with tempfile.TemporaryDirectory() as scratch:
        for repeat in range(repeats):
            run = Path(scratch) / f"run{repeat}"
            fit_extra = ["--epochs", "1"] if args.smoke else []
            eval_extra = ["--eps", "0.1"] if args.smoke else []
            commands = {
                "probfusion fit": [*cli, "fit", "--out", str(run), *fit_extra],
                "probfusion evaluate --attack pgd": [*cli, "evaluate", str(run), "--attack", "pgd", *eval_extra],
            }
            if not args.smoke:  # start-up alone, timed after the others so it finds the same warm file cache
                commands["probfusion datasets"] = [*cli, "datasets"]
            for name, command in commands.items():
                record = _measure(command)
                record.pop("stderr_tail")
                rows.append({"command": name, "repeat": repeat, **record})
                print(rows[-1], flush=True)
    names = list(dict.fromkeys(r["command"] for r in rows))
    best = {
        name: {
            "wall_seconds": min(r["wall_seconds"] for r in rows if r["command"] == name),
            "peak_rss_mib": max(r["peak_rss_mib"] for r in rows if r["command"] == name),
        }
        for name in names
    }
    startup = best.get("probfusion datasets", {}).get("wall_seconds", float("nan"))
    summary = {
        "commands": best,
        "startup_seconds": startup,
        "startup_share": {n: startup / best[n]["wall_seconds"] for n in names if n != "probfusion datasets"},
        "repeats": repeats,
        "cli": cli,
        "machine": machine(),
        "smoke": args.smoke,
    }
    table = markdown_table(
        ["command (default settings)", "wall s (best)", "peak RSS MiB", "share that is start-up (imports)"],
        [
            [
                name,
                f"{best[name]['wall_seconds']:.1f}",
                f"{best[name]['peak_rss_mib']:.0f}",
                "-" if name == "probfusion datasets" else f"{startup / best[name]['wall_seconds']:.0%}",
            ]
            for name in names
        ],
    )
    write_results(out, rows, summary, table)
    print(table)
    print(out)


if __name__ == "__main__":
    main()
