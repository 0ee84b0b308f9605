"""Volatility targeting: hold more when markets are calm, less when they are wild."""

from __future__ import annotations

import math

import backtrader as bt

from synthmarket.errors import ConfigError

from .base import TargetWeightStrategy

BARS_PER_YEAR = 252


class VolatilityTarget(TargetWeightStrategy):
    """Volatility targeting: size a long position so its volatility stays near a target.

    Every ``rebalance`` bars the weight becomes ``target_vol / realised_vol`` (capped at
    ``target``), where the realised volatility is the standard deviation of the last
    ``lookback`` daily returns times sqrt(252). Small changes (under ``band``) are skipped.

    Parameters
    ----------
    target_vol : float
        Annualised volatility aimed at (default 0.15).
    lookback : int
        Bars of returns in the volatility estimate (default 20).
    rebalance : int
        Bars between rebalancing checks (default 5).
    band : float
        Smallest change of weight worth trading (default 0.05).
    target : float
        Largest weight held, as a fraction of portfolio value (default 0.99).
    """

    params = (("target_vol", 0.15), ("lookback", 20), ("rebalance", 5), ("band", 0.05))

    @classmethod
    def check_params(cls, params: dict) -> None:
        super().check_params(params)
        get = lambda k: params.get(k, getattr(cls.params, k))  # noqa: E731
        if get("target_vol") <= 0:
            raise ConfigError(f"volatility_target: target_vol must be positive; got {get('target_vol')}.")
        if get("lookback") < 2 or get("rebalance") < 1:
            raise ConfigError("volatility_target: lookback must be at least 2 and rebalance at least 1.")
        if get("band") < 0:
            raise ConfigError(f"volatility_target: band must be non-negative; got {get('band')}.")

    def __init__(self) -> None:
        super().__init__()
        returns = bt.ind.PctChange(self.data.close, period=1)
        self.volatility = bt.ind.StdDev(returns, period=self.p.lookback) * math.sqrt(BARS_PER_YEAR)

    def next(self) -> None:
        if (len(self) - 1) % self.p.rebalance:
            return
        vol = self.volatility[0]
        weight = self.p.target if not vol > 0 else min(self.p.target, self.p.target_vol / vol)
        value = self.broker.getvalue()
        held = self.position.size * self.data.close[0] / value if value > 0 else 0.0
        if abs(weight - held) > self.p.band:
            self.rebalance(weight)
