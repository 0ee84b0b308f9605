"""Load and validate OHLCV data: CSV, Parquet, DataFrames, and bundled real samples.

Every loader returns the same shape: a DataFrame indexed by a sorted, unique
``DatetimeIndex`` named ``date`` with float columns ``open, high, low, close`` and, when the
source has it, ``volume``. Anything else is a :class:`~synthmarket.errors.DataError` that
names the offending rows and says what to do.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

import numpy as np
import pandas as pd

from .errors import DataError

PRICES = ("open", "high", "low", "close")
MISSING_POLICIES = ("error", "drop", "ffill")

_ALIASES = {
    "date": "date", "datetime": "date", "time": "date", "timestamp": "date", "day": "date",
    "open": "open", "high": "high", "low": "low", "close": "close",
    "adjclose": "adj_close", "adjustedclose": "adj_close",
    "volume": "volume", "vol": "volume",
}


def _sp500() -> pd.DataFrame:
    from arch.data import sp500

    return sp500.load()


def _nasdaq() -> pd.DataFrame:
    from arch.data import nasdaq

    return nasdaq.load()


SAMPLES = {
    "sp500": ("S&P 500 index, daily, 1999-01-04..2018-12-31 (shipped with arch)", _sp500),
    "nasdaq": ("NASDAQ Composite index, daily, 1999-01-04..2018-12-31 (shipped with arch)", _nasdaq),
}


def sample_data(name: str = "sp500") -> pd.DataFrame:
    """A bundled real data set by name (see :data:`SAMPLES`), validated.

    Examples
    --------
    >>> bars = sample_data("sp500")
    >>> len(bars)
    5031
    """
    if name not in SAMPLES:
        raise DataError(f"Unknown data set {name!r}. Bundled sets: {', '.join(SAMPLES)}; or give a CSV/Parquet path.")
    return load_ohlcv(SAMPLES[name][1]())


def load_data(spec, *, start=None, end=None, missing: str = "error", adjust: bool = True) -> pd.DataFrame:
    """What ``--data`` accepts: a bundled set's name, a file path or a DataFrame, cut to [start, end]."""
    if isinstance(spec, str) and spec in SAMPLES:
        bars = sample_data(spec)
    else:
        if isinstance(spec, str) and not Path(spec).suffix and not Path(spec).exists():
            raise DataError(
                f"Unknown data set {spec!r}: not a bundled set ({', '.join(SAMPLES)}) and no such file."
            )
        bars = load_ohlcv(spec, missing=missing, adjust=adjust)
    return select_dates(bars, start, end)


def select_dates(bars: pd.DataFrame, start=None, end=None) -> pd.DataFrame:
    """Bars between ``start`` and ``end`` (inclusive); an empty selection is an error."""
    try:
        lo = pd.Timestamp(start) if start is not None else None
        hi = pd.Timestamp(end) if end is not None else None
    except (ValueError, TypeError) as exc:
        raise DataError(f"Could not read the date range {start!r}..{end!r}: {exc}. Use YYYY-MM-DD.") from None
    out = bars.loc[lo:hi]
    if len(out) < 2:
        first, last = bars.index[0].date(), bars.index[-1].date()
        raise DataError(
            f"The range {start or 'start'}..{end or 'end'} holds {len(out)} bar(s); the data run from "
            f"{first} to {last}. Choose a range inside it."
        )
    return out


def load_ohlcv(source, *, missing: str = "error", adjust: bool = True) -> pd.DataFrame:
    """Read OHLCV bars from a CSV or Parquet file or a DataFrame, and validate them.

    Parameters
    ----------
    source : str, Path or DataFrame
        A ``.csv`` (Yahoo- or backtrader-style headers, any case) or ``.parquet`` file, or a
        DataFrame. The dates come from a ``date``/``datetime`` column or the index.
    missing : {"error", "drop", "ffill"}
        What to do with missing values: raise (default), drop those rows, or carry the last
        valid value forward.
    adjust : bool
        When an ``Adj Close`` column exists, scale open, high, low and close by
        ``adj_close / close`` so that splits and dividends do not show as returns.

    Returns
    -------
    DataFrame
        Indexed by ``date``; columns ``open, high, low, close`` and ``volume`` when present,
        then any other columns of the source unchanged (a regime label column, say).

    Raises
    ------
    DataError
        When the source cannot be read or the bars are inconsistent.
    """
    if missing not in MISSING_POLICIES:
        raise DataError(f"Unknown missing-value policy {missing!r}; use one of {', '.join(MISSING_POLICIES)}.")
    where = "the DataFrame"
    if isinstance(source, pd.DataFrame):
        raw = source.copy()
    else:
        path = Path(source).expanduser()
        where = str(path)
        raw = _read_file(path)
    frame = _standardise(raw, where)
    frame = _apply_missing(frame, missing, where)
    if adjust and "adj_close" in frame.columns:
        ratio = frame["adj_close"] / frame["close"]
        for col in PRICES:
            frame[col] = frame[col] * ratio
    core = [c for c in (*PRICES, "volume") if c in frame.columns]
    extra = [c for c in frame.columns if c not in (*core, "adj_close")]  # e.g. a regime label column
    frame = frame[core + extra]
    _validate(frame, where)
    return frame


def _read_file(path: Path) -> pd.DataFrame:
    if not path.exists():
        raise DataError(f"No such file: {str(path)!r}. Give a CSV or Parquet file, or a bundled set ({', '.join(SAMPLES)}).")
    if path.is_dir():
        raise DataError(f"{str(path)!r} is a directory, not a data file. Give the CSV or Parquet file itself.")
    if path.stat().st_size == 0:
        raise DataError(f"{str(path)!r} is empty. It should hold OHLCV bars with a header row.")
    suffix = path.suffix.lower()
    try:
        if suffix in (".parquet", ".pq"):
            return pd.read_parquet(path)
        return pd.read_csv(path, sep=None, engine="python")
    except Exception as exc:
        kind = "Parquet" if suffix in (".parquet", ".pq") else "CSV"
        raise DataError(f"Could not read {str(path)!r} as {kind}: {exc}") from None


def _key(name) -> str:
    return re.sub(r"[^a-z]", "", str(name).lower())


def _standardise(raw: pd.DataFrame, where: str) -> pd.DataFrame:
    renamed = {c: _ALIASES[_key(c)] for c in raw.columns if _key(c) in _ALIASES}
    frame = raw.rename(columns=renamed)
    frame = frame.loc[:, ~frame.columns.duplicated()]
    if "date" in frame.columns:
        dates = frame.pop("date")
    else:
        dates = frame.index.to_series()
    if len(frame) == 0:
        raise DataError(f"{where} has a header but no rows of data.")
    missing_cols = [c for c in PRICES if c not in frame.columns]
    if missing_cols:
        raise DataError(
            f"{where} lacks column(s) {', '.join(missing_cols)}. Found: {', '.join(map(str, raw.columns))}. "
            f"Expected Date, Open, High, Low, Close and optionally Adj Close and Volume (any case)."
        )
    try:
        index = pd.DatetimeIndex(pd.to_datetime(dates.to_numpy(), format="mixed"), name="date")
    except (ValueError, TypeError) as exc:
        raise DataError(f"{where}: could not read the dates ({exc}). Use a 'Date' column like 2018-12-31.") from None
    if index.tz is not None:
        index = index.tz_convert(None)
    if index.isna().any():
        rows = list(np.flatnonzero(index.isna())[:5])
        raise DataError(f"{where}: rows {rows} have no date. Fill or remove them.")
    frame.index = index
    for col in [c for c in (*PRICES, "adj_close", "volume") if c in frame.columns]:
        values = pd.to_numeric(frame[col], errors="coerce")
        bad = values.isna() & frame[col].notna()
        if bad.any():
            rows = _rows(frame.index[bad.to_numpy()])
            sample = frame[col][bad].iloc[0]
            raise DataError(f"{where}: column {col!r} holds text that is not a number ({sample!r}) at {rows}. Fix or remove those rows.")
        frame[col] = values.astype(float)
    return frame


def _apply_missing(frame: pd.DataFrame, missing: str, where: str) -> pd.DataFrame:
    cols = [c for c in (*PRICES, "adj_close", "volume") if c in frame.columns]
    holes = frame[cols].isna().any(axis=1)
    if "volume" in cols and frame["volume"].isna().all():
        frame = frame.drop(columns="volume")
        return _apply_missing(frame, missing, where)
    if not holes.any():
        return frame
    if missing == "drop":
        return frame[~holes]
    if missing == "ffill":
        filled = frame.ffill()
        if filled[cols].isna().any().any():
            raise DataError(f"{where}: the first rows have missing values that cannot be forward-filled; use missing='drop'.")
        return filled
    raise DataError(
        f"{where}: {int(holes.sum())} row(s) have missing values, at {_rows(frame.index[holes.to_numpy()])}. "
        f"Fix the file, or choose a policy: missing='drop' or 'ffill' (CLI: --missing drop|ffill)."
    )


def _rows(index: pd.Index, limit: int = 5) -> str:
    shown = ", ".join(str(pd.Timestamp(d).date()) if not pd.isna(d) else "NaT" for d in index[:limit])
    more = f" and {len(index) - limit} more" if len(index) > limit else ""
    return f"{shown}{more}"


def _validate(frame: pd.DataFrame, where: str) -> None:
    idx = frame.index
    if idx.has_duplicates:
        raise DataError(f"{where}: duplicated dates {_rows(idx[idx.duplicated()])}. Keep one bar per date.")
    if not idx.is_monotonic_increasing:
        bad = idx[1:][np.diff(idx.asi8) < 0]
        raise DataError(f"{where}: dates are not in increasing order (e.g. at {_rows(bad)}). Sort the file by date.")
    prices = frame[list(PRICES)].to_numpy()
    bad = ~np.isfinite(prices).all(axis=1) | (prices <= 0).any(axis=1)
    if bad.any():
        raise DataError(f"{where}: prices must be positive and finite; not so at {_rows(idx[bad])}.")
    o, h, l, c = prices.T
    tol = 1e-9 * c
    checks = [
        (h < np.maximum(o, c) - tol, "high is below open or close"),
        (l > np.minimum(o, c) + tol, "low is above open or close"),
        (h < l, "high is below low"),
    ]
    for mask, what in checks:
        if mask.any():
            raise DataError(f"{where}: {what} at {_rows(idx[mask])}. Check the column order and those rows.")
    if "volume" in frame.columns:
        v = frame["volume"].to_numpy()
        if (~np.isfinite(v) | (v < 0)).any():
            raise DataError(f"{where}: volume must be finite and non-negative; not so at {_rows(idx[~np.isfinite(v) | (v < 0)])}.")
    if len(frame) < 2:
        raise DataError(f"{where}: holds {len(frame)} bar; at least 2 are needed.")


def fingerprint(bars: pd.DataFrame) -> str:
    """A short SHA-256 of the bars' dates and values, recorded in model directories."""
    h = hashlib.sha256()
    h.update(bars.index.asi8.tobytes())
    core = [c for c in (*PRICES, "volume") if c in bars.columns]
    h.update(np.ascontiguousarray(bars[core].to_numpy(dtype=float)).tobytes())
    h.update(",".join(core).encode())
    return h.hexdigest()[:16]
