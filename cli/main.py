"""The ``probfusion`` command group; each command lives in its own module."""

from __future__ import annotations

import logging
import warnings

import click

from probfusion.cli.datasets import datasets
from probfusion.cli.evaluate import evaluate
from probfusion.cli.fit import fit
from probfusion.cli.report import report
from probfusion.errors import InputDataWarning


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="probfusion", prog_name="probfusion")
@click.option("-v", "--verbose", count=True, help="More log output on stderr (-v info, -vv debug).")
def cli(verbose: int) -> None:
    """Robust, uncertainty-aware multimodal fusion.

    Results go to run directories; stdout carries only their paths, logs go to stderr.
    """
    level = logging.WARNING if verbose == 0 else logging.INFO if verbose == 1 else logging.DEBUG
    logger = logging.getLogger("probfusion")
    logger.setLevel(min(level, logging.INFO))  # INFO always reaches the run's train.log
    # A fresh handler per invocation binds the current sys.stderr (CliRunner swaps it between calls).
    for old in [h for h in logger.handlers if getattr(h, "_probfusion_cli", False)]:
        logger.removeHandler(old)
    handler = logging.StreamHandler()
    handler.setLevel(level)
    handler._probfusion_cli = True  # type: ignore[attr-defined]
    logger.addHandler(handler)
    warnings.simplefilter("always", InputDataWarning)


cli.add_command(fit)
cli.add_command(datasets)
cli.add_command(evaluate)
cli.add_command(report)
