"""Object references: load ``package.module:Name`` or ``path/to/file.py:Name``, and check its kind.

A user can name a generator, strategy or fact of their own directly instead of by a
registered name (docs/plugins.md); :meth:`synthmarket.registry.Registry.get` resolves such a
reference through :func:`load_object` and :func:`check_kind`, which also checks every object
a plugin registers. :func:`load_dotted` reads ``package.module.Name`` (a parameter's class),
:func:`object_ref` gives back the reference of an object, and :func:`display` names an object
in messages (a user's file by its path, never by the internal module name it is imported as).
"""

from __future__ import annotations

import builtins
import hashlib
import importlib
import importlib.util
import inspect
import os
import re
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
        raise PluginError(
            f"{origin} gave {display(obj)} as a {kind}, but a {kind} must be a subclass of {_BASE_NAMES[kind]}."
        )


_USER_PREFIX = "synthmarket_user_"
_USER_MODULE = re.compile(_USER_PREFIX + r"[0-9a-f]{16}")


def _user_file(module_name: str) -> str | None:
    """The file a user's module was imported from by :func:`load_object` (None for other modules)."""
    if not module_name.startswith(_USER_PREFIX):
        return None
    return getattr(sys.modules.get(module_name), "__file__", None)


def display(obj: Any) -> str:
    """How a message names ``obj``: a class or function of a user's file as ``path/file.py:Name``,
    anything else by its repr (with the internal module name of a user's file replaced by its path)."""
    file = _user_file(getattr(obj, "__module__", None) or "")
    if file and (inspect.isclass(obj) or inspect.isroutine(obj)):
        return f"{file}:{obj.__qualname__}"
    return _USER_MODULE.sub(lambda m: _user_file(m.group()) or m.group(), repr(obj))


def object_ref(obj: Any) -> str | None:
    """The reference that :func:`load_object` turns back into ``obj`` (a class or function):
    ``package.module:Name``, or ``/abs/path/file.py:Name`` for one from a user's file. None when
    there is none (an object of ``__main__``, a notebook or a function's body)."""
    module = getattr(obj, "__module__", None) or ""
    qualname = getattr(obj, "__qualname__", None) or ""
    if not module or not qualname or "<" in qualname or module in ("__main__", "__mp_main__"):
        return None
    ref = f"{_user_file(module) or module}:{qualname}"
    try:
        return ref if load_object(ref) is obj else None
    except PluginError:
        return None


def load_dotted(name: str) -> Any:
    """Load ``package.module.Name`` (attributes may follow: ``package.Class.attribute``); a bare
    name is a built-in (``float``).

    Raises
    ------
    PluginError
        When the module cannot be imported or has no such attribute.
    """
    first, *rest = name.split(".")
    if not rest and hasattr(builtins, first):
        return getattr(builtins, first)
    try:
        obj = importlib.import_module(first)
    except (Exception, SystemExit) as exc:
        raise PluginError(f"Could not import {first!r} (from {name!r}): {type(exc).__name__}: {exc}") from None
    done = first
    for part in rest:
        if not hasattr(obj, part) and inspect.ismodule(obj):
            try:  # a submodule that its package does not import
                importlib.import_module(f"{obj.__name__}.{part}")
            except ImportError:
                pass
        try:
            obj = getattr(obj, part)
        except AttributeError:
            raise PluginError(f"{done!r} has no attribute {part!r} (from {name!r}).") from None
        done = f"{done}.{part}"
    return obj


def load_object(ref: str, kind: str | None = None) -> Any:
    """Load ``package.module:Name`` or ``path/to/file.py:Name``.

    A file is imported once per process (under a name derived from its absolute path), so
    naming it twice gives the same object. When it has no such name, the message lists the
    classes it defines (those of ``kind`` when given, e.g. the ``backtrader.Strategy``
    subclasses for ``"strategy"``).

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
            if obj is module:
                raise PluginError(_missing_name(module, target, attr, ref, kind)) from None
            raise PluginError(f"{target!r} has no attribute {attr!r} (from {ref!r}).") from None
    return obj


def _missing_name(module: Any, target: str, attr: str, ref: str, kind: str | None) -> str:
    """Why ``module`` has no ``attr``, with the classes it defines (of ``kind`` when given)."""
    base = _base_class(kind) if kind else None
    names = [
        name
        for name, value in vars(module).items()
        if inspect.isclass(value)
        and value.__module__ == module.__name__
        and not name.startswith("_")
        and (base is None or issubclass(value, base))
    ]
    what = f"{_BASE_NAMES[kind]} subclass" if base is not None else "class"
    listing = f"it defines: {', '.join(names)}." if names else f"it defines no {what}."
    if module.__name__.startswith(_USER_PREFIX):
        return f"{target} defines no {attr!r}; {listing}"
    return f"{target!r} has no attribute {attr!r} (from {ref!r})" + (f"; {listing}" if names else ".")


def _import_file(path: Path, ref: str) -> Any:
    if not path.is_file():
        raise PluginError(f"No such file {str(path)!r} (from {ref!r}).")
    resolved = str(path.resolve())
    module_name = _USER_PREFIX + hashlib.sha256(resolved.encode()).hexdigest()[:16]
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
