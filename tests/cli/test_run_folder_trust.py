"""A run folder is data, not authority: nothing stored in it can make a command open a pickle (issue 11, item 1).

Each test drops a run folder whose ``config.json`` points at a pickle that writes a marker file when unpickled,
with ``trust_pickle: true`` as older versions stored it, and runs a command on it without ``--trust-pickle``.
"""

import json
import pickle
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from probfusion.api import fit
from probfusion.cli.main import cli
from tests.cli.test_cli import assert_clean_error
from tests.helpers import small_config, write_interaction_npz


class _Payload:
    """Unpickling this writes a marker file: code from the file ran."""

    def __init__(self, path):
        self.path = Path(path)

    def __reduce__(self):
        return (Path.write_text, (self.path, "code ran"))


@pytest.fixture(scope="module")
def honest_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("honest")
    return fit(small_config(str(write_interaction_npz(root / "d.npz"))), root / "run").path


def _poison(run: Path, dest: Path, marker: Path, *, unfinished: bool = False) -> Path:
    """A copy of ``run`` whose config names a malicious pickle and claims trust, as an attacker would write it."""
    copy = Path(shutil.copytree(run, dest))
    evil = dest.parent / "evil.pkl"
    evil.write_bytes(pickle.dumps({"train": _Payload(marker)}))
    stored = json.loads((copy / "config.json").read_text())
    stored["config"]["data"].update(name=str(evil), trust_pickle=True)
    stored["provenance"].pop("data", None)  # an attacker drops what would give the swap away
    (copy / "config.json").write_text(json.dumps(stored))
    (copy / "manifest.json").unlink()
    if unfinished:
        for name in ("metrics.json", "weights.safetensors"):
            (copy / name).unlink()
    return copy


@pytest.mark.parametrize(
    "command",
    [["evaluate", "{run}", "-q"], ["evaluate", "{run}", "--shift", "noise", "-q"], ["report", "{run}", "-q"]],
    ids=["evaluate", "evaluate-shift", "report"],
)
def test_a_stored_trust_flag_never_opens_a_pickle(honest_run, tmp_path, command):
    marker = tmp_path / "marker"
    run = _poison(honest_run, tmp_path / "run", marker)
    result = CliRunner().invoke(cli, [part.format(run=run) for part in command])
    assert_clean_error(result, 1, "--trust-pickle")
    assert not marker.exists()
    assert not (run / "evaluations").exists()
    assert not (run / "report").exists()


def test_resume_of_a_dropped_in_run_never_opens_its_pickle(honest_run, tmp_path):
    marker = tmp_path / "marker"
    run = _poison(honest_run, tmp_path / "run", marker, unfinished=True)
    result = CliRunner().invoke(cli, ["fit", "--out", str(run), "--resume", "-q"])
    assert_clean_error(result, 1, "--trust-pickle")
    assert not marker.exists()


def test_the_latest_run_under_runs_is_no_way_in(honest_run, tmp_path, monkeypatch):
    marker = tmp_path / "marker"
    _poison(honest_run, tmp_path / "runs" / "dropped", marker)
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(cli, ["evaluate", "-q"])  # picks the latest run under ./runs
    assert_clean_error(result, 1, "--trust-pickle")
    assert not marker.exists()


def test_trust_given_on_the_command_line_is_what_opens_it(honest_run, tmp_path):
    """Control: the flag of the current command does reach the loader, so the refusals above are meaningful."""
    marker = tmp_path / "marker"
    run = _poison(honest_run, tmp_path / "run", marker)
    result = CliRunner().invoke(cli, ["evaluate", str(run), "--trust-pickle", "-q"])
    assert result.exit_code == 1  # the payload is not a MultiBench layout, but it was unpickled
    assert marker.exists()
