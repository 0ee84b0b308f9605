"""Built-in example strategies, registered through the ``synthmarket`` entry-point group.

Each is a plain ``backtrader.Strategy`` subclass with typed parameters (the type of each
default is the type the command line accepts). See ``docs/strategies.md`` to write your own.
"""

from __future__ import annotations

from synthmarket.hookspecs import hookimpl

from .base import TargetWeightStrategy
from .buy_and_hold import BuyAndHold
from .donchian_breakout import DonchianBreakout
from .rsi_mean_reversion import RsiMeanReversion
from .sma_cross import SmaCross
from .volatility_target import VolatilityTarget

BUILTIN = {
    "buy_and_hold": BuyAndHold,
    "sma_cross": SmaCross,
    "rsi_mean_reversion": RsiMeanReversion,
    "donchian_breakout": DonchianBreakout,
    "volatility_target": VolatilityTarget,
}


@hookimpl
def register_strategies(register) -> None:
    """Register the built-in strategies under their snake_case names."""
    for name, cls in BUILTIN.items():
        register(cls, name=name)


__all__ = [
    "BUILTIN", "BuyAndHold", "DonchianBreakout", "RsiMeanReversion", "SmaCross", "TargetWeightStrategy",
    "VolatilityTarget", "register_strategies",
]
