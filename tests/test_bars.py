"""bars.py: the exact round trip and the always-valid bars, as hypothesis properties."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from synthmarket.bars import (
    Anchor,
    FeatureScaler,
    business_days,
    channels,
    default_start,
    has_volume,
    ohlcv_arrays,
    to_bars,
    to_features,
)
from synthmarket.errors import DataError

PROPERTY = settings(max_examples=120, deadline=None, derandomize=True)


@st.composite
def real_looking_bars(draw) -> pd.DataFrame:
    """Valid daily bars built from bounded log-returns, gaps, wicks and (optionally) volumes."""
    n = draw(st.integers(2, 250))
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    vol = draw(st.floats(0.001, 0.08))
    first = draw(st.floats(0.01, 1e5))
    ret = rng.standard_t(4, n) * vol
    gap = rng.normal(0, vol / 3, n)
    upper = np.abs(rng.normal(0, vol / 2, n)) * rng.integers(0, 2, n)  # some bars have no wick
    lower = np.abs(rng.normal(0, vol / 2, n)) * rng.integers(0, 2, n)
    close = first * np.exp(np.cumsum(ret))
    prev = np.concatenate([[first], close[:-1]])
    open_ = prev * np.exp(gap)
    bars = pd.DataFrame(
        {
            "open": open_,
            "high": np.maximum(open_, close) * np.exp(upper),
            "low": np.minimum(open_, close) * np.exp(-lower),
            "close": close,
        },
        index=business_days(draw(st.dates(pd.Timestamp("1990-01-01").date(), pd.Timestamp("2030-01-01").date())), n),
    )
    if draw(st.booleans()):
        volume = np.round(np.exp(rng.normal(draw(st.floats(0, 22)), 0.5, n)))
        volume[rng.random(n) < 0.05] = 0.0  # days without trades
        bars["volume"] = volume
    return bars


def assert_same_bars(back: pd.DataFrame, bars: pd.DataFrame) -> None:
    assert list(back.columns[:4]) == ["open", "high", "low", "close"]
    np.testing.assert_allclose(
        back[["open", "high", "low", "close"]].to_numpy(), bars[["open", "high", "low", "close"]].to_numpy(), rtol=1e-9
    )
    if "volume" in bars.columns:
        np.testing.assert_allclose(back["volume"].to_numpy(), bars["volume"].to_numpy(), rtol=1e-9, atol=1e-6)
    assert back.index.equals(bars.index)


@PROPERTY
@given(real_looking_bars())
def test_round_trip_gives_back_the_bars(bars):
    features = to_features(bars)
    assert features.shape == (len(bars) - 1, 5 if has_volume(bars) else 4)
    back = to_bars(features, Anchor.after(bars.iloc[:1]), index=bars.index[1:])
    assert_same_bars(back, bars.iloc[1:])


@PROPERTY
@given(real_looking_bars(), st.floats(0, 1))
def test_continuation_from_any_bar_gives_back_the_rest(bars, where):
    """Anchor.after carries the exact state (close, volume level, date) to a continuation."""
    k = int(where * (len(bars) - 1))  # features of bars k+1.. start from the state after bar k
    features = to_features(bars)[k:]
    anchor = Anchor.after(bars.iloc[: k + 1])
    back = to_bars(features, anchor)  # default index: the business days after the anchor's date
    assert_same_bars(back, bars.iloc[k + 1 :])


def test_round_trip_on_real_bars(sp500):
    back = to_bars(to_features(sp500), Anchor.after(sp500.iloc[:1]), index=sp500.index[1:])
    assert_same_bars(back, sp500.iloc[1:])


def test_real_wicks_are_non_negative(sp500):
    features = to_features(sp500)
    assert (features[:, 2:4] >= 0).all()


any_finite = st.floats(allow_nan=False, allow_infinity=False)
feature_arrays = st.integers(4, 5).flatmap(
    lambda c: hnp.arrays(
        np.float64,
        st.tuples(st.integers(0, 40), st.just(c)),
        elements=st.one_of(any_finite, st.floats(-1e-300, 1e-300), st.floats(-60, 60)),
    )
)
anchors = st.builds(
    Anchor,
    close=st.floats(1e-6, 1e9),
    volume_level=st.one_of(st.none(), st.floats(-1e3, 1e3)),
    date=st.one_of(st.none(), st.dates(pd.Timestamp("1980-01-01").date(), pd.Timestamp("2100-01-01").date()).map(str)),
)


def assert_valid(arrays: dict[str, np.ndarray]) -> None:
    o, h, l, c, v = (arrays[k] for k in ("open", "high", "low", "close", "volume"))
    for prices in (o, h, l, c):
        assert np.isfinite(prices).all() and (prices > 0).all()
    assert (l <= np.minimum(o, c)).all()
    assert (np.minimum(o, c) <= np.maximum(o, c)).all()
    assert (np.maximum(o, c) <= h).all()
    assert np.isfinite(v).all() and (v >= 0).all()


@PROPERTY
@given(feature_arrays, anchors, st.dates(pd.Timestamp("1990-01-01").date(), pd.Timestamp("2100-01-01").date()))
def test_any_finite_features_give_valid_bars_from_a_start_date(features, anchor, start):
    bars = to_bars(features, anchor, start=start)
    assert_valid({k: bars[k].to_numpy() for k in ("open", "high", "low", "close", "volume")})
    assert len(bars) == len(features)
    expected = pd.bdate_range(pd.Timestamp(start), periods=len(features))
    assert bars.index.equals(expected)
    assert (bars.index.day_of_week < 5).all()
    if len(bars):
        first = pd.Timestamp(start)
        assert bars.index[0] >= first and (bars.index[0] - first).days <= 2  # rolled to the next weekday
    if features.shape[1] == 4:
        assert (bars["volume"] == 0).all()


@PROPERTY
@given(feature_arrays, anchors)
def test_default_index_starts_after_the_anchor_date(features, anchor):
    bars = to_bars(features, anchor)
    assert bars.index.equals(business_days(default_start(anchor), len(features)))
    if anchor.date is not None and len(bars):
        assert bars.index[0] > pd.Timestamp(anchor.date)


@PROPERTY
@given(
    st.integers(4, 5).flatmap(
        lambda c: hnp.arrays(
            np.float64, st.tuples(st.integers(1, 4), st.integers(1, 12), st.just(c)), elements=st.floats(width=64)
        )
    ),
    anchors,
)
def test_any_batch_even_nan_and_inf_gives_valid_bars(features, anchor):
    arrays = ohlcv_arrays(features, anchor)
    assert arrays["close"].shape == features.shape[:2]
    assert_valid(arrays)


def test_float32_features_as_models_produce_them(sp500):
    features = to_features(sp500.iloc[:300]).astype(np.float32)
    back = to_bars(features, Anchor.after(sp500.iloc[:1]), index=sp500.index[1:300])
    np.testing.assert_allclose(back["close"].to_numpy(), sp500["close"].iloc[1:300].to_numpy(), rtol=1e-4)


@pytest.mark.parametrize("shape", [(10, 3), (10, 6), (10,)])
def test_wrong_channel_count_is_a_data_error(shape):
    with pytest.raises(DataError, match="4 or 5 channels"):
        ohlcv_arrays(np.zeros(shape), Anchor(100.0))


def test_to_bars_takes_one_path():
    with pytest.raises(DataError, match="one path"):
        to_bars(np.zeros((2, 10, 4)), Anchor(100.0))
    with pytest.raises(DataError, match="3 dates for 10 steps"):
        to_bars(np.zeros((10, 4)), Anchor(100.0), index=pd.bdate_range("2020-01-01", periods=3))


@pytest.mark.parametrize("close", [0.0, -1.0, float("nan"), float("inf")])
def test_anchor_needs_a_positive_finite_close(close):
    with pytest.raises(DataError, match="positive finite"):
        Anchor(close)


def test_anchor_after_real_bars_and_back_from_dict(sp500):
    anchor = Anchor.after(sp500)
    assert anchor.close == sp500["close"].iloc[-1]
    assert anchor.date == "2018-12-31"
    assert anchor.volume_level is not None and 19 < anchor.volume_level < 23  # log1p of ~3e9 shares
    assert Anchor.from_dict(anchor.to_dict()) == anchor
    assert Anchor.after(sp500.drop(columns="volume")).volume_level is None
    with pytest.raises(DataError, match="empty"):
        Anchor.after(sp500.iloc[:0])


def test_channels_and_has_volume(sp500):
    assert channels(False) == ("ret", "gap", "upper", "lower")
    assert channels(True) == ("ret", "gap", "upper", "lower", "volume")
    assert has_volume(sp500)
    assert not has_volume(sp500.drop(columns="volume"))
    holed = sp500.iloc[:5].copy()
    holed.loc[holed.index[2], "volume"] = np.nan
    assert not has_volume(holed)


def test_business_days_roll_forward_and_default_start():
    saturday = pd.Timestamp("2020-01-04")
    days = business_days(saturday, 3)
    assert list(days.strftime("%Y-%m-%d")) == ["2020-01-06", "2020-01-07", "2020-01-08"]
    assert days.name == "date" and days.dtype == "datetime64[ns]"
    assert default_start(Anchor(1.0, date="2020-01-03")) == pd.Timestamp("2020-01-06")  # Friday -> Monday
    assert default_start(Anchor(1.0)) == pd.Timestamp("2000-01-03")
    with pytest.raises(DataError, match="start date"):
        business_days("not a date", 3)


def test_feature_scaler_standardises_and_round_trips(sp500):
    features = to_features(sp500)
    scaler = FeatureScaler.fit(features)
    assert scaler.channels == channels(True)
    scaled = scaler.transform(features)
    np.testing.assert_allclose(scaled.mean(axis=0), 0, atol=1e-9)
    np.testing.assert_allclose(scaled.std(axis=0), 1, rtol=1e-9)
    np.testing.assert_allclose(scaler.inverse_transform(scaled), features, rtol=1e-12, atol=1e-15)
    assert FeatureScaler.from_dict(scaler.to_dict()) == scaler
    constant = FeatureScaler.fit(np.ones((10, 4)))
    assert constant.std == (1.0, 1.0, 1.0, 1.0)  # a constant channel is not divided by zero
    with pytest.raises(DataError, match="finite"):
        FeatureScaler.fit(np.full((3, 4), np.nan))
