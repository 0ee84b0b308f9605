"""Gaps in daily bars: runs of business days without a bar."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

#: A run of more missing business days than this between two daily bars is a gap in the data
#: (the longest market closures of the bundled sets, September 11-14, 2001, are 4 days).
GAP_BUSINESS_DAYS = 5


@dataclass(frozen=True)
class Gap:
    """Business days with no bar between two consecutive bars: ``days`` of them, ``first``..``last``;
    ``after`` is the position of the bar that follows them."""

    after: int
    days: int
    first: pd.Timestamp
    last: pd.Timestamp

    def __str__(self) -> str:
        return f"{self.days:,} business days, {self.first:%Y-%m-%d}..{self.last:%Y-%m-%d}"


def missing_runs(index: pd.DatetimeIndex, longer_than: int = 0) -> list[Gap]:
    """Every run of more than ``longer_than`` business days without a bar, in date order."""
    days = pd.DatetimeIndex(index).normalize().values.astype("datetime64[D]")
    counts = np.busday_count(days[:-1] + np.timedelta64(1, "D"), days[1:])
    out = []
    for k in np.flatnonzero(counts > longer_than):
        first = np.busday_offset(days[k] + np.timedelta64(1, "D"), 0, roll="forward")
        last = np.busday_offset(days[k + 1] - np.timedelta64(1, "D"), 0, roll="backward")
        out.append(Gap(int(k + 1), int(counts[k]), pd.Timestamp(first), pd.Timestamp(last)))
    return out


def find_gaps(bars: pd.DataFrame) -> list[Gap]:
    """The gaps of daily bars: runs of more than :data:`GAP_BUSINESS_DAYS` missing business days."""
    return missing_runs(pd.DatetimeIndex(bars.index), GAP_BUSINESS_DAYS)
