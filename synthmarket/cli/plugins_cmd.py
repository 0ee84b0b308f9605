"""``synthmarket plugins``: every generator, strategy and fact, with its origin."""

from __future__ import annotations

from rich.table import Table

from ..registry import get_registry
from .common import app, console


@app.command()
def plugins() -> None:
    """List every generator, strategy and stylized fact, with a description and its origin."""
    registry = get_registry()
    table = Table(title="synthmarket plugins")
    for column in ("kind", "name", "description", "origin"):
        table.add_column(column)
    for kind in ("generator", "strategy", "fact"):
        for info in sorted(registry.items[kind].values(), key=lambda i: i.name):
            table.add_row(kind, info.name, info.description, info.origin)
    console.print(table)
    for problem in registry.problems:
        console.print(f"[yellow]Warning:[/] {problem}", highlight=False)
