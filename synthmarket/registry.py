"""The plugin registry: built-ins and third-party plugins through one pluggy manager.

Built-in plugins are declared in synthmarket's own ``pyproject.toml`` under the entry-point
group ``synthmarket``, exactly as a third-party package declares its own. Third-party
plugins load too, unless ``SYNTHMARKET_LOAD_PLUGINS`` limits them: set it to a
comma-separated list of entry-point or distribution names (empty: none).

A user can also name a single object directly, ``package.module:Name`` or
``path/to/file.py:Name`` (see :func:`load_object`).
"""

from __future__ import annotations

import importlib
import importlib.metadata
import importlib.util
import os
import re
import sys
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import pluggy

from . import hookspecs
from .errors import PluginError

GROUP = hookspecs.PROJECT
ENV_ALLOW = "SYNTHMARKET_LOAD_PLUGINS"
KINDS = {"generator": "register_generators", "strategy": "register_strategies", "fact": "register_facts"}


@dataclass(frozen=True)
class PluginInfo:
    """One registered generator, strategy or fact."""

    kind: str
    name: str
    obj: Any
    description: str
    origin: str  # "plugin-name (distribution)"


@dataclass
class Registry:
    """Everything the loaded plugins contributed, by kind and name."""

    items: dict[str, dict[str, PluginInfo]] = field(default_factory=lambda: {k: {} for k in KINDS})
    problems: list[PluginError] = field(default_factory=list)

    def generators(self) -> dict[str, PluginInfo]:
        return self.items["generator"]

    def strategies(self) -> dict[str, PluginInfo]:
        return self.items["strategy"]

    def facts(self) -> dict[str, PluginInfo]:
        return self.items["fact"]

    def get(self, kind: str, name: str) -> Any:
        """The object registered as ``name``, or a ``module:Name`` / ``file.py:Name`` reference."""
        found = self.items[kind].get(name)
        if found is not None:
            return found.obj
        if ":" in name:
            return load_object(name)
        known = ", ".join(sorted(self.items[kind])) or "none"
        hint = _close_match(name, self.items[kind])
        raise PluginError(
            f"No {kind} named {name!r}.{hint} Known {kind}s: {known}. "
            f"A class of your own can be named as package.module:Class or path/to/file.py:Class."
        )


def _close_match(name: str, known: dict) -> str:
    import difflib

    close = difflib.get_close_matches(name, list(known), n=1)
    return f" Did you mean {close[0]!r}?" if close else ""


def snake_case(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


def describe(obj: Any) -> str:
    """First line of an object's docstring."""
    doc = (getattr(obj, "__doc__", None) or "").strip()
    return doc.splitlines()[0].strip() if doc else ""


def plugin_manager() -> pluggy.PluginManager:
    pm = pluggy.PluginManager(GROUP)
    pm.add_hookspecs(hookspecs)
    return pm


def _allowed(ep: importlib.metadata.EntryPoint) -> bool:
    dist = ep.dist.name if ep.dist else ""
    if dist == "synthmarket":
        return True
    allow = os.environ.get(ENV_ALLOW)
    if allow is None:
        return True
    names = {n.strip() for n in allow.split(",") if n.strip()}
    return ep.name in names or dist in names


def load_entry_points(pm: pluggy.PluginManager, problems: list[PluginError]) -> None:
    """Register every allowed module of the ``synthmarket`` entry-point group."""
    for ep in importlib.metadata.entry_points(group=GROUP):
        if not _allowed(ep) or pm.get_plugin(ep.name) is not None:
            continue
        dist = ep.dist.name if ep.dist else "unknown package"
        try:
            module = ep.load()
            pm.register(module, name=ep.name)
        except Exception as exc:  # a broken plugin must not stop the others
            problems.append(
                PluginError(
                    f"Plugin {ep.name!r} from package {dist!r} ({ep.value}) failed to load: "
                    f"{type(exc).__name__}: {exc}. Fix or uninstall that package, or leave it "
                    f"out with {ENV_ALLOW}."
                )
            )


def _origin(pm: pluggy.PluginManager, plugin_name: str) -> str:
    for ep in importlib.metadata.entry_points(group=GROUP):
        if ep.name == plugin_name and ep.dist is not None:
            return f"{plugin_name} ({ep.dist.name})"
    return plugin_name


def collect(pm: pluggy.PluginManager, problems: list[PluginError] | None = None) -> Registry:
    """Call every plugin's hooks one plugin at a time, so each item knows its origin."""
    registry = Registry(problems=problems if problems is not None else [])
    for kind, hook_name in KINDS.items():
        hook = getattr(pm.hook, hook_name)
        for impl in hook.get_hookimpls():
            origin = _origin(pm, impl.plugin_name)

            def register(obj: Any, name: str | None = None, *, _kind=kind, _origin=origin) -> None:
                key = name or getattr(obj, "name", None) or snake_case(obj.__name__)
                if not isinstance(key, str) or not key:
                    raise PluginError(f"{_origin} registered a {_kind} without a usable name.")
                existing = registry.items[_kind].get(key)
                if existing is not None:
                    raise PluginError(
                        f"Two {_kind}s are named {key!r}: one from {existing.origin}, one from "
                        f"{_origin}. Rename one, or leave one plugin out with {ENV_ALLOW}."
                    )
                registry.items[_kind][key] = PluginInfo(_kind, key, obj, describe(obj), _origin)

            try:
                impl.function(register=register)
            except PluginError as exc:
                registry.problems.append(exc)
            except Exception as exc:
                registry.problems.append(
                    PluginError(f"Plugin {origin} failed in {hook_name}: {type(exc).__name__}: {exc}")
                )
    return registry


@lru_cache(maxsize=1)
def get_registry() -> Registry:
    """The registry of every installed (and allowed) plugin, built once per process."""
    problems: list[PluginError] = []
    pm = plugin_manager()
    load_entry_points(pm, problems)
    return collect(pm, problems)


def reset_registry() -> None:
    """Forget the cached registry (after installing a plugin, or in tests)."""
    get_registry.cache_clear()


def load_object(ref: str) -> Any:
    """Load ``package.module:Name`` or ``path/to/file.py:Name``.

    Raises
    ------
    PluginError
        When the module or file cannot be imported or has no such attribute.
    """
    target, sep, attr = ref.rpartition(":")
    if not sep or not target or not attr:
        raise PluginError(f"{ref!r} is not a reference: write package.module:Name or path/to/file.py:Name.")
    try:
        if target.endswith(".py") or os.sep in target or "/" in target:
            path = Path(target).expanduser()
            if not path.is_file():
                raise PluginError(f"No such file {str(path)!r} (from {ref!r}).")
            module_name = f"synthmarket_user_{abs(hash(str(path.resolve())))}"
            spec = importlib.util.spec_from_file_location(module_name, path)
            module = importlib.util.module_from_spec(spec)
            sys.modules[module_name] = module
            spec.loader.exec_module(module)
        else:
            module = importlib.import_module(target)
    except PluginError:
        raise
    except Exception as exc:
        raise PluginError(f"Could not import {target!r} (from {ref!r}): {type(exc).__name__}: {exc}") from exc
    try:
        return getattr(module, attr)
    except AttributeError:
        raise PluginError(f"{target!r} has no attribute {attr!r} (from {ref!r}).") from None
