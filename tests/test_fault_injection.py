"""A fit killed (SIGKILL) at any point leaves the previous state or a resumable run, never a broken folder.

Each case starts ``probfusion fit`` in a subprocess, waits for a stage of the fit to be reached (the staging
folder, the first checkpoint, a later checkpoint, the final metrics), kills it a seeded random instant later,
and then checks the one invariant of :mod:`probfusion.runs.fit_folder`: the run folder holds what it held
before (or the finished new run), and what is left in the staging folder is either continued by ``--resume``
to the metrics of an uninterrupted fit, or replaced by a fresh fit with ``--overwrite``.
"""

import os
import random
import signal
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import pytest

from probfusion.api import fit, load_run, resume_config
from probfusion.config import JWAEConfig, TrainConfig
from probfusion.runs.fit_folder import resumable
from probfusion.runs.run_dir import RunDirectory
from tests.helpers import small_config, write_interaction_npz

ARGS = ["--epochs", "12", "--patience", "50", "--latent-dim", "4", "--fused-dim", "8", "--rank", "2", "--device", "cpu"]


def _stage_reached(partial: Path, stage: str, seen: dict) -> bool:
    checkpoint = partial / "checkpoint.safetensors"
    if stage == "staging":
        return partial.is_dir()
    if stage == "first-checkpoint":
        return checkpoint.is_file()
    if stage == "later-checkpoint":
        if checkpoint.is_file():
            seen.setdefault("mtimes", set()).add(checkpoint.stat().st_mtime_ns)
        return len(seen.get("mtimes", ())) >= 4
    return (partial / "metrics.json").is_file()


def _kill_at(stage: str, data: Path, out: Path, *, overwrite: bool, seed: int) -> bool:
    """Run a fit in a subprocess and SIGKILL it just after ``stage``; True if it was killed before finishing."""
    command = [sys.executable, "-c", "from probfusion.cli.main import cli; cli()", "fit", "--data", str(data)]
    # A checkpoint every epoch, so that every kill instant of the checkpoint stages can land between two writes.
    command += ["--out", str(out), *ARGS, "--checkpoint-seconds", "0", "-q", *(["--overwrite"] if overwrite else [])]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    partial, seen, deadline = out.parent / f".{out.name}.partial", {}, time.monotonic() + 120
    try:
        while process.poll() is None and time.monotonic() < deadline:
            if _stage_reached(partial, stage, seen):
                time.sleep(random.Random(seed).uniform(0.0, 0.05))  # noqa: S311 - a seeded instant, not a secret
                break
            time.sleep(0.002)
        finished = process.poll() is not None
        os.kill(process.pid, signal.SIGKILL)
    except ProcessLookupError:
        finished = True
    process.wait(timeout=30)
    return not finished


def _snapshot(folder: Path) -> dict:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir()) if p.is_file()} if folder.exists() else {}


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """An uninterrupted fit of the same config (in this process): what a resumed fit must reproduce."""
    root = tmp_path_factory.mktemp("reference")
    data = write_interaction_npz(root / "d.npz")
    config = small_config(str(data), epochs=12)
    cli_config = replace(
        config,
        jwae=replace(config.jwae, hidden_dim=JWAEConfig().hidden_dim),
        train=replace(config.train, batch_size=TrainConfig().batch_size),
    )
    return data, fit(cli_config, root / "run").metrics


def _another_run(data: Path):
    """A different, quick run in the same folder (the previous state that an --overwrite fit replaces)."""
    return small_config(str(data), epochs=3, seed=9)


@pytest.mark.parametrize(
    ("stage", "overwrite"),
    [("staging", False), ("first-checkpoint", True), ("later-checkpoint", False), ("metrics", True)],
)
def test_a_killed_fit_leaves_the_previous_state_or_a_resumable_run(reference, tmp_path, stage, overwrite):
    data, expected = reference
    out = tmp_path / "run"
    if overwrite:  # a complete run that the killed fit, given --overwrite, was replacing
        fit(_another_run(data), out)
    before = _snapshot(out)
    killed = _kill_at(stage, data, out, overwrite=overwrite, seed=len(stage))
    assert killed or stage == "metrics", "the fit finished before it could be killed"  # its last write is brief
    target = RunDirectory(out)
    # The run folder holds what it held before, or the finished new run: never a mix, never half a run.
    assert _snapshot(out) == before or target.is_complete
    if target.is_complete:
        load_run(out)
    if stage in ("first-checkpoint", "later-checkpoint"):
        assert resumable(target) is not None  # a checkpoint was on disk when the process died
    if resumable(target) is not None:
        resumed = fit(resume_config(out), out, resume=True).metrics
        assert resumed["test"]["accuracy"] == pytest.approx(expected["test"]["accuracy"])
        assert resumed["test"]["nll"] == pytest.approx(expected["test"]["nll"], rel=1e-4)
    else:  # nothing to resume: a fresh fit with --overwrite must accept whatever is there
        fit(_another_run(data), out, overwrite=True)
    assert RunDirectory(out).is_complete
    leftovers = [p.name for p in tmp_path.iterdir() if p.name.startswith(f".{out.name}.")]
    assert leftovers in ([], [f".{out.name}.lock"])
