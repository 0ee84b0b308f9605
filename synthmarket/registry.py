"""The plugin registry: built-ins and third-party plugins, declared by name, imported on use.

A package contributes generators, strategies and facts in one of two ways (docs/plugins.md):

- *declared*: one entry point per item in the group of its kind (:data:`DECLARED_GROUPS`,
  e.g. ``synthmarket.generators``), ``name = "package.module:Class"``. The names come from
  the installed metadata without importing anything; a module is imported the first time
  one of its objects is used (:attr:`PluginInfo.obj`). The built-ins are declared this way
  in synthmarket's own ``pyproject.toml``.
- *hooks*: a module of the entry-point group ``synthmarket`` with pluggy hooks
  (:mod:`synthmarket.hookspecs`). Such a module is imported whenever the registry is built,
  since only its hooks know what it registers.

Third-party plugins load unless ``SYNTHMARKET_LOAD_PLUGINS`` limits them: set it to a
comma-separated list of entry-point or distribution names (empty: none). The built-ins
always load.

A plugin that fails to import, or fails inside a hook, is reported in
:attr:`Registry.problems` and the others still load (a declared item when it is first used).
Two plugins that register the same name make that name unusable until one is left out:
:meth:`Registry.get` raises a :class:`~synthmarket.errors.PluginError` naming both origins.

A user can also name a single object directly, ``package.module:Name`` or
``path/to/file.py:Name`` (see :func:`synthmarket.references.load_object`).
"""

from __future__ import annotations

import difflib
import importlib.metadata
import os
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

import pluggy

from . import hookspecs
from .errors import PluginError
from .references import check_kind, load_object  # load_object: also importable from here, as before

GROUP = hookspecs.PROJECT
ENV_ALLOW = "SYNTHMARKET_LOAD_PLUGINS"
BUILTIN_DISTRIBUTION = "synthmarket"
KINDS = {"generator": "register_generators", "strategy": "register_strategies", "fact": "register_facts"}
PLURALS = {"generator": "generators", "strategy": "strategies", "fact": "facts"}
#: The entry-point group in which a package declares its items of each kind by name.
DECLARED_GROUPS = {kind: f"{GROUP}.{plural}" for kind, plural in PLURALS.items()}
_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]*$")


class PluginInfo:
    """One registered generator, strategy or fact.

    A hook registers the object itself (``obj``); a declared item has only its
    ``entry_point`` until :attr:`obj` is first read, which imports it (and checks its kind).
    An import that fails raises a :class:`PluginError` and is reported once in ``problems``,
    the registry's list.
    """

    def __init__(
        self,
        kind: str,
        name: str,
        origin: str,
        *,
        obj: Any = None,
        entry_point: importlib.metadata.EntryPoint | None = None,
        problems: list[PluginError] | None = None,
    ) -> None:
        self.kind = kind
        self.name = name
        self.origin = origin  # "entry-point-name (package)" of a hook plugin, "module (package)" if declared
        self.entry_point = entry_point
        self._obj = obj  # None until a declared item is imported
        self._problems = problems if problems is not None else []

    def __repr__(self) -> str:
        return f"PluginInfo({self.kind!r}, {self.name!r}, origin={self.origin!r})"

    @property
    def obj(self) -> Any:
        """The class, imported on first use for a declared item."""
        if self._obj is None:
            try:
                self._obj = self._import()
            except PluginError as exc:
                if str(exc) not in map(str, self._problems):
                    self._problems.append(exc)
                raise
        return self._obj

    def _import(self) -> Any:
        try:
            obj = self.entry_point.load()
        except (Exception, SystemExit) as exc:  # a broken plugin must not stop the others
            raise _load_failure(self.entry_point, exc) from None
        check_kind(self.kind, obj, self.origin)
        return obj

    def loads(self) -> bool:
        """Whether :attr:`obj` can be had (a failure is reported in the registry's problems)."""
        try:
            _ = self.obj
        except PluginError:
            return False
        return True

    @property
    def description(self) -> str:
        """The first line of the object's docstring (imports a declared item; "" if it fails to)."""
        return describe(self.obj) if self.loads() else ""


@dataclass
class Registry:
    """Everything the plugins contributed, by kind and name.

    Attributes
    ----------
    items : dict
        ``items[kind][name]`` is a :class:`PluginInfo`; ``kind`` is one of :data:`KINDS`.
        Reading it imports nothing; a declared item is imported when its ``obj`` is read.
    problems : list of PluginError
        Plugins that failed to load or to register, and name clashes.
    conflicts : dict
        ``conflicts[(kind, name)]`` lists the :class:`PluginInfo` of every plugin that
        registered that name; such a name is left out of ``items``.
    """

    items: dict[str, dict[str, PluginInfo]] = field(default_factory=lambda: {k: {} for k in KINDS})
    problems: list[PluginError] = field(default_factory=list)
    conflicts: dict[tuple[str, str], list[PluginInfo]] = field(default_factory=dict)

    def loaded(self, kind: str) -> dict[str, PluginInfo]:
        """The items of ``kind`` by name, each imported; one that fails is left out and reported."""
        return {name: info for name, info in self.items[kind].items() if info.loads()}

    def generators(self) -> dict[str, PluginInfo]:
        """Registered generators by name (imports them all)."""
        return self.loaded("generator")

    def strategies(self) -> dict[str, PluginInfo]:
        """Registered strategies by name (imports them all)."""
        return self.loaded("strategy")

    def facts(self) -> dict[str, PluginInfo]:
        """Registered stylized facts by name (imports them all)."""
        return self.loaded("fact")

    def get(self, kind: str, name: str, *, references: bool = True) -> Any:
        """The object registered as ``name``, or a ``module:Name`` / ``file.py:Name`` reference.

        Only the plugin that provides ``name`` is imported. With ``references=False`` only
        registered names are accepted (model directories name their generator this way).

        Raises
        ------
        PluginError
            Unknown name (with the known ones and the closest match), a name two plugins
            registered, a plugin that fails to import, or a reference that does not load or
            is not a ``kind``.
        """
        if kind not in KINDS:
            raise PluginError(f"Unknown plugin kind {kind!r}; kinds are {', '.join(KINDS)}.")
        found = self.items[kind].get(name)
        if found is not None:
            return found.obj
        clash = self.conflicts.get((kind, name))
        if clash:
            raise PluginError(_clash_message(kind, name, clash))
        if references and ":" in name:
            obj = load_object(name, kind)
            check_kind(kind, obj, name)
            return obj
        known = ", ".join(sorted(self.items[kind])) or "none"
        close = difflib.get_close_matches(name, list(self.items[kind]), n=1)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        own = (
            " A class of your own can be named as package.module:Class or path/to/file.py:Class." if references else ""
        )
        raise PluginError(f"No {kind} named {name!r}.{hint} Known {PLURALS[kind]}: {known}.{own}")


def _clash_message(kind: str, name: str, infos: list[PluginInfo]) -> str:
    origins = " and ".join(info.origin for info in infos)
    return (
        f"Two plugins register a {kind} named {name!r}: {origins}. The name is unusable until one is "
        f"left out: uninstall one, or list the plugins to load in {ENV_ALLOW}."
    )


def snake_case(name: str) -> str:
    """``SmaCross`` -> ``sma_cross``."""
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


def describe(obj: Any) -> str:
    """First line of an object's docstring."""
    doc = (getattr(obj, "__doc__", None) or "").strip()
    return doc.splitlines()[0].strip() if doc else ""


def _check_name(kind: str, name: Any, origin: str) -> None:
    if not isinstance(name, str) or not _NAME.match(name):
        raise PluginError(
            f"{origin} registered a {kind} without a usable name ({name!r}); a name is letters, digits, "
            f"'_', '.' or '-', as typed on the command line."
        )


def plugin_manager() -> pluggy.PluginManager:
    """A pluggy manager that knows synthmarket's hook specifications (and no plugin yet)."""
    pm = pluggy.PluginManager(GROUP)
    pm.add_hookspecs(hookspecs)
    return pm


def _normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def allowed_names() -> set[str] | None:
    """The names ``SYNTHMARKET_LOAD_PLUGINS`` allows (normalised), or None when it is unset."""
    allow = os.environ.get(ENV_ALLOW)
    if allow is None:
        return None
    return {_normalise(n.strip()) for n in allow.split(",") if n.strip()}


def _distribution(ep: importlib.metadata.EntryPoint) -> str:
    return ep.dist.name if ep.dist else "unknown package"


def _allowed(ep: importlib.metadata.EntryPoint, allow: set[str] | None) -> bool:
    dist = ep.dist.name if ep.dist else ""
    if _normalise(dist) == BUILTIN_DISTRIBUTION or allow is None:
        return True
    return _normalise(ep.name) in allow or _normalise(dist) in allow


def _load_failure(ep: importlib.metadata.EntryPoint, exc: BaseException) -> PluginError:
    """What to tell the user when the entry point ``ep`` fails to import with ``exc``."""
    dist = _distribution(ep)
    if _normalise(dist) == BUILTIN_DISTRIBUTION:
        advice = "This built-in plugin should always load: reinstall synthmarket, or report the bug."
    else:
        advice = f"Fix or uninstall that package, or leave it out with {ENV_ALLOW}."
    return PluginError(
        f"Plugin {ep.name!r} from package {dist!r} ({ep.value}) failed to load: {type(exc).__name__}: {exc}. {advice}"
    )


def load_entry_points(
    pm: pluggy.PluginManager, problems: list[PluginError], origins: dict[str, str] | None = None
) -> None:
    """Import and register every allowed module of the hook group ``synthmarket``.

    Each plugin is registered under its entry-point name. A plugin that fails to import
    becomes a :class:`PluginError` in ``problems`` naming the plugin, its package and the
    cause; the others still load. ``origins`` (when given) receives ``name -> "name (package)"``.
    """
    allow = allowed_names()
    seen: dict[str, str] = {}
    for ep in importlib.metadata.entry_points(group=GROUP):
        if not _allowed(ep, allow):
            continue
        dist = _distribution(ep)
        if ep.name in seen:
            if seen[ep.name] != dist:
                problems.append(
                    PluginError(
                        f"Two packages declare a synthmarket plugin named {ep.name!r}: {seen[ep.name]!r} and "
                        f"{dist!r}; only the one from {seen[ep.name]!r} is loaded. Uninstall one, or list the "
                        f"plugins to load in {ENV_ALLOW}."
                    )
                )
            continue
        seen[ep.name] = dist
        try:
            pm.register(ep.load(), name=ep.name)
        except (Exception, SystemExit) as exc:  # a broken plugin must not stop the others
            problems.append(_load_failure(ep, exc))
            continue
        if origins is not None:
            origins[ep.name] = f"{ep.name} ({dist})"


def declared_items(problems: list[PluginError]) -> list[PluginInfo]:
    """Every allowed item of the groups :data:`DECLARED_GROUPS`, read from metadata: nothing is imported.

    Its origin is ``"module (package)"``; ``problems`` receives its import failure, if any, when
    it is first used.
    """
    allow = allowed_names()
    every = importlib.metadata.entry_points()
    return [
        PluginInfo(kind, ep.name, f"{ep.module} ({_distribution(ep)})", entry_point=ep, problems=problems)
        for kind, group in DECLARED_GROUPS.items()
        for ep in every.select(group=group)
        if _allowed(ep, allow)
    ]


def collect(
    pm: pluggy.PluginManager,
    problems: list[PluginError] | None = None,
    origins: dict[str, str] | None = None,
    declared: Iterable[PluginInfo] = (),
) -> Registry:
    """The registry of the declared items and of what each hook plugin registers.

    Hooks are called one plugin at a time, so that each item knows its origin.

    Parameters
    ----------
    pm : pluggy.PluginManager
        A manager from :func:`plugin_manager` with plugins registered on it.
    problems : list of PluginError, optional
        Problems found so far (failed imports); collection appends its own.
    origins : dict, optional
        Plugin name -> how to name it in messages (default: the plugin name).
    declared : iterable of PluginInfo, optional
        Items from :func:`declared_items`, which claim their names first.
    """
    registry = Registry(problems=problems if problems is not None else [])
    origins = origins or {}
    claims: dict[tuple[str, str], list[PluginInfo]] = {}
    for info in declared:
        try:
            _check_name(info.kind, info.name, info.origin)
        except PluginError as exc:
            registry.problems.append(exc)
            continue
        claims.setdefault((info.kind, info.name), []).append(info)
    for kind, hook_name in KINDS.items():
        for impl in getattr(pm.hook, hook_name).get_hookimpls():
            origin = origins.get(impl.plugin_name, impl.plugin_name)
            register = _register_callback(kind, origin, claims)
            arguments = {"register": register}
            try:
                impl.function(*(arguments[a] for a in impl.argnames))
            except PluginError as exc:
                registry.problems.append(exc)
            except Exception as exc:
                registry.problems.append(
                    PluginError(f"Plugin {origin} failed in {hook_name}: {type(exc).__name__}: {exc}")
                )
    for (kind, name), infos in claims.items():
        if len(infos) == 1:
            registry.items[kind][name] = infos[0]
        else:
            registry.conflicts[(kind, name)] = infos
            registry.problems.append(PluginError(_clash_message(kind, name, infos)))
    return registry


def _register_callback(kind: str, origin: str, claims: dict) -> Callable[..., None]:
    def register(obj: Any, name: str | None = None) -> None:
        key = name if name is not None else getattr(obj, "name", None) or snake_case(getattr(obj, "__name__", ""))
        _check_name(kind, key, origin)
        check_kind(kind, obj, origin)
        infos = claims.setdefault((kind, key), [])
        if any(info.origin == origin and info.obj is obj for info in infos):
            return  # the same plugin registering the same object twice
        infos.append(PluginInfo(kind, key, origin, obj=obj))

    return register


@lru_cache(maxsize=1)
def get_registry() -> Registry:
    """The registry of every installed (and allowed) plugin, built once per process.

    Hook plugins are imported here; declared items only when used.
    """
    problems: list[PluginError] = []
    origins: dict[str, str] = {}
    pm = plugin_manager()
    load_entry_points(pm, problems, origins)
    return collect(pm, problems, origins, declared_items(problems))


def reset_registry() -> None:
    """Forget the cached registry (after installing a plugin, or in tests)."""
    get_registry.cache_clear()
