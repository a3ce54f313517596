"""Run directories: atomic writes, safetensors weights, checkpoints for resume."""

from probfusion.runs.atomic import atomic_write_bytes, atomic_write_csv, atomic_write_json, atomic_write_text
from probfusion.runs.checkpoint import load_module_state, read_tensors, write_tensors
from probfusion.runs.run_dir import RunDirectory

__all__ = [
    "RunDirectory",
    "atomic_write_bytes",
    "atomic_write_csv",
    "atomic_write_json",
    "atomic_write_text",
    "load_module_state",
    "read_tensors",
    "write_tensors",
]
