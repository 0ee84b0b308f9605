"""Strategies and their parameters: find a strategy from its name, check and convert its parameters.

A strategy travels to worker processes as a string (a registered name, ``package.module:Class``
or ``/abs/path/file.py:Class``); :func:`resolve_strategy` gives that string and
:func:`strategy_from_ref` is what a worker does with it. The parameters of any backtrader class
(strategy, sizer, analyzer, commission scheme) travel as JSON-able values too:
:func:`coerce_params` checks and converts them, :func:`resolve_params` is what a worker gives
backtrader.
"""

from __future__ import annotations

import functools
import inspect
import numbers
import os
import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import backtrader as bt

from ..checks import coerce_like, literal, split_key_value, type_word
from ..errors import ConfigError, PluginError


def strategy_params(cls: type) -> dict[str, Any]:
    """The parameters of a backtrader class (strategy, sizer, analyzer, commission scheme,
    indicator) and their defaults, in declaration order."""
    params = getattr(cls, "params", ())
    return dict(params._getpairs() if hasattr(params, "_getpairs") else params)


def resolve_strategy(strategy: str | type) -> tuple[type, str | None]:
    """The strategy class, and the string a worker process resolves to find it again.

    Parameters
    ----------
    strategy : str or type
        A registered name (``sma_cross``), ``package.module:Class``, ``path/to/file.py:Class``,
        or a ``backtrader.Strategy`` subclass.

    Returns
    -------
    (cls, ref)
        ``ref`` is None when the class cannot be found again by name (defined in a notebook
        or in ``__main__``); such a class can only run with ``jobs=1``.

    Raises
    ------
    PluginError
        When no such strategy exists or the object is not a ``backtrader.Strategy`` subclass.
    """
    from ..references import object_ref
    from ..registry import get_registry

    if isinstance(strategy, str):
        ref = _absolute_ref(strategy)
        cls = get_registry().get("strategy", ref)
        _check_strategy_class(cls, strategy)
        return cls, object_ref(cls) or ref
    _check_strategy_class(strategy, getattr(strategy, "__name__", repr(strategy)))
    ref = object_ref(strategy)
    if ref is None:
        for name, info in get_registry().strategies().items():
            if info.obj is strategy:
                return strategy, name
    return strategy, ref


def _check_strategy_class(cls: Any, label: str) -> None:
    if not (isinstance(cls, type) and issubclass(cls, bt.Strategy)):
        from ..references import display

        raise PluginError(f"{label!r} is not a backtrader.Strategy subclass (got {display(cls)}).")


def _absolute_ref(ref: str) -> str:
    """``file.py:Class`` with the file's absolute path, so workers elsewhere find it too."""
    target, sep, attr = ref.rpartition(":")
    if sep and (target.endswith(".py") or "/" in target or os.sep in target):
        return f"{Path(target).expanduser().resolve()}:{attr}"
    return ref


@functools.lru_cache(maxsize=32)
def strategy_from_ref(ref: str) -> type:
    """What a worker does with a strategy's string (once per process and strategy)."""
    from ..references import load_object
    from ..registry import get_registry

    cls = load_object(ref, "strategy") if ":" in ref else get_registry().get("strategy", ref)
    _check_strategy_class(cls, ref)
    return cls


# ----------------------------------------------------------------------------------------
# Parameters: as backtrader takes them, as JSON-able values that travel to workers
# ----------------------------------------------------------------------------------------
_DOTTED = re.compile(r"^[A-Za-z_]\w*(\.[A-Za-z_]\w*)+$")
_KIND_WORDS = (
    (bt.Strategy, "Strategy"),
    (bt.Sizer, "Sizer"),
    (bt.Analyzer, "Analyzer"),
    (bt.CommInfoBase, "Commission scheme"),
    (bt.Indicator, "Indicator"),
    (bt.Observer, "Observer"),
)


def coerce_params(cls: type, params: Mapping[str, Any] | None, *, label: str | None = None) -> dict[str, Any]:
    """Check ``params`` against the ``params`` of a backtrader class (a strategy, sizer,
    analyzer, commission scheme...) and convert them as backtrader takes them.

    The type of each parameter is the type of its default:

    - ``bool``, ``int``, ``float``, ``str``, a tuple or list: text (from the command line) is
      converted by :func:`synthmarket.checks.coerce_like` (``"yes"``, ``"1e3"``, ``"'x'"``,
      ``"(1, 2)"``; a tuple default gives a tuple); other values must have the type already (an
      int passes for a float). A number may also be named: ``bt.TimeFrame.Years``.
    - ``False`` (backtrader's "off, or a value"): also a number or a literal (``"20.0"`` is
      20.0, ``"'sma'"`` is ``'sma'``); a bare word that is not true or false is refused (a typo
      of ``true`` must not pass). ``None``: a Python literal, else the text itself.
    - a class or function (``bt.ind.SMA``): another one, named ``bt.ind.EMA``,
      ``backtrader.indicators.EMA``, ``package.module:Name`` or ``path/to/file.py:Name``
      (``bt.`` stands for ``backtrader.``), or the object itself. It is returned as its
      reference (:func:`synthmarket.references.object_ref`), so that every value is JSON-able
      and travels to worker processes; an object that has none (defined in ``__main__`` or a
      notebook) is kept. :func:`resolve_params` turns references back into objects.

    The class's ``check_params(params)`` class method, when it has one, then checks
    combinations (given the values :func:`resolve_params` makes of them).

    Raises
    ------
    ConfigError
        For an unknown parameter, a value of the wrong type or a name that loads nothing.
    """
    label = label or cls.__name__
    known = strategy_params(cls)
    out: dict[str, Any] = {}
    for key, value in (params or {}).items():
        if key not in known:
            listing = ", ".join(f"{k}={v!r}" for k, v in known.items()) or "none"
            raise ConfigError(f"{_owner(cls, label)} has no parameter {key!r}. Its parameters: {listing}.")
        default = known[key]
        if _is_object(default):
            out[key] = _coerce_object(label, key, value, default)
        else:
            out[key] = _coerce_value(label, key, value, default)
    check = getattr(cls, "check_params", None)
    if callable(check):
        check(resolve_params(cls, out))
    return out


def resolve_params(cls: type, params: Mapping[str, Any] | None) -> dict[str, Any]:
    """The parameters to give backtrader (``cerebro.addstrategy(cls, **resolve_params(cls, params))``):
    the references :func:`coerce_params` made of class- or function-valued parameters become the
    objects again (loaded once per process); other values pass through. Costs nothing for a
    class without such parameters: ``params`` itself comes back."""
    keys = _object_keys(cls)
    if not keys or not params:
        return params if isinstance(params, dict) else dict(params or {})
    return {k: _load_cached(v) if k in keys and isinstance(v, str) else v for k, v in params.items()}


def _is_object(default: Any) -> bool:
    return inspect.isclass(default) or inspect.isroutine(default)


@functools.lru_cache(maxsize=64)
def _object_keys(cls: type) -> frozenset[str]:
    """The parameters of ``cls`` whose default is a class or function."""
    return frozenset(key for key, default in strategy_params(cls).items() if _is_object(default))


def _owner(cls: type, label: str) -> str:
    """``Strategy 'sma_cross'``; ``The sizer PercentSizer`` for a label that names the kind."""
    kind = next((word for base, word in _KIND_WORDS if issubclass(cls, base)), "Class")
    return f"The {label}" if label.lower().startswith(kind.lower()) else f"{kind} {label!r}"


def _load(name: str) -> Any:
    """The object ``name`` names: ``bt.ind.EMA``, ``package.module.Name``, ``package.module:Name``
    or ``path/to/file.py:Name``; PluginError when it names nothing."""
    from ..references import load_dotted, load_object

    name = name.strip()
    if ":" in name:
        return load_object(_absolute_ref(name))
    return load_dotted("backtrader" + name[2:] if name.startswith("bt.") else name)


_load_cached = functools.lru_cache(maxsize=256)(_load)


def _coerce_object(label: str, key: str, value: Any, default: Any) -> Any:
    """A class- or function-valued parameter: its reference, or the object when it has none."""
    from ..references import display, object_ref

    what = "a class" if inspect.isclass(default) else "a function"
    wanted = f"Parameter {key!r} of {label!r} takes {what} (default {object_ref(default) or display(default)})"
    if isinstance(value, str):
        try:
            value = _load(value)
        except PluginError as exc:
            raise ConfigError(f"{wanted}; {value!r} names nothing: {exc}") from None
    if not callable(value):
        raise ConfigError(f"{wanted}; got {value!r}.")
    return object_ref(value) or value


def _coerce_value(label: str, key: str, value: Any, default: Any) -> Any:
    """Any other parameter: the type of its default, with backtrader's "off or a value"."""
    try:
        out = coerce_like(value, default)
        return tuple(out) if isinstance(default, tuple) else out
    except ValueError:
        pass
    if default is False and isinstance(value, str):
        parsed = literal(value)
        if not (isinstance(parsed, str) and parsed == value.strip()):  # a literal; bare words may be typos
            return parsed
    if default is False and isinstance(value, numbers.Real) and not isinstance(value, bool):
        return value
    tried = ""
    if isinstance(value, str) and _DOTTED.match(value.strip()):
        try:
            named = _load(value)
        except PluginError as exc:
            tried = f" ({value!r} names nothing: {exc})"
        else:
            try:
                return coerce_like(named, default)
            except ValueError:
                tried = f" ({value!r} is {named!r})"
    words = f"{type_word(default)}, a number or quoted text" if default is False else type_word(default)
    raise ConfigError(f"Parameter {key!r} of {label!r} takes {words} (default {default!r}); got {value!r}.{tried}")


def parse_param_items(items: Iterable[str]) -> dict[str, str]:
    """``["fast=5", "slow=20"]`` -> ``{"fast": "5", "slow": "20"}`` (the CLI's ``-p key=value``)."""
    out: dict[str, str] = {}
    for item in items:
        try:
            key, value = split_key_value(item)
        except ValueError:
            raise ConfigError(f"Parameter {item!r} is not key=value (e.g. -p fast=10).") from None
        out[key] = value
    return out
