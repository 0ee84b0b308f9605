"""``synthmarket strategies``: the strategies a backtest can use, with their parameters."""

from __future__ import annotations

from rich.markup import escape
from rich.table import Table

from ..registry import get_registry
from .common import app, console


@app.command()
def strategies() -> None:
    """List the registered strategies with their parameters (name: type = default) and origin."""
    from ..montecarlo import strategy_params

    registry = get_registry()
    table = Table(title="synthmarket strategies", title_justify="left")
    table.add_column("name", no_wrap=True)
    table.add_column("parameters", no_wrap=True)
    table.add_column("description", ratio=1)
    table.add_column("origin")
    for info in sorted(registry.strategies().values(), key=lambda i: i.name):
        params = "\n".join(
            f"{key}: {type(default).__name__} = {default!r}" for key, default in strategy_params(info.obj).items()
        )
        table.add_row(info.name, params or "-", info.description, info.origin)
    console.print(table)
    console.print(
        "Use one with `synthmarket backtest --strategy NAME -p key=value`; a class of your own with "
        "--strategy path/to/file.py:Class or package.module:Class.",
        highlight=False,
    )
    for problem in registry.problems:
        console.print(f"[yellow]Warning:[/] {escape(str(problem))}", highlight=False)
