"""NOTES.md §13: test accuracy % of the ``input_linear`` arms against the defaults, mean of seeds 0-2.

Reads the row files in this folder. Run: ``python studies/results/real_benchmark/calibration/input_linear_table.py``.
"""

from __future__ import annotations

import json
import statistics
from pathlib import Path

HERE = Path(__file__).resolve().parent
LINEAR_REFERENCE = {  # the benchmark's linear reference, mean of seeds 0-2 (table.md and NOTES.md §12)
    "av-digits": 92.7,
    "av-digits-speaker": 82.5,
    "mfeat": 97.2,
    "scene15": 79.0,
    "cub": 90.8,
    "msrc_v1": 93.7,
    "synthetic-68x7": 92.2,
    "cub-7shot": 83.7,
    "msrc_v1-7shot": 81.6,
    "mfeat-7shot": 89.8,
}


def _read(name: str) -> list[dict]:
    data = json.loads((HERE / name).read_text())
    return data["rows"] if isinstance(data, dict) else data


def main() -> None:
    default: dict[tuple[str, str], list[float]] = {}
    for row in _read("rows-weight-decay-default.json"):  # the real sets' default rows
        if row["model"] in ("lmf", "concat"):
            default.setdefault((row["set"], row["model"]), []).append(row["accuracy"])
    for k in (1, 2, 3):  # the low-shot stand-ins' default (data-scaled decay) rows
        for row in _read(f"weight-decay-scaled-rows-{k}.json"):
            low_shot = row["set"].endswith("7shot") or row["set"].startswith("synthetic")
            if low_shot and row["seed"] in (0, 1, 2):
                default.setdefault((row["set"], row["model"]), []).append(row["accuracy"])
    skip: dict[tuple[str, str], list[float]] = {}
    for k in (1, 2):
        for row in _read(f"input-linear-rows-{k}.json"):
            skip.setdefault((row["set"], row["model"].removesuffix("-input-linear")), []).append(row["accuracy"])
    print("| set | linear reference | lmf | lmf + input_linear | change | concat | concat + input_linear | change |")
    print("|---|---|---|---|---|---|---|---|")
    for name, reference in LINEAR_REFERENCE.items():
        cells = []
        for model in ("lmf", "concat"):
            before = 100 * statistics.fmean(default[(name, model)])
            after = 100 * statistics.fmean(skip[(name, model)])
            cells += [f"{before:.1f}", f"{after:.1f}", f"{after - before:+.1f}"]
        print(f"| {name} | {reference:.1f} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
