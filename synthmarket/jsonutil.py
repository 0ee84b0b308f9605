"""The one ``json.dumps(default=...)`` of every JSON file synthmarket writes."""

from __future__ import annotations

import datetime as _dt
from pathlib import Path
from typing import Any


def json_default(obj: Any) -> Any:
    """What JSON has no type for: NumPy scalars and arrays and torch tensors become numbers and
    lists, paths, dates and Timestamps their text.

    Anything else raises TypeError: a saved file holds data, never a ``repr``.
    """
    if isinstance(obj, (Path, _dt.date)):  # pandas' Timestamp is a datetime, so a date
        return str(obj)
    if hasattr(obj, "tolist"):
        return obj.tolist()
    raise TypeError(f"{type(obj).__name__} {obj!r} is not JSON serialisable")
