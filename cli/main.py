"""placeholder."""
import click


@click.group()
def cli() -> None:
    """Probfusion."""
