"""RSI mean reversion: buy oversold, sell overbought."""

from __future__ import annotations

import backtrader as bt

from synthmarket.errors import ConfigError

from .base import TargetWeightStrategy


class RsiMeanReversion(TargetWeightStrategy):
    """Mean reversion: buy when the RSI says oversold, sell when it says overbought.

    Buys when the RSI falls below ``oversold``; sells when it rises above ``overbought``.

    Parameters
    ----------
    period : int
        RSI look-back in bars (default 14).
    oversold : float
        RSI level under which to buy (default 30.0).
    overbought : float
        RSI level over which to sell (default 70.0); must exceed ``oversold``.
    target : float
        Fraction of portfolio value invested when long (default 0.99).
    """

    params = (("period", 14), ("oversold", 30.0), ("overbought", 70.0))

    @classmethod
    def check_params(cls, params: dict) -> None:
        super().check_params(params)
        period = params.get("period", cls.params.period)
        low, high = params.get("oversold", cls.params.oversold), params.get("overbought", cls.params.overbought)
        if period < 2:
            raise ConfigError(f"rsi_mean_reversion: period must be at least 2; got {period}.")
        if not 0 <= low < high <= 100:
            raise ConfigError(f"rsi_mean_reversion: need 0 <= oversold < overbought <= 100; got {low} and {high}.")

    def __init__(self) -> None:
        super().__init__()
        # safediv: a path without a single down (or up) move must not divide by zero.
        self.rsi = bt.ind.RSI(self.data.close, period=self.p.period, safediv=True)

    def next(self) -> None:
        if self.rsi[0] < self.p.oversold:
            self.go_long()
        elif self.rsi[0] > self.p.overbought:
            self.go_flat()
