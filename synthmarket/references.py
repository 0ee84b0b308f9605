"""Object references: load ``package.module:Name`` or ``path/to/file.py:Name``, and check its kind.

A user can name a generator, strategy or fact of their own directly instead of by a
registered name (docs/plugins.md); :meth:`synthmarket.registry.Registry.get` resolves such a
reference through :func:`load_object` and :func:`check_kind`, which also checks every object
a plugin registers.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import inspect
import os
import sys
from pathlib import Path
from typing import Any

from .errors import PluginError

_BASE_NAMES = {
    "generator": "synthmarket.generator.Generator",
    "strategy": "backtrader.Strategy",
    "fact": "synthmarket.facts.StylizedFact",
}


def _base_class(kind: str) -> type | None:
    """The class every object of ``kind`` must subclass (None when it cannot be imported)."""
    try:
        if kind == "generator":
            from .generator import Generator

            return Generator
        if kind == "strategy":
            import backtrader

            return backtrader.Strategy
        return importlib.import_module("synthmarket.facts.base").StylizedFact
    except (ImportError, AttributeError):
        return None


def check_kind(kind: str, obj: Any, origin: str) -> None:
    """Raise :class:`PluginError` unless ``obj`` is a class of the right base for ``kind``."""
    base = _base_class(kind)
    if base is None:
        return
    if not (inspect.isclass(obj) and issubclass(obj, base)):
        raise PluginError(f"{origin} gave {obj!r} as a {kind}, but a {kind} must be a subclass of {_BASE_NAMES[kind]}.")


def load_object(ref: str) -> Any:
    """Load ``package.module:Name`` or ``path/to/file.py:Name``.

    A file is imported once per process (under a name derived from its absolute path), so
    naming it twice gives the same object.

    Raises
    ------
    PluginError
        When the reference is malformed, or the module or file cannot be imported, or it
        has no such attribute.
    """
    target, sep, attr = ref.rpartition(":")
    if not sep or not target or not attr or not attr.replace(".", "").replace("_", "").isalnum():
        raise PluginError(f"{ref!r} is not a reference: write package.module:Name or path/to/file.py:Name.")
    try:
        if target.endswith(".py") or "/" in target or os.sep in target:
            module = _import_file(Path(target).expanduser(), ref)
        else:
            module = importlib.import_module(target)
    except PluginError:
        raise
    except (Exception, SystemExit) as exc:
        raise PluginError(f"Could not import {target!r} (from {ref!r}): {type(exc).__name__}: {exc}") from None
    obj: Any = module
    for part in attr.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            raise PluginError(f"{target!r} has no attribute {attr!r} (from {ref!r}).") from None
    return obj


def _import_file(path: Path, ref: str) -> Any:
    if not path.is_file():
        raise PluginError(f"No such file {str(path)!r} (from {ref!r}).")
    resolved = str(path.resolve())
    module_name = "synthmarket_user_" + hashlib.sha256(resolved.encode()).hexdigest()[:16]
    if module_name in sys.modules:
        return sys.modules[module_name]
    spec = importlib.util.spec_from_file_location(module_name, resolved)
    if spec is None or spec.loader is None:
        raise PluginError(f"{str(path)!r} is not an importable Python file (from {ref!r}).")
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module  # dataclasses and pickling look the module up
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[module_name]
        raise
    return module
