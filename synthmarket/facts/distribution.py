"""Facts of the return distribution: heavy tails, gain/loss asymmetry, aggregational Gaussianity."""

from __future__ import annotations

import numpy as np

from .. import distances as dist
from .base import HORIZONS, ArrayFact, _median
from .estimators import excess_kurtosis, hill_index, jarque_bera_pvalue, skewness


class HeavyTails(ArrayFact):
    """Heavy tails: returns have excess kurtosis and power-law tails (Hill index about 2-5).

    Statistics: excess kurtosis; the Hill tail index of the left and of the right tail
    (largest 5% of losses and of gains); the p-value of the Jarque-Bera normality test.

    Pass rule: on the median path the excess kurtosis exceeds 1 and both Hill tail
    indices are below 4.
    """

    name = "heavy_tails"
    statistics = {
        "excess_kurtosis": "excess kurtosis",
        "hill_left": "Hill index, left tail (5%)",
        "hill_right": "Hill index, right tail (5%)",
        "jarque_bera_pvalue": "Jarque-Bera p-value",
    }
    reference = "Cont (2001), fact 3; Hill (1975); Jarque & Bera (1980)"

    def compute_arrays(self, returns, paths):
        return {
            "excess_kurtosis": excess_kurtosis(returns),
            "hill_left": hill_index(-returns),
            "hill_right": hill_index(returns),
            "jarque_bera_pvalue": jarque_bera_pvalue(returns),
        }

    def passes(self, real, synthetic):
        return (
            _median(synthetic["excess_kurtosis"]) > 1
            and _median(synthetic["hill_left"]) < 4
            and _median(synthetic["hill_right"]) < 4
        )


class GainLossAsymmetry(ArrayFact):
    """Gain/loss asymmetry: large drawdowns are more frequent than equally large rises.

    Statistics: the skewness of daily and of overlapping 20-day log returns; the right minus
    the left Hill tail index of daily returns (positive when the loss tail is the heavier
    one). Only the 20-day skewness is judged: the drawdowns of the fact build up over days,
    and on the S&P 500 the daily skewness and the tail-index gap change sign from one
    decade to the next (1999-2008: daily skewness +0.1) while the 20-day skewness stays
    clearly negative (about -0.8 to -1.3 in each decade).

    Pass rule: the median path's skewness of 20-day returns is below -0.1.
    """

    name = "gain_loss_asymmetry"
    statistics = {
        "skewness_1": "skewness, daily returns",
        "skewness_20": "skewness, 20-day returns",
        "tail_index_gap": "Hill right - Hill left",
    }
    reference = "Cont (2001), fact 4; Jensen, Johansen & Simonsen (2003)"

    def compute_arrays(self, returns, paths):
        return {
            "skewness_1": skewness(returns),
            "skewness_20": skewness(dist.rolling_sums(returns, 20)),
            "tail_index_gap": hill_index(returns) - hill_index(-returns),
        }

    def passes(self, real, synthetic):
        return _median(synthetic["skewness_20"]) < -0.1


class AggregationalGaussianity(ArrayFact):
    """Aggregational Gaussianity: returns over longer horizons look more Gaussian.

    Statistics: excess kurtosis of the overlapping 1-, 5-, 20- and 60-day log returns.

    Pass rule: the median daily excess kurtosis exceeds 1 and the median 60-day excess
    kurtosis is below three quarters of it.
    """

    name = "aggregational_gaussianity"
    statistics = {f"kurtosis_{h}": f"excess kurtosis, {h}-day returns" for h in HORIZONS}
    reference = "Cont (2001), fact 5"

    def compute_arrays(self, returns, paths):
        n = returns.shape[-1]
        out = {}
        for h in HORIZONS:
            if h < n - 2:
                out[f"kurtosis_{h}"] = excess_kurtosis(dist.rolling_sums(returns, h))
            else:
                out[f"kurtosis_{h}"] = np.full(returns.shape[0], np.nan)
        return out

    def passes(self, real, synthetic):
        daily, longest = _median(synthetic["kurtosis_1"]), _median(synthetic[f"kurtosis_{HORIZONS[-1]}"])
        return daily > 1 and longest < 0.75 * daily
