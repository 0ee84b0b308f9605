"""Built-in example strategies, declared by name under the entry-point group
``synthmarket.strategies`` in pyproject.toml, exactly as a third-party package declares its own.

Each is a plain ``backtrader.Strategy`` subclass with typed parameters (the type of each
default is the type the command line accepts). See ``docs/strategies.md`` to write your own.
"""

from __future__ import annotations

from .base import TargetWeightStrategy
from .buy_and_hold import BuyAndHold
from .donchian_breakout import DonchianBreakout
from .rsi_mean_reversion import RsiMeanReversion
from .sma_cross import SmaCross
from .volatility_target import VolatilityTarget

__all__ = [
    "BuyAndHold",
    "DonchianBreakout",
    "RsiMeanReversion",
    "SmaCross",
    "TargetWeightStrategy",
    "VolatilityTarget",
]
