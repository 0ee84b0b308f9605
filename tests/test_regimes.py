"""regimes.py: volatility and trend terciles, user label columns, schedules."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from synthmarket.data import load_ohlcv
from synthmarket.errors import ConfigError, DataError
from synthmarket.regimes import RegimeScheme, fit_regimes, parse_schedule

VOL = ("calm", "normal", "turbulent")


def test_volatility_terciles_have_increasing_realized_vol(sp500):
    scheme = fit_regimes(sp500, "volatility")
    assert scheme.names == VOL and scheme.window == 20 and scheme.thresholds[0] < scheme.thresholds[1]
    labels = scheme.label(sp500)
    assert labels.shape == (len(sp500),) and set(labels) == {0, 1, 2}
    shares = np.bincount(labels[scheme.window :]) / len(labels[scheme.window :])
    np.testing.assert_allclose(shares, 1 / 3, atol=0.01)  # terciles of the training statistic
    returns = np.log(sp500["close"]).diff().to_numpy()
    realized = [np.nanstd(returns[labels == k]) * np.sqrt(252) for k in range(3)]
    assert realized[0] < realized[1] < realized[2]
    assert realized[2] > 2 * realized[0]  # turbulent markets are much wilder than calm ones
    assert labels[sp500.index.get_loc(pd.Timestamp("2008-10-15"))] == VOL.index("turbulent")
    assert labels[sp500.index.get_loc(pd.Timestamp("2017-06-15"))] == VOL.index("calm")


def test_trend_terciles_order_bear_flat_bull(sp500):
    scheme = fit_regimes(sp500, "trend")
    assert scheme.names == ("bear", "flat", "bull") and scheme.window == 60
    labels = scheme.label(sp500)
    trailing = np.log(sp500["close"]).diff().rolling(60).sum().to_numpy()
    means = [np.nanmean(trailing[labels == k]) for k in range(3)]
    assert means[0] < 0 < means[2] and means[0] < means[1] < means[2]
    assert labels[sp500.index.get_loc(pd.Timestamp("2008-11-20"))] == 0  # deep in the 2008 crash


def test_scheme_fitted_on_training_bars_labels_later_bars(sp500):
    train, later = sp500.loc[:"2010-12-31"], sp500.loc["2011-01-01":]
    scheme = fit_regimes(train, "volatility", window=10)
    restored = RegimeScheme.from_dict(scheme.to_dict())
    assert restored == scheme
    labels = restored.label(later)
    assert labels.shape == (len(later),) and set(labels) <= {0, 1, 2}
    # 2011-2018 was calmer than 1999-2010 by the training thresholds
    assert np.mean(labels == 0) > np.mean(labels == 2)


def test_first_window_bars_take_the_first_complete_label(sp500):
    scheme = fit_regimes(sp500, "volatility", window=20)
    labels = scheme.label(sp500.iloc[:100])
    assert (labels[:20] == labels[20]).all()


def test_user_column_regimes(sp500):
    bars = sp500.iloc[:300].copy()
    bars["phase"] = np.where(np.arange(300) < 120, "boom", "bust")
    scheme = fit_regimes(bars, "phase")
    assert scheme.column == "phase" and scheme.names == ("boom", "bust")
    labels = scheme.label(bars)
    assert (labels[:120] == 0).all() and (labels[120:] == 1).all()
    assert scheme.index("bust") == 1
    with pytest.raises(ConfigError, match="Unknown regime 'crash'"):
        scheme.index("crash")
    bars.loc[bars.index[5], "phase"] = "crash"
    with pytest.raises(DataError, match=r"holds regimes \['crash'\] that the model does not know"):
        scheme.label(bars)
    with pytest.raises(DataError, match="no column 'phase'"):
        scheme.label(sp500.iloc[:10])


def test_user_column_read_from_a_csv(tmp_path):
    path = tmp_path / "labelled.csv"
    rows = ["Date,Open,High,Low,Close,Regime"]
    rows += [f"2020-01-{d:02d},10,11,9,10,{'calm' if d < 10 else 'storm'}" for d in (2, 3, 6, 7, 8, 9, 10, 13)]
    path.write_text("\n".join(rows) + "\n")
    bars = load_ohlcv(path)
    scheme = fit_regimes(bars, "Regime")
    assert scheme.names == ("calm", "storm")
    assert list(scheme.label(bars)) == [0, 0, 0, 0, 0, 0, 1, 1]


def test_user_column_errors(sp500):
    bars = sp500.iloc[:50].copy()
    bars["phase"] = "only"
    with pytest.raises(DataError, match="single regime"):
        fit_regimes(bars, "phase")
    bars["phase"] = ["a", "b"] * 25
    bars.loc[bars.index[3], "phase"] = None
    with pytest.raises(DataError, match="has no regime at 1999-01-07"):
        fit_regimes(bars, "phase")
    with pytest.raises(ConfigError, match="use 'volatility', 'trend', or the name of a column"):
        fit_regimes(bars, "volatilty")


def test_built_in_regimes_need_enough_bars_and_a_sane_window(sp500):
    with pytest.raises(DataError, match="too few for trend regimes"):
        fit_regimes(sp500.iloc[:100], "trend")
    for window in (0, 1, -5, 2.5, True):
        with pytest.raises(ConfigError, match="window"):
            fit_regimes(sp500, "volatility", window=window)
    scheme = fit_regimes(sp500, "volatility")
    with pytest.raises(DataError, match="too few"):
        scheme.label(sp500.iloc[:2])


def test_schedule_parses_to_one_label_per_step():
    labels = parse_schedule("calm:200,turbulent:40,calm:200", VOL)
    assert labels.shape == (440,) and labels.dtype == np.int64
    assert (labels[:200] == 0).all() and (labels[200:240] == 2).all() and (labels[240:] == 0).all()
    assert list(parse_schedule(" normal : 2 , calm:1 ", list(VOL))) == [1, 1, 0]


@pytest.mark.parametrize(
    "spec, message",
    [
        ("calm:200,crash:40", "Schedule names regime 'crash'; the model knows calm, normal, turbulent"),
        ("calm:abc", "'abc' is not a whole number of steps"),
        ("calm:2.5", "'2.5' is not a whole number of steps"),
        ("calm:0", "the number of steps must be positive"),
        ("calm:-3", "the number of steps must be positive"),
        ("", "The schedule is empty"),
        ("   ", "The schedule is empty"),
        ("calm", "Schedule item 'calm' is not regime:steps"),
        (":40", "Schedule item ':40' is not regime:steps"),
        ("calm:200,", "has an empty item"),
        ("calm:20000000", "at most 10000000"),
    ],
)
def test_schedule_errors_say_what_to_write(spec, message):
    with pytest.raises(ConfigError) as info:
        parse_schedule(spec, VOL)
    assert message in str(info.value)
    assert "\n" not in str(info.value)
