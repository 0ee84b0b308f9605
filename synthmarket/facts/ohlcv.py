"""Facts that need the OHLCV bars: volume-volatility correlation and bar validity."""

from __future__ import annotations

import numpy as np

from .base import ArrayFact, _median
from .estimators import invalid_bar_counts, row_correlation, volume_surprise


class VolumeVolatility(ArrayFact):
    """Volume-volatility correlation: trading volume rises with the size of price moves.

    Statistics: the correlation of |r_t| with the volume surprise log1p(V_t) minus its
    moving level (the volume channel of ``synthmarket.bars``). Judged only when both the
    real data and the paths carry volume.

    Pass rule: the median path's correlation exceeds 0.1.
    """

    name = "volume_volatility"
    statistics = {"corr_abs_return_volume": "corr(|r_t|, volume surprise_t)"}
    reference = "Cont (2001), fact 11; Karpoff (1987)"
    needs_bars = True
    needs_volume = True

    def compute_arrays(self, returns, paths):
        if paths is None:
            return {"corr_abs_return_volume": np.full(returns.shape[0], np.nan)}
        moves = np.abs(np.diff(np.log(paths.close), axis=-1))
        return {"corr_abs_return_volume": row_correlation(moves, volume_surprise(paths.volume))}

    def passes(self, real, synthetic):
        return _median(synthetic["corr_abs_return_volume"]) > 0.1


class BarValidity(ArrayFact):
    """Bar validity: every bar is internally consistent (L <= min(O,C) <= max(O,C) <= H).

    Statistics: the number of bars per path with a non-finite or non-positive price, a low
    above the open or close, a high below them, or a negative volume.

    Pass rule: no path has an invalid bar.
    """

    name = "bar_validity"
    statistics = {"invalid_bars": "invalid bars per path"}
    reference = "OHLC definition; synthmarket.bars"
    needs_bars = True

    def compute_arrays(self, returns, paths):
        if paths is None:
            return {"invalid_bars": np.full(returns.shape[0], np.nan)}
        return {"invalid_bars": invalid_bar_counts(paths).astype(float)}

    def passes(self, real, synthetic):
        counts = synthetic["invalid_bars"]
        return bool(np.isfinite(counts).all() and np.all(counts == 0))
