"""Donchian channel breakout trend follower (the turtle rule)."""

from __future__ import annotations

import backtrader as bt

from synthmarket.errors import ConfigError

from .base import TargetWeightStrategy


class DonchianBreakout(TargetWeightStrategy):
    """Donchian breakout trend follower: buy new highs, exit at new lows.

    Buys a close above the highest high of the last ``entry`` bars; exits on a close below
    the lowest low of the last ``exit`` bars.

    Parameters
    ----------
    entry : int
        Bars of the breakout channel (default 20).
    exit : int
        Bars of the exit channel (default 10).
    target : float
        Fraction of portfolio value invested when long (default 0.99).
    """

    params = (("entry", 20), ("exit", 10))

    @classmethod
    def check_params(cls, params: dict) -> None:
        super().check_params(params)
        entry, exit_ = params.get("entry", cls.params.entry), params.get("exit", cls.params.exit)
        if entry < 1 or exit_ < 1:
            raise ConfigError(f"donchian_breakout: entry and exit must be at least 1; got {entry} and {exit_}.")

    def __init__(self) -> None:
        super().__init__()
        # Channels of the bars before this one, so today's bar can break out of them.
        self.upper = bt.ind.Highest(self.data.high(-1), period=self.p.entry)
        self.lower = bt.ind.Lowest(self.data.low(-1), period=self.p.exit)

    def next(self) -> None:
        if self.data.close[0] > self.upper[0]:
            self.go_long()
        elif self.data.close[0] < self.lower[0]:
            self.go_flat()
