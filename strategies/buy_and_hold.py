"""Buy on the first bar, hold to the end."""

from __future__ import annotations

from .base import TargetWeightStrategy


class BuyAndHold(TargetWeightStrategy):
    """Buy on the first bar and hold to the end (the benchmark every strategy must beat).

    Parameters
    ----------
    target : float
        Fraction of portfolio value invested (default 0.99).
    """

    def next(self) -> None:
        self.go_long()
