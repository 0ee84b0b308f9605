"""``synthmarket plugins``: every generator, strategy and fact, with its origin."""

from __future__ import annotations

from rich.markup import escape
from rich.table import Table

from ..registry import KINDS, get_registry
from .common import app, console


@app.command()
def plugins() -> None:
    """List every generator, strategy and stylized fact, with a description and its origin."""
    registry = get_registry()
    table = Table(title="synthmarket plugins")
    for column in ("kind", "name", "description", "origin"):
        table.add_column(column)
    for kind in KINDS:
        rows = [(info, False) for info in registry.items[kind].values()]
        rows += [(info, True) for (k, _), infos in registry.conflicts.items() if k == kind for info in infos]
        for info, clash in sorted(rows, key=lambda row: (row[0].name, row[0].origin)):
            name = f"[red]{info.name} (clash)[/]" if clash else info.name
            table.add_row(kind, name, info.description, info.origin)
    console.print(table)
    for problem in registry.problems:
        console.print(f"[yellow]Warning:[/] {escape(str(problem))}", highlight=False, soft_wrap=True)
