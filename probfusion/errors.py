"""Exceptions and warnings raised by probfusion.

Every error subclasses both :class:`ProbfusionError` and the builtin that fits it, so callers may catch
either. Messages follow one template: what was wrong, which object, what was expected, what was got, and the
fix. The CLI turns any :class:`ProbfusionError` into a one-line message and a non-zero exit code.
"""

from __future__ import annotations

__all__ = [
    "CheckpointError",
    "ConfigError",
    "InputDataError",
    "InputDataWarning",
    "ProbfusionError",
    "RunExistsError",
    "RunLockedError",
    "TrainingDivergedError",
    "UntrustedFileError",
]


class ProbfusionError(Exception):
    """Base class of every error that probfusion raises on purpose."""


class InputDataError(ProbfusionError, ValueError):
    """Data that cannot be used: NaN or inf, unpaired modalities, wrong shapes, too few classes."""


class ConfigError(ProbfusionError, ValueError):
    """An option or configuration value outside its allowed set or range."""


class CheckpointError(ProbfusionError, ValueError):
    """A run directory or weights file that is missing, corrupt, or does not match its configuration."""


class RunExistsError(ProbfusionError, FileExistsError):
    """An output directory already holds a run and neither overwrite nor resume was asked for."""


class RunLockedError(ProbfusionError, RuntimeError):
    """Another process holds the run folder's lock (a fit, resume or evaluation writing into it)."""


class TrainingDivergedError(ProbfusionError, RuntimeError):
    """The training loss became NaN or infinite."""


class UntrustedFileError(ProbfusionError, PermissionError):
    """A file format that can execute code (pickle) was asked for without an explicit trust flag."""


class InputDataWarning(UserWarning):
    """Data that is valid but suspicious, such as features far from standardised."""
