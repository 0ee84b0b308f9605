"""The built-in facts, in scorecard order, their ``register_facts`` hook and the fact lookup."""

from __future__ import annotations

from ..hookspecs import hookimpl
from .base import StylizedFact
from .dependence import LeverageEffect, NoAutocorrelation, SlowDecay, VolatilityClustering
from .distribution import AggregationalGaussianity, GainLossAsymmetry, HeavyTails
from .ohlcv import BarValidity, VolumeVolatility

BUILT_IN_FACTS: tuple[type[StylizedFact], ...] = (
    NoAutocorrelation,
    HeavyTails,
    GainLossAsymmetry,
    AggregationalGaussianity,
    VolatilityClustering,
    SlowDecay,
    LeverageEffect,
    VolumeVolatility,
    BarValidity,
)


@hookimpl
def register_facts(register):
    """The built-in stylized facts."""
    for fact in BUILT_IN_FACTS:
        register(fact)


def available_facts() -> dict[str, type[StylizedFact]]:
    """Every registered fact by name: built-ins in their order, then plugins' alphabetically."""
    from ..registry import get_registry

    found = {name: info.obj for name, info in get_registry().facts().items()}
    order = [f.name for f in BUILT_IN_FACTS if f.name in found]
    order += sorted(set(found) - set(order))
    return {name: found[name] for name in order}
