"""Run fixtures built by editing a fitted run on disk (no fitting): shared by the diagnostics and CLI tests."""

import json
import shutil
from pathlib import Path

import numpy as np


def repaired_run(run: Path, dest: Path, *, seed: int = 0) -> Path:
    """A copy of ``run`` whose data has the same labels but other inputs: ``x_b`` re-paired within each class.

    Like av-digits under another seed (which pairs each digit image with another recording of the same digit),
    the labels of every split stay the same while the rows the model is conditioned on change.
    """
    copy = Path(shutil.copytree(run, dest))
    config = json.loads((copy / "config.json").read_text())
    with np.load(config["config"]["data"]["name"]) as stored:
        arrays = dict(stored)
    rng = np.random.default_rng(seed)
    b = arrays["x_b"].copy()
    for label in np.unique(arrays["y"]):
        rows = np.flatnonzero(arrays["y"] == label)
        b[rows] = b[rng.permutation(rows)]
    arrays["x_b"] = b
    data = dest.parent / f"{dest.name}-data.npz"
    np.savez(data, **arrays)
    config["config"]["data"]["name"] = str(data)
    # As a run written before data fingerprints and manifests, which would refuse the swapped data outright.
    config["provenance"].pop("data", None)
    (copy / "config.json").write_text(json.dumps(config, indent=2))
    (copy / "manifest.json").unlink(missing_ok=True)
    return copy
