"""Strategies and their parameters: find a strategy from its name, check and convert its parameters.

A strategy travels to worker processes as a string (a registered name, ``package.module:Class``
or ``/abs/path/file.py:Class``); :func:`resolve_strategy` gives that string and
:func:`strategy_from_ref` is what a worker does with it.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import backtrader as bt

from ..checks import coerce_like, split_key_value, type_word
from ..errors import ConfigError, PluginError


def strategy_params(cls: type) -> dict[str, Any]:
    """A strategy's parameters and their defaults, in declaration order."""
    return dict(cls.params._getpairs())


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
    from ..references import load_object
    from ..registry import get_registry

    if isinstance(strategy, str):
        ref = _absolute_ref(strategy)
        cls = get_registry().get("strategy", ref)
        _check_strategy_class(cls, strategy)
        return cls, _importable_ref(cls) or ref
    _check_strategy_class(strategy, getattr(strategy, "__name__", repr(strategy)))
    ref = _importable_ref(strategy)
    if ref is None:
        for name, info in get_registry().strategies().items():
            if info.obj is strategy:
                return strategy, name
    if ref is not None:
        try:
            if load_object(ref) is not strategy:
                ref = None
        except PluginError:
            ref = None
    return strategy, ref


def _check_strategy_class(cls: Any, label: str) -> None:
    if not (isinstance(cls, type) and issubclass(cls, bt.Strategy)):
        raise PluginError(f"{label!r} is not a backtrader.Strategy subclass (got {cls!r}).")


def _absolute_ref(ref: str) -> str:
    """``file.py:Class`` with the file's absolute path, so workers elsewhere find it too."""
    target, sep, attr = ref.rpartition(":")
    if sep and (target.endswith(".py") or "/" in target or os.sep in target):
        return f"{Path(target).expanduser().resolve()}:{attr}"
    return ref


def _importable_ref(cls: type) -> str | None:
    module = getattr(cls, "__module__", "")
    qualname = getattr(cls, "__qualname__", "")
    if not module or module in ("__main__", "__mp_main__") or module.startswith("synthmarket_user_"):
        return None
    if "<locals>" in qualname or "." in qualname:
        return None
    return f"{module}:{qualname}"


@functools.lru_cache(maxsize=32)
def strategy_from_ref(ref: str) -> type:
    """What a worker does with a strategy's string (once per process and strategy)."""
    from ..references import load_object
    from ..registry import get_registry

    cls = load_object(ref) if ":" in ref else get_registry().get("strategy", ref)
    _check_strategy_class(cls, ref)
    return cls


def coerce_params(cls: type, params: Mapping[str, Any] | None, *, label: str | None = None) -> dict[str, Any]:
    """Check ``params`` against the strategy's ``params`` and convert strings to their types.

    The type of each parameter is the type of its default: ``int``, ``float``, ``bool`` or
    ``str``. Strings (from the command line) are converted; other values must already have
    the right type (an int is accepted for a float). A parameter whose default is None or
    of another type takes a Python literal, or the string itself. The strategy's
    ``check_params(params)`` class method, when it has one, then checks combinations.

    Raises
    ------
    ConfigError
        For an unknown parameter or a value of the wrong type.
    """
    label = label or cls.__name__
    known = strategy_params(cls)
    out: dict[str, Any] = {}
    for key, value in (params or {}).items():
        if key not in known:
            listing = ", ".join(f"{k}={v!r}" for k, v in known.items()) or "none"
            raise ConfigError(f"Strategy {label!r} has no parameter {key!r}. Its parameters: {listing}.")
        out[key] = _coerce(label, key, value, known[key])
    check = getattr(cls, "check_params", None)
    if callable(check):
        check(out)
    return out


def _coerce(label: str, key: str, value: Any, default: Any) -> Any:
    try:
        return coerce_like(value, default)
    except ValueError:
        raise ConfigError(
            f"Parameter {key!r} of {label!r} takes {type_word(default)} (default {default!r}); got {value!r}."
        ) from None


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
