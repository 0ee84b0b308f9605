"""The ``synthmarket`` command. Each sub-command lives in its own module of this package."""

from __future__ import annotations

import sys

from .common import app, console

# Importing a command module registers its commands on ``app``.
from . import plugins_cmd  # noqa: E402,F401
from . import demo_cmd  # noqa: E402,F401
from . import report_cmd  # noqa: E402,F401
from . import train_cmd  # noqa: E402,F401
from . import facts_cmd  # noqa: E402,F401
from . import backtest_cmd  # noqa: E402,F401
from . import strategies_cmd  # noqa: E402,F401
from . import generate_cmd  # noqa: E402,F401
from . import data_cmd  # noqa: E402,F401


def main() -> None:
    """Entry point of the ``synthmarket`` console script."""
    try:
        app(prog_name="synthmarket")
    except KeyboardInterrupt:
        console.print("Interrupted.")
        sys.exit(130)


__all__ = ["app", "main"]
