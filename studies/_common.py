"""Shared plumbing of the study scripts: arguments, output folder, tables."""

from __future__ import annotations

import argparse
import statistics
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from probfusion.config import BayesConfig
from probfusion.runs import atomic_write_bytes, atomic_write_csv, atomic_write_json, atomic_write_text

FROZEN = BayesConfig(train_encoders=False)
"""The SVI head on a deterministic stage's frozen latents: the route the hypothesis studies were measured on,
pinned so they rerun alike (the real-data benchmark's NOTES.md §23 made end-to-end training the SVI default)."""

RESULTS = Path(__file__).parent / "results"


def parse_args(
    description: str, *, default_seeds: int = 3, extra: Callable[[argparse.ArgumentParser], None] | None = None
) -> argparse.Namespace:
    """``--smoke`` (tiny and fast, for the test suite), ``--seeds N``, ``--out DIR``, and what ``extra`` adds."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--smoke", action="store_true", help="tiny sizes, one seed: checks the script runs")
    parser.add_argument("--seeds", type=int, default=default_seeds, help="number of seeds (0..N-1)")
    parser.add_argument("--out", type=Path, default=None, help="output folder (default: studies/results/<script>)")
    if extra is not None:
        extra(parser)
    return parser.parse_args()


def output_dir(script: str, args: argparse.Namespace) -> Path:
    """The script's result folder; smoke runs never touch the committed results."""
    if args.out is not None:
        out = args.out
    elif args.smoke:
        out = RESULTS / f"{Path(script).stem}-smoke"
    else:
        out = RESULTS / Path(script).stem
    out.mkdir(parents=True, exist_ok=True)
    return out


def mean_std(values: Sequence[float]) -> tuple[float, float]:
    """Mean and sample standard deviation (0 for one value)."""
    return statistics.fmean(values), statistics.stdev(values) if len(values) > 1 else 0.0


def mean_std_cell(values: Sequence[float], *, digits: int = 3) -> str:
    """``"mean ± std"`` of ``values``, or ``"n/a"`` when any is NaN (a metric the model or row does not have)."""
    if not values or any(v != v for v in values):
        return "n/a"
    mean, std = mean_std(values)
    return f"{mean:.{digits}f} ± {std:.{digits}f}"


def markdown_table(header: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    """A GitHub-flavoured markdown table."""
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def write_results(out: Path, rows: Sequence[Mapping[str, Any]], summary: Mapping[str, Any], table: str) -> None:
    """Write ``results.csv`` (one row per fit), ``summary.json`` and ``table.md``, atomically."""
    atomic_write_csv(out / "results.csv", rows)
    atomic_write_json(out / "summary.json", summary)
    atomic_write_text(out / "table.md", table)


def paired_difference(treated: Sequence[float], control: Sequence[float]) -> dict[str, float]:
    """Mean of the paired differences ``treated - control``, its standard error and the mean +- 2 SE interval.

    Args:
        treated: One value per pairing unit (a seed), in the same order as ``control``.
        control: One value per pairing unit.

    Returns:
        ``{"mean", "se", "low", "high", "n"}``; ``se`` is the sample standard deviation over sqrt(n) (0 for n = 1).
    """
    if len(treated) != len(control) or not treated:
        raise ValueError(f"paired_difference needs equal, non-empty lists; got {len(treated)} and {len(control)}.")
    diffs = [a - b for a, b in zip(treated, control, strict=True)]
    mean, std = mean_std(diffs)
    se = std / len(diffs) ** 0.5
    return {"mean": mean, "se": se, "low": mean - 2 * se, "high": mean + 2 * se, "n": len(diffs)}


def write_figure(out: Path, name: str, figure: Any) -> Path:
    """Render a ``matplotlib.figure.Figure`` (Agg canvas, no pyplot) to ``out/name`` as PNG, atomically."""
    import io

    from matplotlib.backends.backend_agg import FigureCanvasAgg

    FigureCanvasAgg(figure)
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=120, bbox_inches="tight")
    path = out / name
    atomic_write_bytes(path, buffer.getvalue())
    return path
