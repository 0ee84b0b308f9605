"""Reading the dates of OHLCV data, and naming offending rows by date and file line.

Dates are read as ``YYYY-MM-DD`` and most other written forms; ``NN/NN/YYYY`` only when the
data say whether the day or the month comes first (or ``--date-format`` does). They must
all be present, unique and increasing.
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd

from .errors import DataError

_DAY_MONTH = re.compile(r"^\s*(\d{1,2})([/.\-])(\d{1,2})\2(\d{2}|\d{4})\b")


def date_index(
    values: pd.Series, where: str, line_offset: int | None, date_format: str | None = None
) -> pd.DatetimeIndex:
    """The dates ``values`` as a checked ``DatetimeIndex`` named ``date`` (nanoseconds, no time zone).

    ``line_offset`` is the file line of the first row (None for a DataFrame), for messages.
    """
    values = values.reset_index(drop=True)
    present = values.notna().to_numpy()
    parsed = values if pd.api.types.is_datetime64_any_dtype(values.dtype) else _parse(values, where, date_format)
    unreadable = present & parsed.isna().to_numpy()
    if unreadable.any():
        sample = values[unreadable].iloc[0]
        fix = (
            f"They do not match --date-format {date_format!r}."
            if date_format
            else "Write dates as YYYY-MM-DD (e.g. 2018-12-31), or give their format with --date-format (e.g. %d/%m/%Y)."
        )
        at = describe_positions(np.flatnonzero(unreadable), line_offset)
        raise DataError(f"{where}: could not read the date {sample!r} at {at}. {fix}")
    if not present.all():
        at = describe_positions(np.flatnonzero(~present), line_offset)
        raise DataError(f"{where}: {at} have no date. Fill in or remove those rows.")
    index = pd.DatetimeIndex(parsed, name="date")
    if index.tz is not None:
        index = index.tz_localize(None)
    try:
        index = index.as_unit("ns")
    except (pd.errors.OutOfBoundsDatetime, ValueError):
        raise DataError(f"{where}: dates run from {index[0]} to {index[-1]}, outside the years 1678..2261.") from None
    if index.has_duplicates:
        dup = index.duplicated(keep=False)
        raise DataError(
            f"{where}: duplicated dates {describe_rows(index[index.duplicated()], None, None)} (at "
            f"{describe_positions(np.flatnonzero(dup), line_offset)}). Keep one bar per date; synthmarket works with "
            f"daily bars."
        )
    if not index.is_monotonic_increasing:
        bad = np.flatnonzero(np.diff(index.asi8) < 0) + 1
        raise DataError(
            f"{where}: dates are not in increasing order: {describe_rows(index[bad], bad, line_offset)} "
            f"comes after a later date. Sort the file by date (oldest first)."
        )
    return index


def _parse(values: pd.Series, where: str, date_format: str | None = None) -> pd.Series:
    if date_format:
        try:
            return pd.to_datetime(values, format=date_format, errors="coerce")
        except (ValueError, TypeError) as exc:
            raise DataError(f"--date-format {date_format!r} is not a date format ({exc}); e.g. %d/%m/%Y.") from None
    day_month = _day_month_format(values, where)
    if day_month:
        return pd.to_datetime(values, format=day_month, errors="coerce")
    numeric = pd.to_numeric(values, errors="coerce")
    if numeric.notna().all() and len(values):
        ints = numeric.to_numpy(dtype=float)
        if np.all((ints >= 1_000_01_01) & (ints <= 2_999_12_31) & (ints == np.round(ints))):
            return pd.to_datetime(pd.Series(ints.astype(np.int64).astype(str)), format="%Y%m%d", errors="coerce")
        raise DataError(f"{where}: the dates are plain numbers ({values.iloc[0]}, ...). Write them as YYYY-MM-DD.")
    try:
        return pd.to_datetime(values, format="mixed", errors="coerce")
    except (ValueError, TypeError) as exc:  # mixed time zones, say
        try:
            return pd.to_datetime(values, format="mixed", errors="coerce", utc=True)
        except (ValueError, TypeError):
            raise DataError(f"{where}: could not read the dates ({exc}). Write them as YYYY-MM-DD.") from None


def _day_month_format(values: pd.Series, where: str) -> str | None:
    """The format of dates written ``NN/NN/YYYY`` (or with ``-``, ``.``), whose order of day and
    month the data must tell: a first or second number above 12, or the one order in which the
    dates increase. None when the dates are written otherwise."""
    matches = values.astype(str).str.extract(_DAY_MONTH)
    if not len(values) or matches[0].isna().any():
        return None
    first, second = matches[0].astype(int), matches[2].astype(int)
    separator, year = matches[1].iloc[0], "%Y" if len(matches[3].iloc[0]) == 4 else "%y"
    candidates = [
        f"{a}{separator}{b}{separator}{year}"
        for a, b, possible in (("%m", "%d", (first <= 12).all()), ("%d", "%m", (second <= 12).all()))
        if possible
    ]
    if len(candidates) == 2:
        increasing = [
            f for f in candidates if pd.to_datetime(values, format=f, errors="coerce").is_monotonic_increasing
        ]
        candidates = increasing if len(increasing) == 1 else candidates
    if len(candidates) == 2:
        raise DataError(
            f"{where}: the dates ({values.iloc[0]!r}, ...) can be read day-first or month-first, and the data do "
            f"not say which. Give their format with --date-format ({candidates[1]!r} for day-first, "
            f"{candidates[0]!r} for month-first), or write them as YYYY-MM-DD."
        )
    if not candidates:
        return None  # neither order fits every date: the general parser names the first it cannot read
    return candidates[0]


def describe_positions(pos: np.ndarray, line_offset: int | None, limit: int = 5) -> str:
    """``line 3, 7`` for files (header on line 1), ``row 0, 4`` for DataFrames."""
    unit = "line" if line_offset is not None else "row"
    numbers = [str(int(p) + (line_offset or 0)) for p in pos[:limit]]
    more = f" and {len(pos) - limit} more" if len(pos) > limit else ""
    return f"{unit}{'s' if len(pos) > 1 else ''} {', '.join(numbers)}{more}"


def describe_rows(
    index: pd.Index, pos: np.ndarray | None = None, line_offset: int | None = None, limit: int = 5
) -> str:
    """Dates of the offending bars, with their file lines when known."""
    shown = ", ".join(str(pd.Timestamp(d).date()) if not pd.isna(d) else "NaT" for d in index[:limit])
    more = f" and {len(index) - limit} more" if len(index) > limit else ""
    lines = f" ({describe_positions(pos, line_offset, limit)})" if pos is not None and line_offset is not None else ""
    return f"{shown}{more}{lines}"
