"""The built-in strategy plugins: registration, parameters and behaviour on real bars."""

from __future__ import annotations

import backtrader as bt
import numpy as np
import pytest

from synthmarket.errors import ConfigError
from synthmarket.feeds import PathData
from synthmarket.montecarlo import backtest_path, coerce_params, strategy_params
from synthmarket.registry import get_registry

NAMES = ("buy_and_hold", "sma_cross", "rsi_mean_reversion", "donchian_breakout", "volatility_target")


@pytest.fixture(scope="module")
def bars(sp500):
    return sp500.loc["2007-01-01":"2009-12-31"]  # calm, crash and rebound


@pytest.fixture(scope="module")
def strategies():
    return get_registry().strategies()


def test_registered_through_the_entry_point(strategies):
    assert set(NAMES) <= set(strategies)
    for name in NAMES:
        info = strategies[name]
        assert issubclass(info.obj, bt.Strategy)
        assert info.origin == f"{info.obj.__module__} (synthmarket)" and info.origin.startswith(
            "synthmarket_strategies."
        )
        assert info.description and "``" not in info.description


@pytest.mark.parametrize("name", NAMES)
def test_params_are_typed_and_documented(strategies, name):
    cls = strategies[name].obj
    params = strategy_params(cls)
    assert params, name
    doc = cls.__doc__
    assert "Parameters" in doc
    for key, default in params.items():
        assert type(default) in (int, float, bool, str), (name, key)
        assert f"{key} : {type(default).__name__}" in doc, (name, key)


def trades_and_values(cls, bars, **params):
    cerebro = bt.Cerebro(stdstats=False)
    cerebro.adddata(PathData(dataname=bars))
    cerebro.addstrategy(cls, **params)
    cerebro.addanalyzer(bt.analyzers.Transactions, _name="tx")
    cerebro.broker.setcash(100_000)
    strat = cerebro.run()[0]
    tx = strat.analyzers.tx.get_analysis()
    return [(date.date(), rows[0][0]) for date, rows in tx.items()], cerebro.broker.getvalue()


def test_buy_and_hold_buys_once_and_holds(strategies, bars):
    tx, value = trades_and_values(strategies["buy_and_hold"].obj, bars)
    assert len(tx) == 1 and tx[0][0] == bars.index[1].date()  # ordered on bar 1, filled at bar 2's open
    shares = tx[0][1]
    assert shares == int(0.99 * 100_000 / bars["close"].iloc[0])
    cash = 100_000 - shares * bars["open"].iloc[1]
    assert value == pytest.approx(cash + shares * bars["close"].iloc[-1])


def test_sma_cross_trades_on_crossings(strategies, bars):
    tx, _ = trades_and_values(strategies["sma_cross"].obj, bars, fast=10, slow=30)
    fast = bars["close"].rolling(10).mean()
    slow = bars["close"].rolling(30).mean()
    above = (fast > slow).astype(int).diff()
    buys = {bars.index[bars.index.get_loc(d) + 1].date() for d in above[above > 0].index}
    sells = {
        bars.index[bars.index.get_loc(d) + 1].date()
        for d in above[above < 0].index
        if bars.index.get_loc(d) + 1 < len(bars)
    }
    assert len(tx) >= 4
    for date, size in tx:
        assert date in (buys if size > 0 else sells)


def test_rsi_buys_when_oversold(strategies, bars):
    tx, _ = trades_and_values(strategies["rsi_mean_reversion"].obj, bars)
    assert tx and tx[0][1] > 0
    rsi = bt_rsi(bars)
    first_buy = bars.index.get_loc(np.datetime64(tx[0][0]))
    assert rsi[first_buy - 1] < 30


def bt_rsi(bars, period=14):
    class Probe(bt.Strategy):
        def __init__(self):
            self.rsi = bt.ind.RSI(self.data.close, period=period, safediv=True)

    cerebro = bt.Cerebro(stdstats=False)
    cerebro.adddata(PathData(dataname=bars))
    cerebro.addstrategy(Probe)
    strat = cerebro.run()[0]
    return np.asarray(strat.rsi.array)


def test_donchian_enters_on_breakouts(strategies, bars):
    tx, _ = trades_and_values(strategies["donchian_breakout"].obj, bars, entry=20, exit=10)
    upper = bars["high"].shift(1).rolling(20).max()
    for date, size in tx:
        if size > 0:
            signal_bar = bars.index.get_loc(np.datetime64(date)) - 1
            assert bars["close"].iloc[signal_bar] > upper.iloc[signal_bar]


def test_volatility_target_holds_less_in_the_crash(strategies, bars):
    result = backtest_path(strategies["volatility_target"].obj, bars, {"target_vol": 0.10})
    hold = backtest_path(strategies["buy_and_hold"].obj, bars)
    assert 0 < result["exposure"] <= 1
    assert result["volatility"] < hold["volatility"] * 0.8
    assert result["max_drawdown"] < hold["max_drawdown"]


@pytest.mark.parametrize("name", NAMES)
def test_every_strategy_runs_on_real_bars(strategies, bars, name):
    metrics = backtest_path(strategies[name].obj, bars)
    assert np.isfinite(metrics["final_value"]) and metrics["final_value"] > 0
    assert metrics["exposure"] > 0


@pytest.mark.parametrize(
    "name, params, message",
    [
        ("sma_cross", {"fast": 30, "slow": 10}, "fast < slow"),
        ("rsi_mean_reversion", {"oversold": 80.0}, "oversold < overbought"),
        ("donchian_breakout", {"entry": 0}, "at least 1"),
        ("volatility_target", {"target_vol": -0.1}, "positive"),
        ("buy_and_hold", {"target": 1.5}, r"\(0, 1\]"),
    ],
)
def test_nonsense_combinations_are_refused(strategies, name, params, message):
    with pytest.raises(ConfigError, match=message):
        coerce_params(strategies[name].obj, params, label=name)
