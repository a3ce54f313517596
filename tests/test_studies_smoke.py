"""Every study script runs end to end at tiny size (Pyro's tests/test_examples.py pattern)."""

import csv
import json
import subprocess
import sys
from pathlib import Path

import pytest

STUDIES = Path(__file__).parents[1] / "studies"


def _conflict_table_scores_each_uncertainty(out: Path) -> None:
    rows = list(csv.DictReader((out / "results.csv").read_text().splitlines()))
    assert {r["attack"] for r in rows} == {"none", "pgd", "eot-pgd", "conflict"}
    tmc = [r for r in rows if r["model"] == "tmc" and r["attack"] == "conflict"]
    ard = [r for r in rows if r["model"] == "lmf-ard" and r["attack"] == "eot-pgd"]
    assert tmc
    assert ard
    assert all(r["auroc_vacuity"] not in ("", "nan") for r in tmc)  # the evidential kinds' vacuity
    assert all(r["auroc_mi"] not in ("", "nan") for r in ard)  # the Bayesian model's mutual information
    assert all(int(r["conflict_rows"]) > 0 for r in rows if r["attack"] == "conflict")


def _tune_benchmark_scores_tune_beside_references(out: Path) -> None:
    summary = json.loads((out / "summary.json").read_text())
    assert summary["score_run_matches_model_row"]  # the best run is scored as real_benchmark scores a fit
    models = summary["sets"]["av-digits"]["models"]
    assert {"tune", "linear reference", "concat", "lmf"} <= set(models)
    assert models["tune"]["trials"] == [2]
    assert isinstance(summary["sets"]["av-digits"]["checks"]["tune_ge_max_linear_concat"], bool)
    assert (out / "trials" / "av-digits-seed0.csv").is_file()


# Extra checks of a script's output, by script name.
EXPECT = {
    "conflict_table": _conflict_table_scores_each_uncertainty,
    "tune_benchmark": _tune_benchmark_scores_tune_beside_references,
}
SCRIPTS = sorted(p for p in [*STUDIES.glob("*.py"), *STUDIES.glob("benchmarks/*.py")] if not p.name.startswith("_"))


@pytest.mark.parametrize("script", SCRIPTS, ids=[p.stem for p in SCRIPTS])
def test_study_runs_in_smoke_mode(script, tmp_path):
    result = subprocess.run(
        [sys.executable, str(script), "--smoke", "--out", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert (tmp_path / "summary.json").is_file()
    assert (tmp_path / "table.md").read_text().count("|") > 4
    EXPECT.get(script.stem, lambda out: None)(tmp_path)
