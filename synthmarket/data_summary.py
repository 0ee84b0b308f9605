"""What ``synthmarket data info`` shows about a set of bars: dates, calendar gaps, volume, returns."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from .data import PRICES
from .gaps import missing_runs

TRADING_DAYS_PER_YEAR = 252


@dataclass(frozen=True)
class DataSummary:
    """What ``synthmarket data info`` shows about a set of bars.

    Attributes
    ----------
    start, end : Timestamp
        First and last bar.
    n_bars : int
        Number of bars.
    n_business_days : int
        Business days (Monday to Friday) from ``start`` to ``end``.
    missing_business_days : int
        Business days in that span with no bar (exchange holidays, outages, gaps in the file).
    longest_gap : tuple of (int, Timestamp, Timestamp) or None
        The longest run of consecutive business days without a bar: its length, first and
        last day.
    has_volume : bool
        Whether the bars have a volume column.
    extra_columns : tuple of str
        Columns besides OHLCV (regime labels, say).
    returns : dict of str to float
        Daily close-to-close log returns: ``mean``, ``std``, ``annualised_vol``
        (``std * sqrt(252)``), ``skew``, ``excess_kurtosis``, ``min``, ``max``.
    """

    start: pd.Timestamp
    end: pd.Timestamp
    n_bars: int
    n_business_days: int
    missing_business_days: int
    longest_gap: tuple[int, pd.Timestamp, pd.Timestamp] | None
    has_volume: bool
    extra_columns: tuple[str, ...]
    returns: dict[str, float]


def summarize(bars: pd.DataFrame) -> DataSummary:
    """Date range, calendar gaps, volume and log-return statistics of validated bars.

    Parameters
    ----------
    bars : DataFrame
        Bars as :func:`load_ohlcv` returns them (at least 2).

    Returns
    -------
    DataSummary
    """
    index = pd.DatetimeIndex(bars.index)
    start, end = index[0], index[-1]
    calendar = pd.bdate_range(start.normalize(), end.normalize())
    absent = ~calendar.isin(index.normalize())
    runs = missing_runs(index)
    gap = max(runs, key=lambda g: g.days, default=None)
    longest = None if gap is None else (gap.days, gap.first, gap.last)
    r = np.log(bars["close"].astype(float)).diff().dropna()
    std = float(r.std())
    returns = {
        "mean": float(r.mean()),
        "std": std,
        "annualised_vol": std * float(np.sqrt(TRADING_DAYS_PER_YEAR)),
        "skew": float(r.skew()),
        "excess_kurtosis": float(r.kurt()),
        "min": float(r.min()),
        "max": float(r.max()),
    }
    extra = tuple(str(c) for c in bars.columns if c not in (*PRICES, "volume"))
    return DataSummary(
        start=start,
        end=end,
        n_bars=len(bars),
        n_business_days=len(calendar),
        missing_business_days=int(absent.sum()),
        longest_gap=longest,
        has_volume="volume" in bars.columns,
        extra_columns=extra,
        returns=returns,
    )
