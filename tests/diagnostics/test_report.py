"""The RUN/report folder: written whole, refuses to overwrite silently, works for deterministic LMF."""

import json
import shutil

import pytest

from probfusion.diagnostics import attribution_map, component_attributions, forest_plot, posterior, trace_plot
from probfusion.diagnostics.report import write_report
from probfusion.errors import ConfigError, RunExistsError

PNG = b"\x89PNG\r\n\x1a\n"


def test_figures_are_png(runs, nuts_run):
    idata = posterior(nuts_run)
    for png in (trace_plot(idata), forest_plot(idata), attribution_map(component_attributions(nuts_run))):
        assert png.startswith(PNG)
        assert len(png) > 5000


def test_bayesian_report_writes_every_file(runs, tmp_path):
    run = shutil.copytree(runs["svi"], tmp_path / "svi")
    report = write_report(run, num_draws=40)
    names = {p.name for p in report.path.iterdir()}
    assert {"report.md", "checks.json", "summary.csv", "components.csv", "ablation.csv", "figures"} <= names
    assert {p.name for p in (report.path / "figures").iterdir()} == {"trace.png", "forest.png", "attributions.png"}
    checks = json.loads((report.path / "checks.json").read_text())
    assert {"effective_rank", "convergence", "loo", "variational_pareto_k"} <= set(checks)
    assert "variational Pareto k" in report.text
    assert "## Components" in report.text
    with pytest.raises(RunExistsError, match="--overwrite"):
        write_report(run, num_draws=40)
    assert write_report(run, num_draws=40, overwrite=True).path == report.path
    assert not [p for p in run.iterdir() if p.name.startswith(".report")]  # no staging folders left
    assert (report.path.stat().st_mode & 0o777) == (run.stat().st_mode & 0o777)  # ordinary permissions


def test_deterministic_report_and_failures_leave_nothing(runs, tmp_path):
    det = shutil.copytree(runs["det"], tmp_path / "det")
    report = write_report(det)
    assert "Deterministic run" in report.text
    assert {p.name for p in (report.path / "figures").iterdir()} == {"attributions.png"}
    tfn = shutil.copytree(runs["tfn"], tmp_path / "tfn")
    with pytest.raises(ConfigError, match="no rank components"):
        write_report(tfn)
    assert sorted(p.name for p in tfn.iterdir()) == sorted(p.name for p in runs["tfn"].iterdir())
