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
``error``               empty, or what went wrong on this path (where in the user's code, and a hint)
``failed_bar``          on a failed path, the bar it failed on, counted from 1 (0: before the first bar);
                        its metrics are those of the bars until then (``final_value`` is the value
                        when it failed)
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import backtrader as bt
import numpy as np

from ..errors import DataError
from ..feeds import FeedArrays, PathData, feed_arrays
from .settings import Settings
from .strategy import resolve_params

if TYPE_CHECKING:
    import pandas as pd

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
#: The columns of every results table; analyzers' scalar results follow, one column each.
COLUMNS = ("path", *METRICS, "error", "failed_bar")


@dataclass
class PathRun:
    """What one path's backtest gave: its metrics (up to the failure, when it failed), the
    error and the bar it failed on (counted from 1; 0 before the first bar), and each
    analyzer's ``get_analysis()`` by name."""

    metrics: dict[str, float]
    error: Exception | None = None
    failed_bar: int | None = None
    analyses: dict[str, Any] = field(default_factory=dict)


class _Recorder(bt.Analyzer):
    """Records, once per bar, the portfolio value and whether a position is open; and closed trades.

    It leaves itself in ``found`` (a list), which outlives a run that raises."""

    params = (("found", None),)

    def __init__(self) -> None:
        self.values: list[float] = []
        self.pnls: list[float] = []
        self.exposed = 0
        self.p.found.append(self)

    def start(self) -> None:
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


def _cerebro(strategy: type, bars: FeedArrays, params: Mapping[str, Any], settings: Settings, name: str):
    """One path's Cerebro, as the run settings make it; the analyzers' names by spec."""
    cerebro = settings.new_cerebro()
    settings.add_feeds(cerebro, PathData(dataname=bars, name=name))
    cerebro.addstrategy(strategy, **resolve_params(strategy, params))
    return cerebro, settings.apply(cerebro)


def run_path(
    strategy: type, bars: FeedArrays, params: Mapping[str, Any], settings: Settings, *, name: str = "path"
) -> PathRun:
    """Run ``strategy`` once on ``bars`` with ``settings``; an exception becomes the run's
    ``error``, with the metrics of the bars before it."""
    found: list[_Recorder] = []
    try:
        cerebro, names = _cerebro(strategy, bars, params, settings, name)
        cerebro.addanalyzer(_Recorder, _name="synthmarket", found=found)
        settings.run_setup(cerebro)
        ran = cerebro.run()[0]
    except Exception as exc:
        recorder = found[0] if found else None
        values, exposed, pnls = (recorder.values, recorder.exposed, recorder.pnls) if recorder else ([], 0, [])
        metrics = compute_metrics(values or [settings.cash], settings.cash, exposed, pnls)
        return PathRun(metrics, exc, len(values))
    recorder = found[0]
    analyses = {name: ran.analyzers.getbyname(name).get_analysis() for name in names.values()}
    return PathRun(compute_metrics(recorder.values, settings.cash, recorder.exposed, recorder.pnls), analyses=analyses)


class _Built(Exception):
    """Raised by :class:`_Probe` to stop a Cerebro once the strategy is built."""


class _Probe(bt.Analyzer):
    def start(self) -> None:  # after the strategy's __init__ and its minimum periods are known
        raise _Built(self.strategy)


def build_strategy(strategy: type, bars: FeedArrays, params: Mapping[str, Any], settings: Settings) -> bt.Strategy:
    """The strategy as Cerebro builds it on ``bars`` (its ``__init__`` and indicators run, no
    bar does): what a run checks before it starts. The strategy's own exceptions pass through."""
    cerebro, _ = _cerebro(strategy, bars, params, settings, "probe")
    cerebro.addanalyzer(_Probe)
    settings.run_setup(cerebro)
    try:
        cerebro.run()
    except _Built as built:
        return built.args[0]
    raise DataError("Cerebro ran without building the strategy.")  # setup removed the strategy


def backtest_path(
    strategy: type,
    bars: FeedArrays | pd.DataFrame,
    params: Mapping[str, Any] | None = None,
    settings: Settings = Settings(),
    *,
    name: str = "path",
) -> dict[str, float]:
    """Run ``strategy`` once on ``bars`` and return its metrics (see the module docstring);
    the strategy's exception is raised again."""
    run = run_path(strategy, feed_arrays(bars), dict(params or {}), settings, name=name)
    if run.error is not None:
        raise run.error
    return run.metrics


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
