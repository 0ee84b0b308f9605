"""What every command module shares: the Typer app, the consoles and common help texts."""

from __future__ import annotations

import errno
from typing import NoReturn

import typer
from rich.console import Console
from rich.markup import escape
from typer.core import TyperGroup

from ..errors import SynthmarketError

console = Console()
err_console = Console(stderr=True)

DATA_HELP = "A bundled data set (sp500, nasdaq) or a CSV/Parquet file of OHLCV bars."
DATE_FORMAT_HELP = "The data file's date format, e.g. %d/%m/%Y (needed when day and month could be either way round)."


def fail(message: str) -> NoReturn:
    """Print one error message (the user's text shown as written, never as markup) and exit 2."""
    err_console.print(f"[bold red]Error:[/] {escape(message)}", highlight=False, soft_wrap=True)
    raise typer.Exit(2)


def filesystem_message(exc: OSError) -> str:
    """What a failed read or write of a file means for the user, in one sentence."""
    where = f" {exc.filename!s}" if exc.filename else ""
    reason = exc.strerror or str(exc)
    if exc.errno == errno.ENOSPC:
        return f"No space left on the device to write{where}; free some space and run again (nothing was kept half-written)."
    if exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        return (
            f"Permission denied on{where}: {reason}. Choose a path you may read and write, or change its permissions."
        )
    return f"Cannot use{where}: {reason}."


class _Group(TyperGroup):
    """Turns a user's mistake (a SynthmarketError, or a file the system refuses) into one
    message and exit status 2."""

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except SynthmarketError as exc:
            fail(str(exc))
        except OSError as exc:
            fail(filesystem_message(exc))


app = typer.Typer(
    name="synthmarket",
    cls=_Group,
    help="Train generators on real OHLCV data, sample market paths, test stylized facts and "
    "Monte-Carlo backtest strategies on them.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


@app.callback()
def _root() -> None:
    """synthmarket: realistic synthetic market histories for stress-testing strategies."""
