"""PathData against backtrader's own PandasData on the same real bars."""

from __future__ import annotations

import backtrader as bt
import numpy as np
import pandas as pd
import pytest

from synthmarket.errors import DataError
from synthmarket.feeds import FeedArrays, PathData, date_numbers, path_feed
from synthmarket.paths import FIELDS, Paths


@pytest.fixture(scope="module")
def bars(sp500):
    return sp500.loc["2015-01-01":"2016-12-31"]


def windows(bars: pd.DataFrame, n: int, steps: int) -> Paths:
    """``n`` consecutive ``steps``-bar windows of real bars, as paths on the first window's dates."""
    arrays = {k: np.stack([bars[k].to_numpy()[i * steps : (i + 1) * steps] for i in range(n)]) for k in FIELDS}
    return Paths(**arrays, dates=bars.index[:steps])


class Recorder(bt.Strategy):
    """Keeps every bar each data feed delivers, and an SMA of the first."""

    params = (("period", 5),)

    def __init__(self):
        self.sma = bt.ind.SMA(self.data0.close, period=self.p.period)
        self.seen = {d._name: [] for d in self.datas}
        self.sma_values = []

    def next(self):
        for d in self.datas:
            self.seen[d._name].append(
                (d.datetime.datetime(0), d.open[0], d.high[0], d.low[0], d.close[0], d.volume[0], len(d))
            )
        self.sma_values.append(self.sma[0])


def run(*feeds, resample=None, **run_kwargs):
    cerebro = bt.Cerebro(stdstats=False)
    for name, feed in feeds:
        if resample:
            cerebro.resampledata(feed, name=name, timeframe=resample)
        else:
            cerebro.adddata(feed, name=name)
    cerebro.addstrategy(Recorder)
    cerebro.addanalyzer(bt.analyzers.TimeReturn, _name="returns")
    cerebro.addanalyzer(bt.analyzers.DrawDown, _name="drawdown")
    cerebro.addanalyzer(bt.analyzers.SQN, _name="sqn")
    return cerebro.run(**run_kwargs)[0]


@pytest.mark.parametrize("run_kwargs", [{}, {"preload": False}, {"runonce": False}])
def test_same_bars_as_pandas_data(bars, run_kwargs):
    ours = run(("d", PathData(dataname=bars)), **run_kwargs)
    theirs = run(("d", bt.feeds.PandasData(dataname=bars)), **run_kwargs)
    assert ours.seen["d"] == theirs.seen["d"]
    assert len(ours.seen["d"]) == len(bars) - 4  # the SMA(5) needs 4 bars before next() starts
    first = ours.seen["d"][0]
    assert first[0] == bars.index[4].to_pydatetime()
    assert first[1:6] == tuple(bars.iloc[4][["open", "high", "low", "close", "volume"]])


def test_indicators_and_analyzers_match(bars):
    ours = run(("d", PathData(dataname=bars)))
    theirs = run(("d", bt.feeds.PandasData(dataname=bars)))
    expected_sma = bars["close"].rolling(5).mean().dropna().to_numpy()
    np.testing.assert_allclose(ours.sma_values, expected_sma, rtol=1e-12)
    for name in ("returns", "drawdown", "sqn"):
        assert ours.analyzers.getbyname(name).get_analysis() == theirs.analyzers.getbyname(name).get_analysis()
    assert len(ours.analyzers.returns.get_analysis()) == len(bars)


def test_resampledata_to_weeks(bars):
    ours = run(("w", PathData(dataname=bars)), resample=bt.TimeFrame.Weeks)
    theirs = run(("w", bt.feeds.PandasData(dataname=bars)), resample=bt.TimeFrame.Weeks)
    assert ours.seen["w"] == theirs.seen["w"]
    weekly = bars.groupby(bars.index.to_period("W"))
    closes = weekly["close"].last().to_numpy()
    highs = weekly["high"].max().to_numpy()
    volumes = weekly["volume"].sum().to_numpy()
    got = ours.seen["w"]
    # next() starts at the 5th weekly bar (SMA(5)); the last week is delivered too
    np.testing.assert_allclose([b[4] for b in got], closes[4:])
    np.testing.assert_allclose([b[2] for b in got], highs[4:])
    np.testing.assert_allclose([b[5] for b in got], volumes[4:])


def test_several_feeds_in_one_cerebro(sp500):
    paths = windows(sp500, 3, 120)
    strat = run(*((f"path-{i}", path_feed(paths, i)) for i in range(3)))
    assert set(strat.seen) == {"path-0", "path-1", "path-2"}
    for i in range(3):
        closes = [bar[4] for bar in strat.seen[f"path-{i}"]]
        np.testing.assert_array_equal(closes, paths.close[i, 4:])
        dates = [bar[0] for bar in strat.seen[f"path-{i}"]]
        assert dates == list(paths.dates[4:].to_pydatetime())


def test_date_numbers_are_backtraders(bars):
    stamps = list(bars.index[:50]) + [pd.Timestamp("2020-02-29 13:45:30.250")]
    expected = [bt.date2num(ts.to_pydatetime()) for ts in stamps]
    np.testing.assert_allclose(date_numbers(stamps), expected, rtol=0, atol=1e-9)


def test_frame_without_volume_gets_zero_volume(bars):
    arrays = FeedArrays.from_frame(bars.drop(columns="volume").rename(columns=str.upper))
    assert (arrays.volume == 0).all() and len(arrays) == len(bars)
    np.testing.assert_array_equal(arrays.close, bars["close"].to_numpy())


def test_bad_inputs_are_data_errors(bars, sp500):
    with pytest.raises(DataError, match="missing close"):
        FeedArrays.from_frame(bars.drop(columns="close"))
    with pytest.raises(DataError, match="DatetimeIndex"):
        FeedArrays.from_frame(bars.reset_index(drop=True))
    with pytest.raises(DataError, match="FeedArrays or an OHLCV DataFrame"):
        PathData(dataname="prices.csv")
    with pytest.raises(DataError, match="Path 5 does not exist"):
        path_feed(windows(sp500, 2, 50), 5)
