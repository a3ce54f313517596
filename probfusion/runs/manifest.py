"""``manifest.json``: the SHA-256 of every file of a finished run, checked whenever the run is loaded.

It catches a weights file (or config, or metrics) changed, truncated or swapped after the fit. Runs written
before manifests existed have none and load as before.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from pathlib import Path

from probfusion.errors import CheckpointError
from probfusion.runs.atomic import atomic_write_json

__all__ = ["MANIFEST", "file_sha256", "verify_manifest", "write_manifest"]

MANIFEST = "manifest.json"
_FORMAT = "probfusion-manifest/1"


def file_sha256(path: Path) -> str:
    """The hex SHA-256 of a file's bytes, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with Path(path).open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def write_manifest(folder: Path, names: Sequence[str]) -> None:
    """Write ``folder/manifest.json`` with the SHA-256 of each of ``names`` (files inside ``folder``)."""
    folder = Path(folder)
    files = {name: file_sha256(folder / name) for name in names}
    atomic_write_json(folder / MANIFEST, {"format": _FORMAT, "sha256": files})


def verify_manifest(folder: Path) -> bool:
    """Check every file listed in ``folder/manifest.json`` against its SHA-256.

    Returns:
        True when a manifest was found and every file matches; False when the run has no manifest (older runs).

    Raises:
        CheckpointError: If the manifest is unreadable, a listed file is missing or unreadable, or its bytes
            differ from the recorded hash.
    """
    folder = Path(folder)
    path = folder / MANIFEST
    if not path.exists():
        return False
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
        files = manifest["sha256"]
        if manifest.get("format") != _FORMAT or not isinstance(files, dict):
            raise TypeError("unknown format")
    except (OSError, ValueError, RecursionError, TypeError, KeyError, AttributeError) as error:
        raise CheckpointError(f"{path} is not a readable run manifest ({error}); re-run fit.") from None
    for name, expected in files.items():
        if not isinstance(name, str) or "/" in name or name.startswith("."):
            raise CheckpointError(f"{path} lists {name!r}, which is not a file of the run; re-run fit.")
        try:
            got = file_sha256(folder / name)
        except FileNotFoundError:
            raise CheckpointError(f"{folder / name} is missing but {path} lists it; re-run fit.") from None
        except OSError as error:
            reason = error.strerror or error
            raise CheckpointError(f"Cannot read {folder / name} ({reason}); fix its permissions.") from None
        if got != expected:
            raise CheckpointError(
                f"{folder / name} does not match its SHA-256 in {path} (expected {str(expected)[:12]}..., got "
                f"{got[:12]}...): the file was changed after the fit; restore it or re-run fit with --overwrite."
            )
    return True
