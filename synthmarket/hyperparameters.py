"""Typed hyper-parameters: :class:`HyperParameter`, declared once per generator.

A generator lists its hyper-parameters in ``hyperparameters``, each with a name, a type, a
default and one line of help; its ``defaults`` dict is derived from them. Values are read
once, where they come in (:meth:`HyperParameter.coerce`, through
:func:`synthmarket.checks.coerce_to`, the one text -> value rule): a list is a list
(``"1,3,9"`` and ``"[1,3,9]"`` are read as ``[1, 3, 9]``), a duration is seconds
(``"9.5m"`` is 570.0). An unknown name or a value of the wrong type is a
:class:`~synthmarket.errors.ConfigError` that names the key and what it accepts.

Hyper-parameters shared by several generators are declared once too (the training length
of :class:`~synthmarket.deep.TorchGenerator`, the ``facts_*`` options, the GAN recipe);
:func:`with_defaults` gives a generator its own defaults for some of them.
"""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from .checks import Duration, coerce_to, kind_of, kind_word, split_key_value, type_name
from .errors import ConfigError

__all__ = ["Duration", "HyperParameter", "declared", "format_value", "parse_hparams", "with_defaults"]


@dataclass(frozen=True)
class HyperParameter:
    """One hyper-parameter: ``name``, ``type``, ``default`` and one line of ``help``.

    ``type`` is bool, int, float, str, a list type (``list[int]``), :class:`Duration`, or
    ``object`` (anything; a None default). ``choices``, when given, are the only values
    accepted. The default is read like any value (``"9.5m"`` becomes 570.0 seconds).
    """

    name: str
    type: Any
    default: Any
    help: str = ""
    choices: tuple | None = None

    def __post_init__(self) -> None:
        if self.default is not None:
            object.__setattr__(self, "default", self.coerce(self.default, text=True))
        if self.choices is not None:
            object.__setattr__(self, "choices", tuple(self.choices))

    @classmethod
    def like(cls, name: str, default: Any, help: str = "") -> HyperParameter:
        """A hyper-parameter whose type is its default's (for plugins that list only ``defaults``)."""
        kind = object if default is None else kind_of(default)
        return cls(name, kind, default, help)

    @property
    def type_name(self) -> str:
        return "any" if self.type is object else type_name(self.type)

    def accepts(self) -> str:
        """What a value must be, in words."""
        if self.choices is not None:
            return "one of " + ", ".join(map(str, self.choices))
        return kind_word(self.type)

    def coerce(self, value: Any, *, text: bool = False, owner: str = "") -> Any:
        """``value`` as this hyper-parameter's type; ConfigError naming the key when it does not fit.

        With ``text`` (the command line, a default) text is read for every type; from Python
        or a config file text is read only for lists and durations (their old forms, e.g.
        ``"1,3,9"`` and ``"9.5m"``): a number given as text there is a mistake.
        """
        if value is None and self.default is None or self.type is object:
            return value
        try:
            if isinstance(value, str) and not text and self.type in (bool, int, float):
                raise ValueError(value)
            out = coerce_to(value, self.type)
        except ValueError:
            where = f"{owner}: " if owner else ""
            raise ConfigError(
                f"{where}hyper-parameter {self.name}={value!r}: expected {self.accepts()} "
                f"(default {format_value(self)})."
            ) from None
        if self.choices is not None and out not in self.choices:
            where = f"{owner}: " if owner else ""
            raise ConfigError(f"{where}{self.name} must be one of {', '.join(map(str, self.choices))}; got {value!r}.")
        return out

    def fresh_default(self) -> Any:
        """The default (a copy, so no two models share a list)."""
        return copy.copy(self.default)


def format_value(hp: HyperParameter, value: Any = dataclasses.MISSING) -> str:
    """A value as a table shows it: lists as ``1,3,9``, durations as ``9.5m``."""
    value = hp.default if value is dataclasses.MISSING else value
    if value is None:
        return "none"
    if hp.type is Duration:
        return f"{value / 60:g}m" if value >= 60 else f"{value:g}s"
    if isinstance(value, (list, tuple)):
        return ",".join(map(str, value)) if value else "(none)"
    if isinstance(value, bool):
        return str(value).lower()
    return str(value)


def declared(params: Iterable[HyperParameter]) -> tuple[HyperParameter, ...]:
    """``params`` as a tuple; ValueError when a name comes twice."""
    params = tuple(params)
    names = [hp.name for hp in params]
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise ValueError(f"hyper-parameters declared twice: {', '.join(twice)}")
    return params


def with_defaults(params: Iterable[HyperParameter], **defaults: Any) -> tuple[HyperParameter, ...]:
    """``params`` with other defaults for some of them (by name; each must be among them)."""
    params = tuple(params)
    unknown = sorted(set(defaults) - {hp.name for hp in params})
    if unknown:
        raise ValueError(f"no such hyper-parameters to give a default: {', '.join(unknown)}")
    return tuple(dataclasses.replace(hp, default=defaults[hp.name]) if hp.name in defaults else hp for hp in params)


def by_name(params: Iterable[HyperParameter] | Mapping[str, Any]) -> dict[str, HyperParameter]:
    """Declarations by name, from declarations or from a ``defaults`` dict."""
    if isinstance(params, Mapping):
        return {k: v if isinstance(v, HyperParameter) else HyperParameter.like(k, v) for k, v in params.items()}
    return {hp.name: hp for hp in params}


def parse_hparams(items: list[str], declared: Any) -> dict[str, Any]:
    """``["lr_g=1e-4", "dilations=1,3,9"]`` -> typed values, each read as its declared type
    (:meth:`HyperParameter.coerce <synthmarket.hyperparameters.HyperParameter.coerce>`, through
    :func:`synthmarket.checks.coerce_to`: a list type reads ``"1,3,9"`` or ``"[1,3,9]"``, a
    duration ``"9.5m"``).

    ``declared`` is a generator class, its ``hyperparameters``, or a ``defaults`` dict (each
    value's type is then the type of its default, :func:`synthmarket.checks.coerce_like`).

    Raises
    ------
    ConfigError
        For an item that is not key=value, an unknown key or a value of the wrong type.
    """
    renamed = getattr(declared, "renamed", {})
    params = by_name(getattr(declared, "hyperparameters", declared))
    out: dict[str, Any] = {}
    for item in items:
        try:
            key, text = split_key_value(item)
        except ValueError:
            raise ConfigError(f"Hyper-parameter {item!r} is not key=value (e.g. -H lr_g=1e-4).") from None
        key = renamed.get(key, key) if key not in params else key  # an old name of a renamed one
        if key not in params:
            known = ", ".join(f"{k}={hp.default!r}" for k, hp in params.items()) or "none"
            raise ConfigError(f"Unknown hyper-parameter {key!r}. Known: {known}.")
        hp = params[key]
        try:
            out[key] = hp.coerce(text, text=True)
        except ConfigError:
            if hp.choices is not None:
                raise
            raise ConfigError(
                f"Hyper-parameter {key}={text!r}: expected {hp.accepts()} like {format_value(hp)}."
            ) from None
    return out
