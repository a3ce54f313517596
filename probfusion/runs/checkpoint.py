"""Weights on disk as safetensors (never pickle), with shape checks against the model they load into."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save

from probfusion.errors import CheckpointError
from probfusion.runs.atomic import atomic_write_bytes

__all__ = ["load_module_state", "read_tensors", "write_tensors"]


def write_tensors(path: Path, tensors: Mapping[str, torch.Tensor], metadata: Mapping[str, object]) -> None:
    """Write ``tensors`` and JSON-encoded ``metadata`` to a safetensors file, atomically."""
    contiguous = {key: value.detach().cpu().contiguous() for key, value in tensors.items()}
    header = {key: json.dumps(value) for key, value in metadata.items()}
    atomic_write_bytes(path, save(contiguous, metadata=header))


def read_tensors(path: Path) -> tuple[dict[str, torch.Tensor], dict[str, object]]:
    """Read a safetensors file written by :func:`write_tensors`.

    Returns:
        The tensors (on the CPU) and the decoded metadata.

    Raises:
        CheckpointError: If the file is missing, cannot be read (permission denied), or is corrupt (not a
            safetensors file, or metadata that is not JSON); the message says which.
    """
    path = Path(path)
    try:
        # Open it ourselves first: is_file() is False both for a missing file and for one in a folder we may not
        # read, and safetensors words a permission error like a corrupt file.
        with path.open("rb"):
            pass
    except PermissionError:
        raise CheckpointError(
            f"Cannot read {path}: permission denied; make it readable (chmod u+r) or run as its owner."
        ) from None
    except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
        raise CheckpointError(f"No weights file at {path}; the run is incomplete or the path is wrong.") from None
    except OSError as error:
        raise CheckpointError(f"Cannot read {path} ({error.strerror or error}); check the disk and the path.") from None
    try:
        with safe_open(str(path), framework="pt") as handle:
            tensors = {key: handle.get_tensor(key) for key in handle.keys()}  # noqa: SIM118 - not a dict
            raw_metadata = handle.metadata() or {}
    except (SafetensorError, ValueError, OSError) as error:
        raise CheckpointError(
            f"{path} is corrupt: not a readable safetensors file ({error}); re-run fit with --overwrite."
        ) from None
    try:
        metadata = {key: json.loads(value) for key, value in raw_metadata.items()}
    except (json.JSONDecodeError, RecursionError) as error:
        raise CheckpointError(
            f"{path} is corrupt: its metadata is not valid JSON ({type(error).__name__}); re-run fit with --overwrite."
        ) from None
    return tensors, metadata


def load_module_state(
    module: torch.nn.Module, tensors: Mapping[str, torch.Tensor], *, prefix: str, source: Path
) -> None:
    """Load ``prefix``-ed tensors into ``module``, checking names and shapes first.

    A submodule's ``legacy_state`` (``{buffer name: value}``) fills buffers that files written before them lack.

    Raises:
        CheckpointError: On a missing or unexpected tensor, a shape that differs from the module's, with
            both shapes in the message ("expected (8, 16, 33), got (8, 16, 65)"), or a NaN or inf value.
    """
    expected = module.state_dict()
    found = {key[len(prefix) :]: value for key, value in tensors.items() if key.startswith(prefix)}
    # Buffers added after runs were first stored: a submodule lists them with the value that reproduces an
    # older file's behaviour (``legacy_state``), so that file loads as it was trained.
    for path, submodule in module.named_modules():
        for name, value in getattr(submodule, "legacy_state", {}).items():
            key = f"{path}.{name}" if path else name
            if key in expected and key not in found:
                found[key] = torch.full_like(expected[key], value)
    missing = sorted(set(expected) - set(found))
    extra = sorted(set(found) - set(expected))
    if missing or extra:
        raise CheckpointError(
            f"Weights in {source} do not match the model built from its config: "
            f"missing {missing[:3]}, unexpected {extra[:3]}; the file belongs to another model."
        )
    for key, value in expected.items():
        if tuple(found[key].shape) != tuple(value.shape):
            raise CheckpointError(
                f"Weight {key!r} in {source} has shape {tuple(found[key].shape)}; the model built from the "
                f"run's config expects {tuple(value.shape)}. The config and weights do not belong together."
            )
        if found[key].dtype != value.dtype:
            raise CheckpointError(
                f"Weight {key!r} in {source} has dtype {found[key].dtype}; the model expects {value.dtype}. "
                "The file is damaged or was edited; re-run fit with --overwrite."
            )
        stored = found[key]
        if stored.is_floating_point():
            # inf only where the module itself holds it (constraint bounds of GPyTorch); NaN never.
            bad = torch.isnan(stored) | (torch.isinf(stored) & (stored != value))
            if bool(bad.any()):
                raise CheckpointError(
                    f"Weight {key!r} in {source} holds {int(bad.sum())} NaN or inf value(s); the file is damaged "
                    "or was edited; re-run fit with --overwrite."
                )
    module.load_state_dict({key: found[key] for key in expected})
