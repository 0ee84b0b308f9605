"""What the example strategies share: one pending order at a time, positions sized as a
fraction of portfolio value."""

from __future__ import annotations

import backtrader as bt

from synthmarket.errors import ConfigError


class TargetWeightStrategy(bt.Strategy):
    """Base of the built-in strategies: long-only, at most one order in flight.

    Subclasses call :meth:`go_long` and :meth:`go_flat` (or :meth:`rebalance`) from
    ``next``. Orders are market orders, filled at the next bar's open.

    Parameters
    ----------
    target : float
        Fraction of portfolio value to hold when long (default 0.99; a little cash is kept so
        that a gap up at the next open does not leave the order short of cash).
    """

    params = (("target", 0.99),)

    @classmethod
    def check_params(cls, params: dict) -> None:
        """Raise ConfigError when a combination of parameters makes no sense."""
        target = params.get("target", cls.params.target)
        if not 0 < target <= 1:
            raise ConfigError(f"{cls.__name__}: target must be in (0, 1]; got {target}.")

    def __init__(self) -> None:
        self.pending = None

    def notify_order(self, order: bt.Order) -> None:
        if order.status not in (order.Submitted, order.Accepted):
            self.pending = None

    def go_long(self) -> None:
        """Buy up to ``target`` of portfolio value, unless long already or an order is pending."""
        if self.pending is None and not self.position:
            self.pending = self.order_target_percent(target=self.p.target)

    def go_flat(self) -> None:
        """Close the position, unless flat already or an order is pending."""
        if self.pending is None and self.position:
            self.pending = self.close()

    def rebalance(self, weight: float) -> None:
        """Move the position to ``weight`` of portfolio value (no order when one is pending)."""
        if self.pending is None:
            self.pending = self.order_target_percent(target=weight)
