"""Facts of the dependence over time: no linear autocorrelation, volatility clustering, slow
decay of the ACF of |r|, and the leverage effect."""

from __future__ import annotations

import numpy as np

from .. import distances as dist
from .base import ArrayFact, _median
from .estimators import arch_lm_pvalue, ljung_box_pvalue, power_law_exponent


class NoAutocorrelation(ArrayFact):
    """Absence of linear autocorrelation: returns are nearly uncorrelated at lags 1-20.

    Statistics: the largest |ACF(r)| over lags 1-20; the same minus the white-noise band
    1.96/sqrt(n); the p-value of the Ljung-Box test at lag 20 (statsmodels ``acorr_ljungbox``).

    Pass rule: on the median path the largest |ACF(r)| over lags 1-20 exceeds the
    white-noise band 1.96/sqrt(n) by less than 0.1.
    """

    name = "no_autocorrelation"
    statistics = {
        "max_abs_acf": "max |ACF(r)|, lags 1-20",
        "excess_over_noise": "max |ACF(r)| - 1.96/sqrt(n)",
        "ljung_box_pvalue": "Ljung-Box p-value, lag 20",
    }
    reference = "Cont (2001), fact 1; Ljung & Box (1978)"

    def compute_arrays(self, returns, paths):
        n = returns.shape[-1]
        lags = min(20, n - 2)
        top = np.abs(dist.acf(returns, lags)[:, 1:]).max(axis=-1)
        return {
            "max_abs_acf": top,
            "excess_over_noise": top - 1.96 / np.sqrt(n),
            "ljung_box_pvalue": ljung_box_pvalue(returns, lags),
        }

    def passes(self, real, synthetic):
        return _median(synthetic["excess_over_noise"]) < 0.1


class VolatilityClustering(ArrayFact):
    """Volatility clustering: large moves follow large moves (ACF of |r| and r^2, ARCH-LM).

    Statistics: the mean ACF of |r| and of r^2 over lags 1-10; the p-value of Engle's
    ARCH-LM test with 10 lags on the demeaned returns (statsmodels ``het_arch``).

    Pass rule: on the median path the mean ACF of |r| over lags 1-10 exceeds 0.1 and the
    ARCH-LM test rejects constant variance (p < 0.05).
    """

    name = "volatility_clustering"
    statistics = {
        "acf_abs_1_10": "mean ACF(|r|), lags 1-10",
        "acf_sq_1_10": "mean ACF(r^2), lags 1-10",
        "arch_lm_pvalue": "ARCH-LM p-value, 10 lags",
    }
    reference = "Cont (2001), fact 8; Engle (1982); Mandelbrot (1963)"

    def compute_arrays(self, returns, paths):
        return {
            "acf_abs_1_10": dist.acf(np.abs(returns), 10)[:, 1:].mean(axis=-1),
            "acf_sq_1_10": dist.acf(returns**2, 10)[:, 1:].mean(axis=-1),
            "arch_lm_pvalue": arch_lm_pvalue(returns, 10),
        }

    def passes(self, real, synthetic):
        return _median(synthetic["acf_abs_1_10"]) > 0.1 and _median(synthetic["arch_lm_pvalue"]) < 0.05


class SlowDecay(ArrayFact):
    """Slow decay of the ACF of |r|: it falls like a power law k^-beta with beta below 1.

    Statistics: beta, fitted by least squares on log ACF(|r|) against log k over the lags
    1-100 where the ACF is positive (undefined with fewer than 10 such lags); the mean ACF
    of |r| over lags 50-100.

    Pass rule: the median mean ACF of |r| over lags 50-100 exceeds 0.02 and the median
    beta lies between 0 and 1.
    """

    name = "slow_decay"
    statistics = {
        "decay_exponent": "power-law exponent beta, lags 1-100",
        "acf_abs_50_100": "mean ACF(|r|), lags 50-100",
    }
    reference = "Cont (2001), fact 9; Ding, Granger & Engle (1993)"

    def compute_arrays(self, returns, paths):
        n = returns.shape[-1]
        curve = dist.acf(np.abs(returns), min(100, n - 2))[:, 1:]
        far = curve[:, 49:100]
        return {
            "decay_exponent": power_law_exponent(curve),
            "acf_abs_50_100": far.mean(axis=-1) if far.shape[-1] else np.full(len(curve), np.nan),
        }

    def passes(self, real, synthetic):
        beta = _median(synthetic["decay_exponent"])
        return _median(synthetic["acf_abs_50_100"]) > 0.02 and 0 < beta < 1


class LeverageEffect(ArrayFact):
    """Leverage effect: falling prices raise future volatility, corr(r_t, r_{t+k}^2) < 0.

    Statistics: corr(r_t, r_{t+1}^2) and its mean over k = 1-10 (full-sample moments, the
    statsmodels ``ccf`` convention).

    Pass rule: the median path's mean corr(r_t, r_{t+k}^2) over k = 1-10 is below -0.02.
    """

    name = "leverage_effect"
    statistics = {"leverage_1": "corr(r_t, r_t+1^2)", "leverage_1_10": "mean corr(r_t, r_t+k^2), k 1-10"}
    reference = "Cont (2001), fact 10; Black (1976); Bouchaud, Matacz & Potters (2001)"

    def compute_arrays(self, returns, paths):
        curve = dist.leverage(returns, 10)[:, 1:]
        return {"leverage_1": curve[:, 0], "leverage_1_10": curve.mean(axis=-1)}

    def passes(self, real, synthetic):
        return _median(synthetic["leverage_1_10"]) < -0.02
