"""The ``probfusion`` command group; each command lives in its own module, imported only when it runs."""

from __future__ import annotations

import importlib
import logging
import warnings

import click

from probfusion.errors import InputDataWarning

# name -> "module:attribute". Importing a command pulls in its stack (matplotlib for evaluate, ArviZ for
# report), so the group imports only the one that runs; `probfusion --help` imports them all for their help.
_COMMANDS = {
    "fit": "probfusion.cli.fit:fit",
    "datasets": "probfusion.cli.datasets:datasets",
    "evaluate": "probfusion.cli.evaluate:evaluate",
    "report": "probfusion.cli.report:report",
    "predict": "probfusion.cli.predict:predict_command",
    "tune": "probfusion.cli.tune:tune",
}


class _LazyGroup(click.Group):
    """A click group whose subcommands are imported on first use (click's documented lazy-loading pattern)."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *_COMMANDS})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name in _COMMANDS and cmd_name not in self.commands:
            module, attribute = _COMMANDS[cmd_name].split(":")
            self.add_command(getattr(importlib.import_module(module), attribute), cmd_name)
        return super().get_command(ctx, cmd_name)


@click.group(cls=_LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
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
