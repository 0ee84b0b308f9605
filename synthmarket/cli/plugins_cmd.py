"""``synthmarket plugins``: every generator, strategy and fact, with its origin; with
``--generator NAME``, that generator's hyper-parameters (name, type, default, help)."""

from __future__ import annotations

import typer
from rich.markup import escape
from rich.table import Table

from ..registry import KINDS, get_registry
from .common import app, console


@app.command()
def plugins(
    generator: str | None = typer.Option(
        None, "--generator", "-g", help="List this generator's hyper-parameters: name, type, default and help."
    ),
) -> None:
    """List every generator, strategy and stylized fact, with a description and its origin."""
    registry = get_registry()
    if generator is not None:
        _hyperparameter_table(registry.get("generator", generator))
        return
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


def _hyperparameter_table(gen_cls) -> None:
    from ..hyperparameters import format_value

    table = Table(title=f"{gen_cls.name} hyper-parameters (set with -H name=value)")
    for column in ("name", "type", "default", "help"):
        table.add_column(column, overflow="fold")
    for hp in gen_cls.hyperparameters:
        kind = hp.type_name if hp.choices is None else " | ".join(map(str, hp.choices))
        table.add_row(hp.name, escape(kind), escape(format_value(hp)), escape(hp.help))
    if not gen_cls.hyperparameters:
        table.add_row("(none)", "", "", "")
    console.print(table)
    if gen_cls.renamed:
        renames = ", ".join(f"{old} -> {new}" for old, new in gen_cls.renamed.items())
        console.print(f"Renamed (old model directories still load): {escape(renames)}", highlight=False)
