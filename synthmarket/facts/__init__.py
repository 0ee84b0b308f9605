"""Stylized facts of daily returns, computed on real data and on every synthetic path; the scorecard.

A fact is a :class:`StylizedFact` subclass: a ``name``, a docstring whose first line is its
description and whose ``Pass rule:`` paragraph is its rule, the ``statistics`` it reports,
``compute(returns, bars)`` for one series and ``passes(real, synthetic)``. Facts come from
the plugin registry: the nine below are declared under the entry-point group
``synthmarket.facts`` in pyproject.toml, a plugin's through that group or the hook
``register_facts``. Built-in facts derive from :class:`ArrayFact`,
which computes every path at once with numpy, so 1,000 paths cost about as much as one.

:func:`scorecard` computes every fact on the real bars and on each synthetic path, reports the
real value, the synthetic median and 5-95% band of each statistic and a verdict per fact,
together with the distances of :mod:`synthmarket.distances` and the discriminative,
memorisation and predictive scores. See ``docs/facts.md`` for the reference.

Modules: ``base`` (the base classes), ``estimators`` (the vectorised statistics),
``distribution``, ``dependence`` and ``ohlcv`` (the built-in facts by theme), ``builtin``
(their registration), ``evaluate`` (:func:`scorecard`), ``scores`` (distances and window
scores), ``results`` (:class:`Scorecard`) and ``figure`` (its plot). Each name below is imported
from its module on first use, so that a fact's module costs only its own imports.
"""

from __future__ import annotations

from ..lazy import lazy_attributes

#: Public name -> the module of this package that defines it.
_MODULES = {
    **dict.fromkeys(("HORIZONS", "ArrayFact", "StylizedFact", "paths_from_bars"), ".base"),
    **dict.fromkeys(("BUILT_IN_FACTS", "available_facts", "register_facts"), ".builtin"),
    **dict.fromkeys(("LeverageEffect", "NoAutocorrelation", "SlowDecay", "VolatilityClustering"), ".dependence"),
    **dict.fromkeys(("AggregationalGaussianity", "GainLossAsymmetry", "HeavyTails"), ".distribution"),
    **dict.fromkeys(
        (
            "TAIL_FRACTION",
            "arch_lm_pvalue",
            "excess_kurtosis",
            "hill_index",
            "invalid_bar_counts",
            "jarque_bera_pvalue",
            "ljung_box_pvalue",
            "power_law_exponent",
            "row_correlation",
            "skewness",
            "volume_surprise",
        ),
        ".estimators",
    ),
    **dict.fromkeys(("MIN_STEPS", "scorecard"), ".evaluate"),
    "plot_scorecard": ".figure",
    **dict.fromkeys(("BarValidity", "VolumeVolatility"), ".ohlcv"),
    **dict.fromkeys(("FactResult", "Scorecard"), ".results"),
    "SCORES": ".scores",
}

__getattr__, __dir__ = lazy_attributes(__name__, _MODULES)

__all__ = [
    "AggregationalGaussianity",
    "ArrayFact",
    "BUILT_IN_FACTS",
    "BarValidity",
    "FactResult",
    "GainLossAsymmetry",
    "HORIZONS",
    "HeavyTails",
    "LeverageEffect",
    "MIN_STEPS",
    "NoAutocorrelation",
    "SCORES",
    "Scorecard",
    "SlowDecay",
    "StylizedFact",
    "TAIL_FRACTION",
    "VolatilityClustering",
    "VolumeVolatility",
    "arch_lm_pvalue",
    "available_facts",
    "excess_kurtosis",
    "hill_index",
    "invalid_bar_counts",
    "jarque_bera_pvalue",
    "ljung_box_pvalue",
    "paths_from_bars",
    "plot_scorecard",
    "power_law_exponent",
    "register_facts",
    "row_correlation",
    "scorecard",
    "skewness",
    "volume_surprise",
]
