"""Checks of the values a user passes in, shared by the API and the CLI (each raises ConfigError)."""

from __future__ import annotations

import ast
import numbers
import os
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
    return (f"{str(path)!r} is a symbolic link to {os.readlink(path)!r} that leads nowhere (a link loop, or its "
            f"target is gone); point it at a real file or directory.")


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


def coerce_like(value, default):
    """``value`` as the type of ``default``: the one rule for hyper-parameters and strategy
    parameters, from the command line (text) or from Python.

    Text becomes a bool (:data:`TRUE_WORDS`, :data:`FALSE_WORDS`), a whole number (``"1e3"``
    too), a number or text as the default is; with a default of another type (None, a list)
    it is read as a Python literal, else kept as text. Other values must have the default's
    type already (a whole number passes for a float). ValueError when the value does not fit.
    """
    kind = type(default)
    if isinstance(value, str) and kind is not str:
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
        try:
            return ast.literal_eval(text)
        except (ValueError, SyntaxError):
            return value
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


def type_word(default) -> str:
    """What a value must be, in words, to stand in for ``default``."""
    return TYPE_WORDS.get(type(default), type(default).__name__)
