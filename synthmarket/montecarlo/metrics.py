"""One path: run a strategy once on a path's bars with backtrader, and compute its metrics.

Metrics (one row per path; ``path`` is the path's id in the scenarios, as text, or ``"real"``):

``final_value``         portfolio value after the last bar
``total_return``        ``final_value / cash - 1``
``cagr``                compound annual growth, 252 bars a year
``volatility``          annualised standard deviation of the bar-to-bar portfolio returns
``sharpe``, ``sortino`` annualised mean return over its standard deviation / downside deviation (risk-free rate 0)
``max_drawdown``        largest fall from a running peak of portfolio value (fraction; the peak starts at ``cash``)
``max_drawdown_days``   longest stretch of bars spent under a previous peak
``n_trades``            closed trades; ``win_rate`` the fraction of them with a positive net profit
``exposure``            fraction of bars ending with an open position
``error``               empty, or what went wrong on this path
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import backtrader as bt
import numpy as np
import pandas as pd

from ..errors import ConfigError, DataError
from ..feeds import FeedArrays, PathData

BARS_PER_YEAR = 252
METRICS = (
    "final_value",
    "total_return",
    "cagr",
    "volatility",
    "sharpe",
    "sortino",
    "max_drawdown",
    "max_drawdown_days",
    "n_trades",
    "win_rate",
    "exposure",
)
INT_METRICS = ("max_drawdown_days", "n_trades")
COLUMNS = ("path", *METRICS, "error")


@dataclass(frozen=True)
class Settings:
    """Broker settings of every path: starting cash, commission and slippage (fractions)."""

    cash: float = 100_000.0
    commission: float = 0.001
    slippage: float = 0.0

    def __post_init__(self) -> None:
        if not (math.isfinite(self.cash) and self.cash > 0):
            raise ConfigError(f"cash must be a positive amount; got {self.cash}.")
        if not (0 <= self.commission < 1):
            raise ConfigError(f"commission is a fraction of the traded value in [0, 1); got {self.commission}.")
        if not (0 <= self.slippage < 1):
            raise ConfigError(f"slippage is a fraction of the price in [0, 1); got {self.slippage}.")


class _Recorder(bt.Analyzer):
    """Records, once per bar, the portfolio value and whether a position is open; and closed trades."""

    def start(self) -> None:
        self.values: list[float] = []
        self.exposed = 0
        self.pnls: list[float] = []
        self._positions = self.strategy.broker.positions

    def notify_cashvalue(self, cash: float, value: float) -> None:
        self.values.append(value)
        for position in self._positions.values():
            if position.size:
                self.exposed += 1
                break

    def notify_trade(self, trade: bt.Trade) -> None:
        if trade.isclosed:
            self.pnls.append(trade.pnlcomm)

    def get_analysis(self) -> dict:
        return {"values": self.values, "exposed": self.exposed, "pnls": self.pnls}


def backtest_path(
    strategy: type,
    bars: FeedArrays | pd.DataFrame,
    params: Mapping[str, Any] | None = None,
    settings: Settings = Settings(),
    *,
    name: str = "path",
) -> dict[str, float]:
    """Run ``strategy`` once on ``bars`` and return its metrics (see the module docstring)."""
    if isinstance(bars, pd.DataFrame):
        bars = FeedArrays.from_frame(bars)
    cerebro = bt.Cerebro(stdstats=False)
    cerebro.adddata(PathData(dataname=bars, name=name))
    cerebro.addstrategy(strategy, **dict(params or {}))
    cerebro.addanalyzer(_Recorder, _name="synthmarket")
    broker = cerebro.broker
    broker.setcash(settings.cash)
    broker.setcommission(commission=settings.commission)
    if settings.slippage:
        broker.set_slippage_perc(settings.slippage)
    recorder = cerebro.run()[0].analyzers.getbyname("synthmarket")
    return compute_metrics(recorder.values, settings.cash, recorder.exposed, recorder.pnls)


def compute_metrics(
    values: Iterable[float], cash: float, exposed_bars: int, trade_pnls: Iterable[float]
) -> dict[str, float]:
    """Metrics of one path from its portfolio value at each bar's close.

    Parameters
    ----------
    values : sequence of float
        Portfolio value after each bar.
    cash : float
        Starting value.
    exposed_bars : int
        Bars that ended with an open position.
    trade_pnls : sequence of float
        Net profit (after commission) of each closed trade.
    """
    v = np.asarray(values, dtype=np.float64)
    pnls = np.asarray(list(trade_pnls), dtype=np.float64)
    n = len(v)
    if n == 0:
        raise DataError("The backtest saw no bars; a path needs at least one bar.")
    final = float(v[-1])
    growth = final / cash
    previous = np.concatenate(([cash], v[:-1]))
    returns = v / previous - 1.0
    sd = float(np.std(returns, ddof=1)) if n > 1 else math.nan
    mean = float(np.mean(returns))
    downside = float(np.sqrt(np.mean(np.minimum(returns, 0.0) ** 2)))
    annual = math.sqrt(BARS_PER_YEAR)
    peaks = np.maximum.accumulate(np.concatenate(([cash], v)))[1:]
    drawdowns = 1.0 - v / peaks
    underwater = drawdowns > 0
    return {
        "final_value": final,
        "total_return": growth - 1.0,
        "cagr": growth ** (BARS_PER_YEAR / n) - 1.0 if growth > 0 else -1.0,
        "volatility": sd * annual,
        "sharpe": mean / sd * annual if sd > 0 else math.nan,
        "sortino": mean / downside * annual if downside > 0 else math.nan,
        "max_drawdown": float(drawdowns.max()),
        "max_drawdown_days": _longest_run(underwater),
        "n_trades": int(len(pnls)),
        "win_rate": float(np.mean(pnls > 0)) if len(pnls) else math.nan,
        "exposure": exposed_bars / n,
    }


def _longest_run(mask: np.ndarray) -> int:
    if not mask.any():
        return 0
    edges = np.diff(np.concatenate(([0], mask.view(np.int8), [0])))
    starts, ends = np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)
    return int((ends - starts).max())
