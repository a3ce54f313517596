"""Every study script runs end to end at tiny size (Pyro's tests/test_examples.py pattern)."""

import csv
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
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


def test_real_benchmark_pairs_its_checks_by_seed_and_matches_scipy_interval(monkeypatch):
    monkeypatch.syspath_prepend(str(STUDIES))
    import real_benchmark
    from scipy import stats

    lmf = [0.90, 0.80, 0.85, 0.70, 0.60]
    concat = [0.88, 0.80, 0.86, 0.67, 0.99]  # seed 4 is concat's only: lmf has no row there
    rows = [{"set": "s", "seed": k, "model": "lmf", "accuracy": a} for k, a in enumerate(lmf[:4])]
    rows += [{"set": "s", "seed": k, "model": "concat", "accuracy": a} for k, a in enumerate(concat)]
    rows += [{"set": "s", "seed": 0, "model": "tfn", "skipped": "tensor too large"}]

    paired = real_benchmark.paired_differences(rows)

    d = paired["lmf - concat"]
    expected = stats.ttest_rel(100 * np.array(lmf[:4]), 100 * np.array(concat[:4])).confidence_interval(0.95)
    assert d["seeds"] == 4
    assert d["mean"] == pytest.approx(1.0)  # (+2, 0, -1, +3) points
    assert d["ci95"] == pytest.approx([expected.low, expected.high])
    assert (d["wins"], d["ties"], d["losses"]) == (2, 1, 1)
    assert "ARD - lmf" not in paired  # no lmf-ard rows: no comparison, not a zero

    # Two seeds: the interval has one degree of freedom; one seed: a difference without an interval.
    two = real_benchmark.paired_differences([r for r in rows if r["seed"] in (0, 3)])["lmf - concat"]
    expected = stats.ttest_rel([90.0, 70.0], [88.0, 67.0]).confidence_interval(0.95)
    assert two["ci95"] == pytest.approx([expected.low, expected.high])
    one = real_benchmark.paired_differences([r for r in rows if r["seed"] == 2])["lmf - concat"]
    assert one["seeds"] == 1
    assert one["ci95"] is None
    assert one["mean"] == pytest.approx(-1.0)
    assert real_benchmark._paired_cell(one) == "-1.0 (1 seed)"
    tiny = {"mean": -0.04, "ci95": [-1.66, -0.04], "wins": 1, "ties": 0, "losses": 1}
    assert real_benchmark._paired_cell(tiny) == "-0.0 [-1.7, -0.0] 1/0/1"  # the interval is below zero: say so
    assert real_benchmark.signed_points(-6e-7) == "+0.0"  # equal means up to float32 noise
    assert real_benchmark._paired_cell(None) == "-"


def test_the_100_class_stand_in_has_the_shape_it_stands_for(monkeypatch, tmp_path):
    monkeypatch.syspath_prepend(str(STUDIES))
    import real_benchmark

    config = real_benchmark.data_config("synthetic-100x11", 0, tmp_path)
    data = np.load(config.name)
    assert {k: data[k].shape for k in data.files if k.startswith("x_")} == {f"x_v{m}": (1600, 64) for m in range(3)}
    per_class = np.stack([np.bincount(data["split"][data["y"] == k], minlength=3) for k in range(100)])
    assert (per_class == [11, 1, 4]).all()  # train, validation, test rows of every class
    # The 68-class stand-in passes the generator its own defaults, so its stored rows stay reproducible.
    old = np.load(real_benchmark.data_config("synthetic-68x7", 0, tmp_path).name)
    views, labels = real_benchmark.many_class_low_shot(68, 0)
    assert np.array_equal(old["x_v0"], views["v0"])
    assert np.array_equal(old["y"], labels)
