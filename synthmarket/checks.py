"""Checks of the values a user passes in, shared by the API and the CLI (each raises ConfigError)."""

from __future__ import annotations

import ast
import math
import numbers
import os
import re
import typing
from pathlib import Path

from .errors import ConfigError

#: The seeds that numpy's SeedSequence and torch.manual_seed both take.
MAX_SEED = 2**63 - 1


def check_seed(seed, option: str = "seed") -> int | None:
    """``seed`` as an int in 0..MAX_SEED (None passes through: fresh randomness)."""
    if seed is None:
        return None
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral) or not 0 <= seed <= MAX_SEED:
        raise ConfigError(f"{option} must be a whole number from 0 to {MAX_SEED:,} (2**63 - 1); got {seed!r}.")
    return int(seed)


def dangling_link(path) -> str | None:
    """Why a path that does not exist cannot be opened, when it is a symbolic link (else None)."""
    path = Path(path)
    if not path.is_symlink():
        return None
    return (
        f"{str(path)!r} is a symbolic link to {os.readlink(path)!r} that leads nowhere (a link loop, or its "
        f"target is gone); point it at a real file or directory."
    )


TRUE_WORDS = frozenset({"true", "yes", "y", "on", "1"})
FALSE_WORDS = frozenset({"false", "no", "n", "off", "0"})
#: How messages name the type a value must have: the type of its default.
TYPE_WORDS = {bool: "true or false", int: "a whole number", float: "a number", str: "text"}


def split_key_value(item: str) -> tuple[str, str]:
    """``"fast=10"`` -> ``("fast", "10")``; ValueError when there is no ``=`` or no key."""
    key, sep, value = item.partition("=")
    if not sep or not key.strip():
        raise ValueError(item)
    return key.strip(), value.strip()


class Duration:
    """The type of a hyper-parameter that is a length of time: seconds (a float), read from
    seconds or text such as ``"90s"``, ``"9.5m"`` or ``"1.5h"`` (:func:`coerce_to`)."""


_DURATION = re.compile(r"^\s*(\d+(?:\.\d*)?|\.\d+)\s*(s|sec|secs|m|min|mins|h|hr|hrs|)\s*$", re.IGNORECASE)
_UNIT_SECONDS = {"": 1, "s": 1, "sec": 1, "secs": 1, "m": 60, "min": 60, "mins": 60, "h": 3600, "hr": 3600, "hrs": 3600}


def kind_of(default):
    """The type :func:`coerce_to` reads values as, to stand in for ``default``: its type, and for
    a list (or tuple) a list of its first item's type (``list`` when it is empty)."""
    if isinstance(default, (list, tuple)):
        return list[type(default[0])] if default else list
    return type(default)


def _is_list_kind(kind) -> bool:
    return kind is list or typing.get_origin(kind) is list


def coerce_to(value, kind):
    """``value`` as a ``kind``: the one rule for hyper-parameters and strategy parameters, from
    the command line (text), config files or Python.

    ``kind`` is bool, int, float, str, a list type (``list[int]``, ``list[float]``, ``list``),
    :class:`Duration`, or any other type (text is then read as a Python literal, else kept).
    Text becomes a bool (:data:`TRUE_WORDS`, :data:`FALSE_WORDS`), a whole number (``"1e3"``
    too), a number, text (a quoted Python string loses its quotes: ``"'x'"`` is ``x``), a list
    (``"1,3,9"`` or ``"[1,3,9]"``; ``""`` is the empty list) or a duration in seconds (``"90s"``,
    ``"9.5m"``, a plain number). Other values must have the type already (a whole number passes
    for a float; a tuple for a list). ValueError when the value does not fit.
    """
    if _is_list_kind(kind):
        args = typing.get_args(kind)
        item_kind = args[0] if args else None
        if isinstance(value, str):
            text = value.strip()
            if text[:1] + text[-1:] in ("[]", "()"):
                text = text[1:-1]
            items = [part.strip() for part in text.split(",") if part.strip()]
        elif isinstance(value, (list, tuple)):
            items = list(value)
        else:
            raise ValueError(value)
        if item_kind is None:
            return [literal(v) if isinstance(v, str) else v for v in items]
        return [coerce_to(v, item_kind) for v in items]
    if kind is Duration:
        if isinstance(value, numbers.Real) and not isinstance(value, bool):
            seconds = float(value)
        elif isinstance(value, str) and (match := _DURATION.match(value)):
            seconds = float(match.group(1)) * _UNIT_SECONDS[match.group(2).lower()]
        else:
            raise ValueError(value)
        if not math.isfinite(seconds) or seconds <= 0:
            raise ValueError(value)
        return seconds
    if isinstance(value, str) and kind is str:
        quoted = literal(value)  # -p name='x' is the text x
        return quoted if isinstance(quoted, str) else value
    if isinstance(value, str):
        text = value.strip()
        if kind is bool:
            if text.lower() in TRUE_WORDS | FALSE_WORDS:
                return text.lower() in TRUE_WORDS
            raise ValueError(value)
        if kind is int:
            number = float(text)
            if not number.is_integer():
                raise ValueError(value)
            return int(number)
        if kind is float:
            return float(text)
        return literal(value)
    whole = isinstance(value, numbers.Integral) and not isinstance(value, bool)
    if kind is bool and not isinstance(value, bool):
        raise ValueError(value)
    if kind is int and not whole:
        raise ValueError(value)
    if kind is float:
        if not (whole or isinstance(value, numbers.Real)) or isinstance(value, bool):
            raise ValueError(value)
        return float(value)
    if kind is str and not isinstance(value, str):
        raise ValueError(value)
    return int(value) if kind is int else value


def literal(text: str):
    """``text`` read as a Python literal (``"(1, 2)"``, ``"'x'"``, ``"None"``), else ``text`` itself."""
    try:
        return ast.literal_eval(text.strip())
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        return text


def coerce_like(value, default):
    """``value`` as the type of ``default`` (:func:`kind_of`, :func:`coerce_to`): the one rule
    for hyper-parameters and strategy parameters, from the command line (text) or from Python.

    Text becomes a bool (:data:`TRUE_WORDS`, :data:`FALSE_WORDS`), a whole number (``"1e3"``
    too), a number or text as the default is; with a list default ``"1,3,9"`` or ``"[1,3,9]"``
    becomes a list of the type of the default's items; with a default of another type (None)
    it is read as a Python literal, else kept as text. Other values must have the default's
    type already (a whole number passes for a float). ValueError when the value does not fit.
    """
    return coerce_to(value, kind_of(default))


def type_name(kind) -> str:
    """A short name of a :func:`coerce_to` type, for tables: ``int``, ``list[int]``, ``duration``."""
    if kind is Duration:
        return "duration"
    if _is_list_kind(kind):
        args = typing.get_args(kind)
        return f"list[{args[0].__name__}]" if args else "list"
    return getattr(kind, "__name__", str(kind))


def kind_word(kind) -> str:
    """What a value of a :func:`coerce_to` type must be, in words."""
    if kind is Duration:
        return "a duration like 90s, 9.5m or 1h"
    if _is_list_kind(kind):
        args = typing.get_args(kind)
        item = args[0] if args else None
        plural = {int: "whole numbers", float: "numbers", str: "texts", bool: "true/false values"}.get(item, "values")
        return f"a comma-separated list of {plural} like 1,3,9"
    return TYPE_WORDS.get(kind) or with_article(getattr(kind, "__name__", str(kind)))


def with_article(word: str) -> str:
    """``"int"`` -> ``"an int"``, ``"class"`` -> ``"a class"``."""
    return f"{'an' if word[:1].lower() in 'aeiou' else 'a'} {word}"


def type_word(default) -> str:
    """What a value must be, in words, to stand in for ``default``."""
    return kind_word(kind_of(default))
