"""Package attributes imported on first use (PEP 562), so that importing a package stays cheap.

A package's ``__init__`` lists its public names and the module defining each::

    __getattr__, __dir__ = lazy_attributes(__name__, {"scorecard": ".evaluate", ...})
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from importlib import import_module
from typing import Any


def lazy_attributes(package: str, where: dict[str, str]) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """The ``__getattr__`` and ``__dir__`` of ``package``: ``where[name]`` is the module (absolute,
    or relative to ``package``) whose attribute ``name`` is imported the first time it is asked for."""
    module = sys.modules[package]

    def __getattr__(name: str) -> Any:
        if name not in where:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(import_module(where[name], package), name)
        setattr(module, name, value)  # the next lookup finds it without coming here
        return value

    def __dir__() -> list[str]:
        return sorted(set(vars(module)) | set(where))

    return __getattr__, __dir__
