"""The ``synthmarket`` command. Each sub-command lives in its own module of this package.

Importing a command module registers its commands on the Typer app. :func:`main` imports
only the module of the command it runs, so ``synthmarket strategies`` never pays for
torch, pandas or scipy; ``--help``, an unknown command and ``synthmarket.cli.app`` import
them all.
"""

from __future__ import annotations

import gc
import sys
from importlib import import_module
from typing import Any

import typer

from . import common

#: Each command (the first word after ``synthmarket``) and its module, in the order of ``--help``.
COMMANDS = {
    "plugins": "plugins_cmd",
    "demo": "demo_cmd",
    "report": "report_cmd",
    "train": "train_cmd",
    "facts": "facts_cmd",
    "backtest": "backtest_cmd",
    "strategies": "strategies_cmd",
    "generate": "generate_cmd",
    "data": "data_cmd",
    "calibrate": "calibrate_cmd",
}


def load_commands(*commands: str) -> typer.Typer:
    """The app with ``commands`` registered (every command when none is named)."""
    for command in commands or COMMANDS:
        import_module(f"{__name__}.{COMMANDS[command]}")
    return common.app


def __getattr__(name: str) -> Any:
    if name == "app":
        return load_commands()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def main() -> None:
    """Entry point of the ``synthmarket`` console script."""
    command = sys.argv[1] if len(sys.argv) > 1 else ""
    app = load_commands(command) if command in COMMANDS else load_commands()
    try:
        app(prog_name="synthmarket")
    except KeyboardInterrupt:
        common.console.print("Interrupted.")
        sys.exit(130)
    finally:
        # What is left lives until exit: frozen, it spares the interpreter's last garbage
        # collections a walk over every imported module (0.2 s after a backtest).
        gc.freeze()


__all__ = ["app", "load_commands", "main"]
