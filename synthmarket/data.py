"""Load and validate OHLCV data: CSV, Parquet, DataFrames, and bundled real samples.

Every loader returns the same shape: a DataFrame indexed by a sorted, unique
``DatetimeIndex`` (nanosecond unit, no time zone) named ``date`` with float columns
``open, high, low, close`` and, when the source has it, ``volume``, followed by any other
columns of the source (a regime label column, say). Anything else is a
:class:`~synthmarket.errors.DataError` that names the offending rows and says what to do.
The dates are read by :mod:`synthmarket.dates`; :mod:`synthmarket.gaps` finds the gaps in
them, and :mod:`synthmarket.data_summary` describes a set of bars.
"""

from __future__ import annotations

import difflib
import hashlib
import re
from functools import lru_cache
from pathlib import Path

import numpy as np
import pandas as pd

from .checks import dangling_link
from .dates import date_index, describe_rows
from .errors import DataError

PRICES = ("open", "high", "low", "close")
MISSING_POLICIES = ("error", "drop", "ffill")

_ALIASES = {
    "date": "date",
    "datetime": "date",
    "timestamp": "date",
    "day": "date",
    "open": "open",
    "high": "high",
    "low": "low",
    "close": "close",
    "adjclose": "adj_close",
    "adjustedclose": "adj_close",
    "volume": "volume",
    "vol": "volume",
    "openinterest": "openinterest",
}
_DROPPED = ("adj_close", "openinterest")  # read, used or checked, then not returned
_NOT_TABULAR = {".xlsx", ".xls", ".xlsm", ".ods", ".json", ".feather", ".h5", ".hdf5", ".pkl", ".pickle", ".zip"}
_COMPRESSED = {".gz", ".bz2", ".xz", ".zst"}
_EXPECTED = (
    "Expected a header row like Date,Open,High,Low,Close,Adj Close,Volume (any case; Adj Close and Volume optional)."
)


def _sp500() -> pd.DataFrame:
    from .arch_data import sp500

    return sp500.load()


def _nasdaq() -> pd.DataFrame:
    from .arch_data import nasdaq

    return nasdaq.load()


SAMPLES = {
    "sp500": ("S&P 500 index, daily, 1999-01-04..2018-12-31 (shipped with arch)", _sp500),
    "nasdaq": ("NASDAQ Composite index, daily, 1999-01-04..2018-12-31 (shipped with arch)", _nasdaq),
}


@lru_cache(maxsize=len(SAMPLES))
def _sample(name: str) -> pd.DataFrame:
    return load_ohlcv(SAMPLES[name][1](), where=f"bundled data set {name!r}")


def sample_data(name: str = "sp500") -> pd.DataFrame:
    """A bundled real data set by name (see :data:`SAMPLES`), validated.

    Parameters
    ----------
    name : str
        ``"sp500"`` (default) or ``"nasdaq"``, any case.

    Returns
    -------
    DataFrame
        A fresh copy of the bars; changing it does not change later calls.

    Examples
    --------
    >>> bars = sample_data("sp500")
    >>> len(bars)
    5031
    """
    key = str(name).strip().lower()
    if key not in SAMPLES:
        raise DataError(f"Unknown data set {name!r}.{_did_you_mean(key)} {_data_hint()}")
    return _sample(key).copy()


def _data_hint() -> str:
    return f"Bundled sets: {', '.join(SAMPLES)}; or give the path of a CSV or Parquet file of OHLCV bars."


def _did_you_mean(name: str) -> str:
    close = difflib.get_close_matches(name, list(SAMPLES), n=1, cutoff=0.6)
    return f" Did you mean {close[0]!r}?" if close else ""


def load_data(
    spec, *, start=None, end=None, missing: str = "error", adjust: bool = True, date_format: str | None = None
) -> pd.DataFrame:
    """What ``--data`` accepts: a bundled set's name, a file path or a DataFrame, cut to [start, end].

    Parameters
    ----------
    spec : str, Path or DataFrame
        ``"sp500"``, ``"nasdaq"``, a ``.csv``/``.parquet`` path, or a DataFrame.
    start, end : str or Timestamp, optional
        Inclusive date range (``YYYY-MM-DD``).
    missing, adjust, date_format
        As in :func:`load_ohlcv`.

    Raises
    ------
    DataError
        Unknown name, unreadable or inconsistent file, or a range holding fewer than 2 bars.
    """
    _check_policy(missing)
    if isinstance(spec, str) and spec.strip().lower() in SAMPLES:
        bars = sample_data(spec)
    else:
        if isinstance(spec, str) and _looks_like_a_name(spec):
            raise DataError(
                f"Unknown data set {spec!r}: no such bundled set and no such file.{_did_you_mean(spec.lower())} {_data_hint()}"
            )
        bars = load_ohlcv(spec, missing=missing, adjust=adjust, date_format=date_format)
    return select_dates(bars, start, end)


def _looks_like_a_name(spec: str) -> bool:
    path = Path(spec).expanduser()
    return not path.exists() and not path.suffix and "/" not in spec and "\\" not in spec


def select_dates(bars: pd.DataFrame, start=None, end=None) -> pd.DataFrame:
    """Bars between ``start`` and ``end`` (inclusive); fewer than 2 bars is an error."""
    try:
        lo = pd.Timestamp(start) if start is not None else None
        hi = pd.Timestamp(end) if end is not None else None
    except (ValueError, TypeError) as exc:
        raise DataError(
            f"Could not read the date range {start!r}..{end!r} ({exc}). Write dates as YYYY-MM-DD."
        ) from None
    if lo is not None and hi is not None and lo > hi:
        raise DataError(f"The start date {lo.date()} is after the end date {hi.date()}; swap them.")
    out = bars.loc[lo:hi]
    if len(out) < 2:
        first, last = bars.index[0].date(), bars.index[-1].date()
        raise DataError(
            f"The range {start or 'start'}..{end or 'end'} holds {len(out)} bar(s); the data run from "
            f"{first} to {last}. Choose a range inside it that holds at least 2 bars."
        )
    return out


def _check_policy(missing: str) -> None:
    if missing not in MISSING_POLICIES:
        raise DataError(f"Unknown missing-value policy {missing!r}; use one of {', '.join(MISSING_POLICIES)}.")


def load_ohlcv(
    source, *, missing: str = "error", adjust: bool = True, where: str | None = None, date_format: str | None = None
) -> pd.DataFrame:
    """Read OHLCV bars from a CSV or Parquet file or a DataFrame, and validate them.

    Parameters
    ----------
    source : str, Path or DataFrame
        A CSV file (Yahoo-style ``Date,Open,High,Low,Close,Adj Close,Volume`` or
        backtrader-style ``Date,Open,High,Low,Close,Volume,OpenInterest`` headers, any case,
        any of ``, ; tab |`` as separator), a Parquet file, or a DataFrame. The dates come from
        a ``date``/``datetime`` column, else from a date index. Volume is optional.
    missing : {"error", "drop", "ffill"}
        What to do with rows that miss a price or the volume: raise (default), drop those
        rows, or fill them: the close (and volume) carry the last value forward, a missing
        open takes the close, and a missing high or low takes the larger or smaller of open
        and close, so that the filled bar stays consistent.
    adjust : bool
        When an ``Adj Close`` column exists, scale open, high, low and close by
        ``adj_close / close`` so that splits and dividends do not show as returns.
    where : str, optional
        How messages name the source (default: the path, or "the DataFrame").
    date_format : str, optional
        The dates' ``strftime`` format, e.g. ``"%d/%m/%Y"``. Without it, dates such as
        ``02/01/2009`` are read day-first or month-first only when the data say which (a day
        above 12, or the one order in which the dates increase); otherwise they are refused.

    Returns
    -------
    DataFrame
        Indexed by ``date``; columns ``open, high, low, close`` and ``volume`` when present,
        then any other columns of the source unchanged. ``Adj Close`` and ``OpenInterest``
        are not returned. A volume column that is empty throughout is dropped.

    Raises
    ------
    DataError
        When the source cannot be read or the bars are inconsistent; the message names
        the rows and says what to do.
    """
    _check_policy(missing)
    if isinstance(source, pd.DataFrame):
        raw, line_offset = source.copy(), None
        where = where or "the DataFrame"
    else:
        path = Path(source).expanduser()
        raw, is_csv = _read_file(path)
        line_offset = 2 if is_csv else None  # header is line 1, data row 0 is line 2
        where = where or str(path)
    frame = _standardise(raw, where, line_offset, date_format)
    frame = _apply_missing(frame, missing, where)
    if adjust and "adj_close" in frame.columns:
        ratio = frame["adj_close"] / frame["close"]
        bad = ~np.isfinite(ratio.to_numpy()) | (ratio.to_numpy() <= 0)
        if bad.any():
            raise DataError(
                f"{where}: Adj Close must be positive and finite to adjust the prices; not so at "
                f"{describe_rows(frame.index[bad])}. Fix those rows, or pass adjust=False to use the raw prices."
            )
        for col in PRICES:
            frame[col] = frame[col] * ratio
    core = [c for c in (*PRICES, "volume") if c in frame.columns]
    extra = [c for c in frame.columns if c not in core and c not in _DROPPED]
    frame = frame[core + extra]
    _validate(frame, where)
    # Repair float rounding (from the adjustment, say) so that every bar is exactly ordered.
    o, c = frame["open"].to_numpy(), frame["close"].to_numpy()
    frame["high"] = np.maximum(frame["high"].to_numpy(), np.maximum(o, c))
    frame["low"] = np.minimum(frame["low"].to_numpy(), np.minimum(o, c))
    return frame


def _read_file(path: Path) -> tuple[pd.DataFrame, bool]:
    """The raw table of ``path`` and whether it was read as CSV."""
    if not path.exists():
        raise DataError(dangling_link(path) or f"No such file: {str(path)!r}. {_data_hint()}")
    if path.is_dir():
        raise DataError(f"{str(path)!r} is a directory, not a data file. Give the CSV or Parquet file inside it.")
    if path.stat().st_size == 0:
        raise DataError(f"{str(path)!r} is empty. It should hold OHLCV bars under a header row. {_EXPECTED}")
    with open(path, "rb") as f:
        magic = f.read(4)
    suffix = path.suffix.lower()
    if magic == b"PAR1" or suffix in (".parquet", ".pq"):
        try:
            return pd.read_parquet(path), False
        except Exception as exc:
            raise DataError(
                f"Could not read {str(path)!r} as Parquet ({type(exc).__name__}: {exc}). Is it a Parquet file?"
            ) from None
    if suffix in _NOT_TABULAR:
        raise DataError(f"{str(path)!r}: {suffix} files are not read. Save the bars as CSV or Parquet.")
    if path.stat().st_size <= 4096 and not path.read_bytes().strip():
        raise DataError(f"{str(path)!r} holds no data (only blank lines). {_EXPECTED}")
    try:
        if suffix in _COMPRESSED:
            return pd.read_csv(path, sep=None, engine="python"), True
        return pd.read_csv(path, sep=_separator(path)), True
    except pd.errors.EmptyDataError:
        raise DataError(f"{str(path)!r} holds no data (only blank lines). {_EXPECTED}") from None
    except Exception as exc:
        raise DataError(f"Could not read {str(path)!r} as CSV ({type(exc).__name__}: {exc}). {_EXPECTED}") from None


def _separator(path: Path) -> str:
    """The most frequent of ``, ; tab |`` in the header line (comma when none)."""
    with open(path, encoding="utf-8", errors="replace") as f:
        header = next((line for line in f if line.strip()), "")
    counts = {sep: header.count(sep) for sep in (",", ";", "\t", "|")}
    best = max(counts, key=counts.get)
    return best if counts[best] else ","


def _key(name) -> str:
    return re.sub(r"[^a-z]", "", str(name).lower())


def _standardise(
    raw: pd.DataFrame, where: str, line_offset: int | None, date_format: str | None = None
) -> pd.DataFrame:
    """Canonical column names, a date index and float prices; no checks of the values yet."""
    renamed = {c: _ALIASES[_key(c)] for c in raw.columns if _key(c) in _ALIASES}
    frame = raw.rename(columns=renamed)
    frame = frame.loc[:, ~frame.columns.duplicated()]
    if len(frame) == 0:
        raise DataError(f"{where} has a header but no rows of data. Add the bars below the header.")
    missing_cols = [c for c in PRICES if c not in frame.columns]
    if missing_cols:
        found = ", ".join(map(str, raw.columns)) or "none"
        raise DataError(
            f"{where} lacks column(s) {', '.join(c.capitalize() for c in missing_cols)} (found: {found}). {_EXPECTED}"
        )
    frame = _date_index(frame, where, line_offset, date_format)
    for col in [c for c in (*PRICES, "adj_close", "volume", "openinterest") if c in frame.columns]:
        original = frame[col]
        values = pd.to_numeric(original, errors="coerce")
        bad = (values.isna() & original.notna()).to_numpy()
        if bad.any():
            sample = original[bad].iloc[0]
            raise DataError(
                f"{where}: column {_label(col)} holds text that is not a number ({sample!r}) at "
                f"{describe_rows(frame.index[bad], np.flatnonzero(bad), line_offset)}. Fix those values (a "
                f"missing value may be left empty), or remove the rows."
            )
        frame[col] = values.astype(float)
    return frame


def _label(col: str) -> str:
    return {"adj_close": "'Adj Close'", "openinterest": "'OpenInterest'"}.get(col, repr(col.capitalize()))


def _date_index(
    frame: pd.DataFrame, where: str, line_offset: int | None, date_format: str | None = None
) -> pd.DataFrame:
    """Move the dates (a column or the index) to a checked ``DatetimeIndex``."""
    first = frame.columns[0] if len(frame.columns) else None
    time_columns = [c for c in frame.columns if _key(c) == "time"]
    if "date" in frame.columns:
        values = frame.pop("date")
    elif time_columns:  # "Time" names the dates only when no date column exists
        values = frame.pop(time_columns[0])
    elif isinstance(frame.index, pd.DatetimeIndex):
        values = frame.index.to_series()
    elif (
        first is not None
        and (str(first) == "" or str(first).startswith("Unnamed"))
        and not pd.api.types.is_numeric_dtype(frame[first].dtype)
    ):
        values = frame.pop(first)  # an index written by DataFrame.to_csv without a name
    elif not isinstance(frame.index, pd.RangeIndex):
        values = frame.index.to_series()
    else:
        found = ", ".join(map(str, frame.columns))
        raise DataError(f"{where} has no date column (found: {found}). Name the column of dates 'Date'. {_EXPECTED}")
    frame.index = date_index(values, where, line_offset, date_format)
    return frame


def _apply_missing(frame: pd.DataFrame, missing: str, where: str) -> pd.DataFrame:
    if "volume" in frame.columns and frame["volume"].isna().all():
        frame = frame.drop(columns="volume")  # an index without volume, written as empty cells
    cols = [c for c in (*PRICES, "adj_close", "volume") if c in frame.columns]
    holes = frame[cols].isna().any(axis=1).to_numpy()
    if not holes.any():
        return frame
    if missing == "drop":
        return frame[~holes]
    if missing == "ffill":
        return _fill(frame, where)
    empty = [c for c in cols if frame[c].isna().any()]
    raise DataError(
        f"{where}: {int(holes.sum())} row(s) miss a value (in {', '.join(map(_label, empty))}), at "
        f"{describe_rows(frame.index[holes])}. Fix the file, or choose what to do with them: missing='drop' "
        f"or missing='ffill' (CLI: --missing drop|ffill)."
    )


def _fill(frame: pd.DataFrame, where: str) -> pd.DataFrame:
    """Fill holes so that each filled bar stays consistent (see :func:`load_ohlcv`)."""
    out = frame.copy()
    if "adj_close" in out.columns:
        ratio = (out["adj_close"] / out["close"]).ffill()
    close = out["close"].ffill()
    opened = out["open"].fillna(close)
    out["high"] = out["high"].fillna(np.maximum(opened, close))
    out["low"] = out["low"].fillna(np.minimum(opened, close))
    out["open"], out["close"] = opened, close
    if "adj_close" in out.columns:
        out["adj_close"] = out["adj_close"].fillna(close * ratio)
    if "volume" in out.columns:
        out["volume"] = out["volume"].ffill()
    cols = [c for c in (*PRICES, "adj_close", "volume") if c in out.columns]
    left = out[cols].isna().any(axis=1).to_numpy()
    if left.any():
        raise DataError(
            f"{where}: the first row(s) miss values that have nothing before them to carry forward, at "
            f"{describe_rows(out.index[left])}. Use missing='drop' (CLI: --missing drop), or start the data later."
        )
    return out


def _validate(frame: pd.DataFrame, where: str) -> None:
    idx = frame.index
    if len(frame) < 2:
        raise DataError(f"{where} holds {len(frame)} bar(s) after removing incomplete rows; at least 2 are needed.")
    prices = frame[list(PRICES)].to_numpy()
    bad = ~np.isfinite(prices).all(axis=1) | (prices <= 0).any(axis=1)
    if bad.any():
        raise DataError(
            f"{where}: prices must be positive and finite; not so at {describe_rows(idx[bad])}. Fix or remove those rows."
        )
    o, h, l, c = prices.T
    tol = 1e-9 * c
    checks = [
        (h < l, "high is below low"),
        (h < np.maximum(o, c) - tol, "high is below open or close"),
        (l > np.minimum(o, c) + tol, "low is above open or close"),
    ]
    for mask, what in checks:
        if mask.any():
            raise DataError(
                f"{where}: {what} at {describe_rows(idx[mask])}. Check that the columns are in the order the header "
                f"says, and fix those rows."
            )
    if "volume" in frame.columns:
        v = frame["volume"].to_numpy()
        bad = ~np.isfinite(v) | (v < 0)
        if bad.any():
            raise DataError(
                f"{where}: volume must be finite and non-negative; not so at {describe_rows(idx[bad])}. Fix those rows."
            )


def fingerprint(bars: pd.DataFrame) -> str:
    """A short SHA-256 of the bars' dates and values, recorded in model directories."""
    h = hashlib.sha256()
    h.update(pd.DatetimeIndex(bars.index).as_unit("ns").asi8.tobytes())
    core = [c for c in (*PRICES, "volume") if c in bars.columns]
    h.update(np.ascontiguousarray(bars[core].to_numpy(dtype=float)).tobytes())
    h.update(",".join(core).encode())
    return h.hexdigest()[:16]
