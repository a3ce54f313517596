"""Options shared by the commands; choices come from the library's enums, defaults from its dataclasses."""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from enum import StrEnum
from pathlib import Path
from typing import Any, TypeVar

import click

from probfusion.config import MAX_SEED, GPMKLConfig
from probfusion.errors import CheckpointError, ConfigError, ProbfusionError
from probfusion.options import DeviceKind, MKLMulticlass
from probfusion.runs.run_dir import RunDirectory

F = TypeVar("F", bound=Callable[..., Any])


def enum_choice(enum: type[StrEnum]) -> click.Choice:
    """A case-insensitive ``click.Choice`` over an option enum's values."""
    return click.Choice([member.value for member in enum], case_sensitive=False)


seed_option = click.option(
    "--seed",
    type=click.IntRange(min=0, max=MAX_SEED),
    default=0,
    show_default=True,
    help="Seed of every random choice (split, initialisation, minibatches); recorded in config.json.",
)
trust_pickle_option = click.option(
    "--trust-pickle",
    is_flag=True,
    help="Allow opening the data if it is a pickle. Pickles run code: only for files you trust. Never read from "
    "a stored run: give it again to --resume, evaluate and report a run of pickled data.",
)
device_option = click.option(
    "--device",
    type=enum_choice(DeviceKind),
    default=DeviceKind.CPU.value,
    show_default=True,
    help="Where to load the model and compute: cpu, cuda, or auto (CUDA when available). Results do not depend "
    "on it beyond floating-point rounding.",
)
quiet_option = click.option("-q", "--quiet", is_flag=True, help="No progress bar or summary on stderr.")

_GP = GPMKLConfig()
_MULTICLASS_ALIASES = {"ovr": MKLMulticlass.ONE_VS_REST}  # the short spelling of one-vs-rest


def _mkl_multiclass(ctx: click.Context, param: click.Parameter, value: str) -> MKLMulticlass:
    return _MULTICLASS_ALIASES.get(value.lower()) or MKLMulticlass(value.lower())


def _mkl_basis_rank(ctx: click.Context, param: click.Parameter, value: str | int | None) -> int | None:
    """``N`` (a positive integer) or ``none`` (no projection) -> ``N`` or ``None``."""
    if value is None or str(value).strip().lower() == "none":
        return None
    text = str(value).strip()
    if not (text.isdigit() and int(text) > 0):
        raise click.BadParameter(
            f"expected a positive integer q (columns of the joint basis), or 'none' to solve on the factors as "
            f"they are; got {value!r}.",
            ctx,
            param,
        )
    return int(text)


mkl_multiclass_option = click.option(
    "--mkl-multiclass",
    type=click.Choice([*(m.value for m in MKLMulticlass), *_MULTICLASS_ALIASES], case_sensitive=False),
    default=_GP.multiclass.value,
    show_default=True,
    callback=_mkl_multiclass,
    help="gp-mkl, Lanckriet with more than two classes: one problem whose one-vs-rest SVM duals share the kernel "
    "weights (joint), or one problem per class with the weights averaged (one-vs-rest, or ovr).",
)
mkl_basis_rank_option = click.option(
    "--mkl-basis-rank",
    default="none" if _GP.basis_rank is None else str(_GP.basis_rank),
    show_default=True,
    callback=_mkl_basis_rank,
    metavar="N|none",
    help="gp-mkl, joint multi-class MKL: columns q of the joint basis the kernel factors are projected on (cost "
    "c n q^2 per interior-point iteration), or 'none' for no projection.",
)


def _one_line(error: Exception) -> str:
    # Messages quote paths and names as given; a newline inside one must not break the one-line contract.
    return str(error).replace("\r", "\\r").replace("\n", "\\n")


def handle_errors(command: F) -> F:
    """Turn library errors into one-line CLI errors: bad options exit 2, other failures exit 1, no traceback."""

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return command(*args, **kwargs)
        except ConfigError as error:  # an option (or a stored config) out of range: a usage error, exit 2
            raise click.UsageError(_one_line(error)) from None
        except ProbfusionError as error:  # bad data, a damaged run, an existing run: exit 1, one line
            raise click.ClickException(_one_line(error)) from None
        except KeyboardInterrupt:
            click.echo("Interrupted; an unfinished fit continues with --resume.", err=True)
            sys.exit(130)

    return wrapper  # type: ignore[return-value]


def check_run_dir(run: Path) -> Path:
    """``run`` itself if it is a folder made by ``probfusion fit``.

    Raises:
        CheckpointError: If ``run`` is not a folder, or holds no run configuration.
    """
    if not run.is_dir():
        raise CheckpointError(f"No run directory at {run}; give the folder that `probfusion fit` printed.")
    stored = RunDirectory(run)
    if not stored.is_run:
        raise CheckpointError(f"{run} is not a run (no {stored.CONFIG}); give a folder made by `probfusion fit`.")
    return run
