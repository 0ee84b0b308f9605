"""The one ``json.dumps(default=...)`` of every JSON file synthmarket writes."""

from __future__ import annotations

import datetime as _dt
import inspect
from pathlib import Path
from typing import Any


def json_default(obj: Any) -> Any:
    """What JSON has no type for: NumPy scalars and arrays and torch tensors become numbers and
    lists, paths, dates and Timestamps their text, a class or function its ``module:name``
    (a strategy parameter may be an indicator class).

    Anything else raises TypeError: a saved file holds data, never a ``repr``.
    """
    if isinstance(obj, (Path, _dt.date)):  # pandas' Timestamp is a datetime, so a date
        return str(obj)
    if isinstance(obj, type) or inspect.isroutine(obj):
        return f"{obj.__module__}:{obj.__qualname__}"
    if hasattr(obj, "tolist"):
        return obj.tolist()
    raise TypeError(f"{type(obj).__name__} {obj!r} is not JSON serialisable")
