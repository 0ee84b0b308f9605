"""What every command module shares: the Typer app, the consoles and common help texts."""

from __future__ import annotations

import typer
from rich.console import Console
from typer.core import TyperGroup

from ..errors import SynthmarketError

console = Console()
err_console = Console(stderr=True)

DATA_HELP = "A bundled data set (sp500, nasdaq) or a CSV/Parquet file of OHLCV bars."


class _Group(TyperGroup):
    """Turns a user's mistake (a SynthmarketError) into one message and exit status 2."""

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except SynthmarketError as exc:
            err_console.print(f"[bold red]Error:[/] {exc}", highlight=False, soft_wrap=True)
            raise typer.Exit(2) from None


app = typer.Typer(
    name="synthmarket",
    cls=_Group,
    help="Train generators on real OHLCV data, sample market paths, test stylized facts and "
    "Monte-Carlo backtest strategies on them.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)


@app.callback()
def _root() -> None:
    """synthmarket: realistic synthetic market histories for stress-testing strategies."""
