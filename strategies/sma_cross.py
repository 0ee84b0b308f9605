"""Moving-average crossover trend follower."""

from __future__ import annotations

import backtrader as bt

from synthmarket.errors import ConfigError

from .base import TargetWeightStrategy


class SmaCross(TargetWeightStrategy):
    """Long while the fast simple moving average of the close is above the slow one.

    Buys when the fast SMA crosses above the slow SMA, sells when it crosses back below.

    Parameters
    ----------
    fast : int
        Bars in the fast average (default 10).
    slow : int
        Bars in the slow average (default 30); must exceed ``fast``.
    target : float
        Fraction of portfolio value invested when long (default 0.99).
    """

    params = (("fast", 10), ("slow", 30))

    @classmethod
    def check_params(cls, params: dict) -> None:
        super().check_params(params)
        fast, slow = params.get("fast", cls.params.fast), params.get("slow", cls.params.slow)
        if not 1 <= fast < slow:
            raise ConfigError(f"sma_cross: need 1 <= fast < slow; got fast={fast}, slow={slow}.")

    def __init__(self) -> None:
        super().__init__()
        fast = bt.ind.SMA(self.data.close, period=self.p.fast)
        slow = bt.ind.SMA(self.data.close, period=self.p.slow)
        self.crossover = bt.ind.CrossOver(fast, slow)

    def next(self) -> None:
        if self.crossover[0] > 0:
            self.go_long()
        elif self.crossover[0] < 0:
            self.go_flat()
