"""Synthetic (or real) OHLCV paths as backtrader data feeds.

:class:`PathData` is a lean, array-backed ``backtrader`` feed. It behaves like
``bt.feeds.PandasData`` on the same bars (same dates, prices and volume; indicators,
analyzers, ``resampledata``, ``replaydata`` and several feeds in one Cerebro all work), but
reads plain Python lists instead of calling ``DataFrame.iloc`` once per cell, and fills
backtrader's line buffers in one go when Cerebro preloads, so a 252-bar path loads in
a fraction of the time (see ``docs/benchmarks-backtest.md``).

Examples
--------
>>> import backtrader as bt
>>> from synthmarket.feeds import PathData
>>> cerebro = bt.Cerebro()
>>> cerebro.adddata(PathData(dataname=paths.path(0)), name="path-0")   # doctest: +SKIP
>>> cerebro.adddata(path_feed(paths, 1))                              # doctest: +SKIP
"""

from __future__ import annotations

import datetime as _dt
import math
import sys
from dataclasses import dataclass
from typing import TYPE_CHECKING

import backtrader as bt
import numpy as np

from .errors import DataError
from .fields import FIELDS

if TYPE_CHECKING:
    import pandas as pd

    from .paths import Paths

# pandas is imported only where dates or a DataFrame come in: a Monte-Carlo worker gets its
# bars as FeedArrays and never loads it.

#: backtrader's date number of 1970-01-01 (``bt.date2num`` counts days from 0001-01-01, plus one).
_EPOCH_ORDINAL = float(_dt.date(1970, 1, 1).toordinal())
_NS_PER_DAY = 86_400_000_000_000


def date_numbers(dates) -> np.ndarray:
    """backtrader's float date numbers (as ``bt.date2num``) of naive timestamps.

    Parameters
    ----------
    dates : array-like of datetimes
        A ``DatetimeIndex``, ``datetime64`` array or list of timestamps (no time zone).

    Returns
    -------
    np.ndarray
        float64 days since 0001-01-01 (plus one), the value backtrader stores in a
        feed's ``datetime`` line.
    """
    import pandas as pd

    index = pd.DatetimeIndex(dates)
    if index.tz is not None:
        index = index.tz_convert(None)
    ns = index.asi8
    days, rest = np.divmod(ns, _NS_PER_DAY)
    return _EPOCH_ORDINAL + days.astype(np.float64) + rest.astype(np.float64) / _NS_PER_DAY


@dataclass(frozen=True)
class FeedArrays:
    """The bars of one path, ready for :class:`PathData`.

    Attributes
    ----------
    dates : np.ndarray
        float64 backtrader date numbers (see :func:`date_numbers`), increasing.
    open, high, low, close, volume : np.ndarray
        float64 arrays of the same length.
    """

    dates: np.ndarray
    open: np.ndarray
    high: np.ndarray
    low: np.ndarray
    close: np.ndarray
    volume: np.ndarray

    def __len__(self) -> int:
        return len(self.dates)

    @classmethod
    def from_frame(cls, frame: pd.DataFrame) -> FeedArrays:
        """Arrays from an OHLCV DataFrame indexed by date (``volume`` optional: zeros)."""
        import pandas as pd

        lower = {str(c).lower(): c for c in frame.columns}
        missing = [c for c in ("open", "high", "low", "close") if c not in lower]
        if missing:
            raise DataError(f"A feed needs columns open, high, low, close; missing {', '.join(missing)}.")
        if not isinstance(frame.index, pd.DatetimeIndex):
            raise DataError("A feed's DataFrame must be indexed by date (a DatetimeIndex).")
        n = len(frame)
        columns = {k: frame[lower[k]].to_numpy(dtype=np.float64) if k in lower else np.zeros(n) for k in FIELDS}
        return cls(dates=date_numbers(frame.index), **columns)


def feed_arrays(bars: FeedArrays | pd.DataFrame, what: str = "bars") -> FeedArrays:
    """``bars`` as :class:`FeedArrays`: as they are, or from an OHLCV DataFrame indexed by date."""
    if isinstance(bars, FeedArrays):
        return bars
    pandas = sys.modules.get("pandas")  # not loaded: bars cannot be a DataFrame
    if pandas is not None and isinstance(bars, pandas.DataFrame):
        return FeedArrays.from_frame(bars)
    raise DataError(f"{what} must be a FeedArrays or an OHLCV DataFrame indexed by date; got {type(bars).__name__}.")


class PathData(bt.feed.DataBase):
    """A backtrader data feed over one OHLCV path held in arrays.

    Parameters
    ----------
    dataname : FeedArrays or pandas.DataFrame
        The bars: a :class:`FeedArrays`, or a DataFrame indexed by date with columns
        ``open, high, low, close`` and optionally ``volume`` (any case; absent volume is 0).
    name, timeframe, compression, fromdate, todate, ... :
        The usual ``bt.feed.DataBase`` parameters (daily bars by default).

    Notes
    -----
    ``openinterest`` is always 0. Dates are taken as they are (daily bars at midnight),
    exactly as ``bt.feeds.PandasData`` takes them.
    """

    def __init__(self) -> None:
        source = feed_arrays(self.p.dataname, "PathData's dataname")
        self._arrays = source
        # Python lists: indexing them is several times faster than indexing NumPy arrays.
        self._columns = [
            (self.lines.datetime, source.dates.tolist()),
            (self.lines.open, source.open.tolist()),
            (self.lines.high, source.high.tolist()),
            (self.lines.low, source.low.tolist()),
            (self.lines.close, source.close.tolist()),
            (self.lines.volume, source.volume.tolist()),
            (self.lines.openinterest, [0.0] * len(source)),
        ]
        self._idx = -1

    def start(self) -> None:
        super().start()
        self._idx = -1

    def _load(self) -> bool:
        self._idx += 1
        i = self._idx
        if i >= len(self._arrays):
            return False
        for line, values in self._columns:
            line[0] = values[i]
        return True

    def preload(self) -> None:
        """Fill every line in one step when nothing needs to see the bars one by one."""
        plain = (
            not self._filters
            and not self._barstack
            and not self._barstash
            and not self._tzinput
            and self.fromdate == -math.inf
            and self.todate == math.inf
            and self._idx == -1
            and all(line.mode == line.UnBounded and not line.bindings and len(line.array) == 0 for line in self.lines)
        )
        if not plain:
            super().preload()
            return
        n = len(self._arrays)
        for line, values in self._columns:
            line.array.extend(values)
            line.idx += n
            line.lencount += n
        self._idx = n
        self._last()
        self.home()


def path_feed(paths: Paths, i: int, **kwargs) -> PathData:
    """A :class:`PathData` for path ``i`` of a :class:`~synthmarket.paths.Paths` set.

    Keyword arguments go to :class:`PathData` (``name``, ``timeframe``, ...).
    """
    if not 0 <= i < paths.n_paths:
        raise DataError(f"Path {i} does not exist; the set has {paths.n_paths} paths (0..{paths.n_paths - 1}).")
    arrays = FeedArrays(
        dates=date_numbers(paths.dates),
        **{k: np.asarray(getattr(paths, k)[i], dtype=np.float64) for k in FIELDS},
    )
    kwargs.setdefault("name", f"path-{i}")
    return PathData(dataname=arrays, **kwargs)
