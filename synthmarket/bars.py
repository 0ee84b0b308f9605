"""OHLCV bars <-> feature channels, with an exact round trip and bars that are always valid.

Channels per bar t, all in log space so that prices stay positive:

========  ==========================================  =====
channel   definition                                   range
========  ==========================================  =====
ret       log(C_t / C_{t-1})                           any
gap       log(O_t / C_{t-1})                           any
upper     log(H_t / max(O_t, C_t))                     >= 0
lower     log(min(O_t, C_t) / L_t)                     >= 0
volume    log1p(V_t) - level_t                         any
========  ==========================================  =====

``level_t`` is an exponential moving average of ``log1p(V)`` over the bars before t
(weight :data:`VOLUME_ALPHA`), so the volume channel is stationary and the round trip is
exact. Sets without volume have four channels.

:func:`to_bars` maps *any* finite feature array to valid bars: wicks pass through ``abs``
(the identity on real data), every channel is clipped to +-:data:`FEATURE_LIMIT` and log
prices to +-:data:`LOG_PRICE_LIMIT` (monotone maps, so the bar ordering survives), and
volume is ``expm1`` of a non-negative number.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd

from .errors import DataError

PRICE_CHANNELS = ("ret", "gap", "upper", "lower")
VOLUME_CHANNEL = "volume"
VOLUME_ALPHA = 0.05
FEATURE_LIMIT = 50.0
LOG_PRICE_LIMIT = 600.0


def channels(with_volume: bool) -> tuple[str, ...]:
    """The channel names: ``ret, gap, upper, lower`` and ``volume`` when ``with_volume``."""
    return PRICE_CHANNELS + ((VOLUME_CHANNEL,) if with_volume else ())


def has_volume(df: pd.DataFrame) -> bool:
    """Whether ``df`` has a complete ``volume`` column (and so a fifth feature channel)."""
    return "volume" in df.columns and bool(df["volume"].notna().all())


@dataclass(frozen=True)
class Anchor:
    """The state a path starts from: the last close, the volume level and the last date."""

    close: float
    volume_level: float | None = None
    date: str | None = None

    def __post_init__(self) -> None:
        if not (np.isfinite(self.close) and self.close > 0):
            raise DataError(f"An anchor close must be a positive finite price; got {self.close!r}.")
        if self.volume_level is not None and not np.isfinite(self.volume_level):
            raise DataError(f"An anchor volume level must be finite; got {self.volume_level!r}.")

    @classmethod
    def after(cls, bars: pd.DataFrame) -> Anchor:
        """The state right after the last bar of ``bars`` (the start of a continuation)."""
        if len(bars) == 0:
            raise DataError("Cannot anchor on an empty set of bars.")
        level = None
        if has_volume(bars):
            x = np.log1p(bars["volume"].to_numpy(dtype=float))
            level = x[0]
            for value in x[1:]:
                level = (1 - VOLUME_ALPHA) * level + VOLUME_ALPHA * value
            level = float(level)
        date = pd.Timestamp(bars.index[-1]).strftime("%Y-%m-%d") if isinstance(bars.index, pd.DatetimeIndex) else None
        return cls(float(bars["close"].iloc[-1]), level, date)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> Anchor:
        return cls(**data)


def to_features(bars: pd.DataFrame) -> np.ndarray:
    """Feature array of shape (T - 1, C): bar 0 is the anchor, rows are bars 1..T-1.

    ``to_bars(to_features(df), Anchor.after(df.iloc[:1]), index=df.index[1:])`` gives back
    ``df.iloc[1:]`` to float precision.

    Parameters
    ----------
    bars : DataFrame
        Valid bars (as :func:`synthmarket.data.load_ohlcv` returns them), at least one.

    Returns
    -------
    np.ndarray
        Float64 array (T - 1, 4), or (T - 1, 5) when the bars have volume.
    """
    if len(bars) == 0:
        raise DataError("Cannot make features from an empty set of bars.")
    o, h, l, c = (np.log(bars[k].to_numpy(dtype=float)) for k in ("open", "high", "low", "close"))
    prev_c = c[:-1]
    o, h, l, c = o[1:], h[1:], l[1:], c[1:]
    columns = [c - prev_c, o - prev_c, h - np.maximum(o, c), np.minimum(o, c) - l]
    if has_volume(bars):
        x = np.log1p(bars["volume"].to_numpy(dtype=float))
        level = np.empty(len(x) - 1)
        current = x[0]
        for t in range(1, len(x)):
            level[t - 1] = current
            current = (1 - VOLUME_ALPHA) * current + VOLUME_ALPHA * x[t]
        columns.append(x[1:] - level)
    return np.stack(columns, axis=-1)


def ohlcv_arrays(features: np.ndarray, anchor: Anchor) -> dict[str, np.ndarray]:
    """Bars from features of shape (..., S, C) as arrays of shape (..., S), always valid.

    Whatever the features (NaN and infinities included), every bar has positive finite
    prices with ``low <= min(open, close) <= max(open, close) <= high`` and ``volume >= 0``.
    Without a volume channel, ``volume`` is zero.
    """
    f = np.asarray(features, dtype=float)
    if f.ndim < 2 or f.shape[-1] not in (4, 5):
        raise DataError(
            f"Features need shape (..., steps, channels) with 4 or 5 channels (ret, gap, upper, lower[, volume]); "
            f"got shape {f.shape}."
        )
    f = np.clip(np.nan_to_num(f), -FEATURE_LIMIT, FEATURE_LIMIT)
    log_anchor = np.log(anchor.close)
    log_c = log_anchor + np.cumsum(f[..., 0], axis=-1)
    prev_c = np.concatenate([np.full(log_c.shape[:-1] + (1,), log_anchor), log_c[..., :-1]], axis=-1)[
        ..., : log_c.shape[-1]
    ]
    log_o = prev_c + f[..., 1]
    log_h = np.maximum(log_o, log_c) + np.abs(f[..., 2])
    log_l = np.minimum(log_o, log_c) - np.abs(f[..., 3])
    out = {
        k: np.exp(np.clip(v, -LOG_PRICE_LIMIT, LOG_PRICE_LIMIT))
        for k, v in (("open", log_o), ("high", log_h), ("low", log_l), ("close", log_c))
    }
    if f.shape[-1] == 5:
        level0 = anchor.volume_level if anchor.volume_level is not None else 0.0
        v = f[..., 4]
        level = level0 + VOLUME_ALPHA * (np.cumsum(v, axis=-1) - v)
        out["volume"] = np.expm1(np.clip(v + level, 0.0, FEATURE_LIMIT))
    else:
        out["volume"] = np.zeros_like(log_c)
    return out


def business_days(start, n: int) -> pd.DatetimeIndex:
    """``n`` business days from ``start`` (rolled forward to a business day), nanosecond unit."""
    try:
        first = pd.Timestamp(start)
    except (ValueError, TypeError):
        raise DataError(f"Could not read the start date {start!r}; write it as YYYY-MM-DD.") from None
    except pd.errors.OutOfBoundsDatetime:
        raise DataError(
            f"The start date {start!r} is outside the dates pandas can hold "
            f"({pd.Timestamp.min:%Y-%m-%d}..{pd.Timestamp.max:%Y-%m-%d})."
        ) from None
    try:
        return pd.bdate_range(first, periods=int(n), name="date").as_unit("ns")
    except (pd.errors.OutOfBoundsDatetime, OverflowError):
        raise DataError(
            f"{int(n):,} business days from {first:%Y-%m-%d} run past {pd.Timestamp.max:%Y-%m-%d}, the "
            f"last date pandas can hold; choose an earlier start date or fewer steps."
        ) from None


def default_start(anchor: Anchor) -> pd.Timestamp:
    """The business day after the anchor's date (2000-01-03 when the anchor has none)."""
    if anchor.date is None:
        return pd.Timestamp("2000-01-03")
    return pd.Timestamp(anchor.date) + pd.offsets.BDay(1)


def to_bars(features: np.ndarray, anchor: Anchor, *, start=None, index: pd.Index | None = None) -> pd.DataFrame:
    """One path of features (S, C) -> OHLCV DataFrame on a business-day index.

    The index is ``index`` when given, else ``S`` business days from ``start`` (default: the
    business day after the anchor's date).
    """
    features = np.asarray(features)
    if features.ndim != 2:
        raise DataError(f"to_bars takes one path of shape (steps, channels); got shape {features.shape}.")
    arrays = ohlcv_arrays(features, anchor)
    if index is None:
        index = business_days(start if start is not None else default_start(anchor), features.shape[0])
    elif len(index) != features.shape[0]:
        raise DataError(f"The index has {len(index)} dates for {features.shape[0]} steps of features; make them agree.")
    return pd.DataFrame(arrays, index=index)


@dataclass(frozen=True)
class FeatureScaler:
    """Per-channel standardisation, stored as plain JSON."""

    channels: tuple[str, ...]
    mean: tuple[float, ...]
    std: tuple[float, ...]

    @classmethod
    def fit(cls, features: np.ndarray, channel_names: tuple[str, ...] | None = None) -> FeatureScaler:
        """Mean and standard deviation of each channel of ``features`` (..., C)."""
        features = np.asarray(features, dtype=float)
        flat = features.reshape(-1, features.shape[-1])
        if len(flat) == 0 or not np.isfinite(flat).all():
            raise DataError("A feature scaler needs at least one row of finite features.")
        std = flat.std(axis=0)
        std[std < 1e-12] = 1.0
        names = channel_names or channels(features.shape[-1] == 5)
        return cls(tuple(names), tuple(map(float, flat.mean(axis=0))), tuple(map(float, std)))

    def transform(self, features: np.ndarray) -> np.ndarray:
        """Standardised features: ``(features - mean) / std`` per channel."""
        return (features - np.asarray(self.mean)) / np.asarray(self.std)

    def inverse_transform(self, scaled: np.ndarray) -> np.ndarray:
        """Undo :meth:`transform`."""
        return scaled * np.asarray(self.std) + np.asarray(self.mean)

    def to_dict(self) -> dict:
        return {"channels": list(self.channels), "mean": list(self.mean), "std": list(self.std)}

    @classmethod
    def from_dict(cls, data: dict) -> FeatureScaler:
        return cls(tuple(data["channels"]), tuple(map(float, data["mean"])), tuple(map(float, data["std"])))
