"""Every study script runs end to end at tiny size (Pyro's tests/test_examples.py pattern)."""

import subprocess
import sys
from pathlib import Path

import pytest

STUDIES = Path(__file__).parents[1] / "studies"
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
