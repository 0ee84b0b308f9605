"""Stylized facts of daily returns, computed on real data and on every synthetic path; the scorecard.

A fact is a :class:`StylizedFact` subclass: a ``name``, a docstring whose first line is its
description and whose ``Pass rule:`` paragraph is its rule, the ``statistics`` it reports,
``compute(returns, bars)`` for one series and ``passes(real, synthetic)``. Facts come from
the plugin registry (hook ``register_facts``); this module is itself the built-in plugin
``facts`` and registers the nine facts below. Built-in facts derive from :class:`ArrayFact`,
which computes every path at once with numpy, so 1,000 paths cost about as much as one.

:func:`scorecard` computes every fact on the real bars and on each synthetic path, reports the
real value, the synthetic median and 5-95% band of each statistic and a verdict per fact,
together with the distances of :mod:`synthmarket.distances` and the discriminative,
memorisation and predictive scores. See ``docs/facts.md`` for the reference.
"""

from __future__ import annotations

import abc
import html
import time
import warnings
from dataclasses import dataclass, field
from typing import Any, ClassVar, Iterable

import numpy as np
import pandas as pd
from scipy import signal, stats

from . import distances as dist
from .bars import VOLUME_ALPHA
from .errors import ConfigError, DataError, PluginError, SynthmarketError
from .hookspecs import hookimpl
from .paths import Paths

MIN_STEPS = 100
TAIL_FRACTION = 0.05
HORIZONS = (1, 5, 20, 60)
SCORES = {
    "memorisation": dist.memorisation_score,
    "discriminative": dist.discriminative_score,
    "predictive": dist.predictive_score,
}


# --------------------------------------------------------------------------- statistics


def _central_moments(x: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    c = x - x.mean(axis=-1, keepdims=True)
    c2 = c * c
    return c2.mean(axis=-1), (c2 * c).mean(axis=-1), (c2 * c2).mean(axis=-1)


def skewness(x: np.ndarray) -> np.ndarray:
    """Sample skewness along the last axis (biased, as ``scipy.stats.skew``)."""
    m2, m3, _ = _central_moments(x)
    with np.errstate(invalid="ignore", divide="ignore"):
        return m3 / (m2 * np.sqrt(m2))


def excess_kurtosis(x: np.ndarray) -> np.ndarray:
    """Sample excess kurtosis along the last axis (biased, Fisher, as ``scipy.stats.kurtosis``)."""
    m2, _, m4 = _central_moments(x)
    with np.errstate(invalid="ignore", divide="ignore"):
        return m4 / (m2 * m2) - 3.0


def hill_index(x: np.ndarray, fraction: float = TAIL_FRACTION) -> np.ndarray:
    """Hill estimator of the right-tail index along the last axis.

    With ``k = max(10, fraction * n)`` and ``u`` the (k+1)-th largest value,
    ``alpha = k / sum(log(x_(i) / u))`` over the k largest values: the maximum-likelihood
    Pareto index of the exceedances over ``u``. NaN when ``u <= 0``. For the left tail pass
    ``-x``.
    """
    x = np.asarray(x, dtype=float)
    n = x.shape[-1]
    k = min(max(10, int(fraction * n)), n - 1)
    top = np.partition(x, n - k - 1, axis=-1)[..., n - k - 1 :]
    threshold = top.min(axis=-1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        logs = np.log(np.where(threshold > 0, top / threshold, np.nan))
        return k / logs.sum(axis=-1)


def ljung_box_pvalue(x: np.ndarray, lags: int) -> np.ndarray:
    """p-value of the Ljung-Box test at ``lags`` along the last axis (as ``acorr_ljungbox``)."""
    n = x.shape[-1]
    rho = dist.acf(x, lags)[..., 1:]
    q = n * (n + 2) * np.sum(rho**2 / (n - np.arange(1, rho.shape[-1] + 1)), axis=-1)
    return stats.chi2.sf(q, rho.shape[-1])


def jarque_bera_pvalue(x: np.ndarray) -> np.ndarray:
    """p-value of the Jarque-Bera normality test along the last axis (as ``scipy.stats.jarque_bera``)."""
    n = x.shape[-1]
    m2, m3, m4 = _central_moments(x)
    with np.errstate(invalid="ignore", divide="ignore"):
        skew2 = m3 * m3 / (m2 * m2 * m2)
        kurt = m4 / (m2 * m2) - 3.0
    return stats.chi2.sf(n / 6.0 * (skew2 + kurt * kurt / 4.0), 2)


def arch_lm_pvalue(x: np.ndarray, nlags: int = 10, chunk: int = 100) -> np.ndarray:
    """p-value of Engle's ARCH-LM test on demeaned ``x`` along the last axis (as ``het_arch``).

    Regresses e_t^2 on a constant and e_{t-1}^2..e_{t-nlags}^2 (e = x - mean) for every row at
    once (``chunk`` rows at a time); LM = (n - nlags) R^2 is chi-squared with ``nlags`` degrees
    of freedom.
    """
    x = np.atleast_2d(np.asarray(x, dtype=float))
    out = np.empty(x.shape[0])
    for lo in range(0, x.shape[0], chunk):
        e2 = x[lo : lo + chunk] - x[lo : lo + chunk].mean(axis=-1, keepdims=True)
        e2 = e2 * e2
        scale = e2.mean(axis=-1, keepdims=True)
        e2 = e2 / np.where(scale > 0, scale, 1.0)
        windows = np.lib.stride_tricks.sliding_window_view(e2, nlags + 1, axis=-1)  # (p, m, nlags+1)
        y = windows[..., -1]
        design = np.concatenate([np.ones(y.shape + (1,)), windows[..., -2::-1]], axis=-1)
        xtx = design.swapaxes(-1, -2) @ design
        xty = (design.swapaxes(-1, -2) @ y[..., None])[..., 0]
        with np.errstate(invalid="ignore", divide="ignore"):
            beta = np.linalg.solve(xtx + 1e-12 * np.eye(nlags + 1), xty[..., None])[..., 0]
            yc = y - y.mean(axis=-1, keepdims=True)
            sst = (yc * yc).sum(axis=-1)
            ssr = (y * y).sum(axis=-1) - (beta * xty).sum(axis=-1)
            r2 = np.where(sst > 0, 1.0 - ssr / sst, 0.0)
        out[lo : lo + chunk] = stats.chi2.sf(y.shape[-1] * r2, nlags)
    return out


def power_law_exponent(curve: np.ndarray, min_points: int = 10) -> np.ndarray:
    """beta of curve[k] ~ c k^-beta, fitted by least squares in log-log on lags with curve > 0.

    ``curve`` holds lags 1..m along the last axis. NaN when fewer than ``min_points`` lags are
    positive.
    """
    curve = np.atleast_2d(curve)
    mask = curve > 0
    logk = np.log(np.arange(1, curve.shape[-1] + 1))[None, :] * mask
    with np.errstate(invalid="ignore", divide="ignore"):
        logc = np.where(mask, np.log(np.where(mask, curve, 1.0)), 0.0)
        w = mask.sum(axis=-1)
        sx, sy = logk.sum(axis=-1), logc.sum(axis=-1)
        sxx, sxy = (logk * logk).sum(axis=-1), (logk * logc).sum(axis=-1)
        slope = (w * sxy - sx * sy) / (w * sxx - sx * sx)
    return np.where(w >= min_points, -slope, np.nan)


def volume_surprise(volume: np.ndarray) -> np.ndarray:
    """log1p(V_t) minus its exponential moving level over the bars before t, for t >= 1.

    The volume channel of :func:`synthmarket.bars.to_features`, computed for every row of a
    (paths, steps) array at once; the result has one column fewer.
    """
    x = np.log1p(np.maximum(np.asarray(volume, dtype=float), 0.0))
    a = VOLUME_ALPHA
    level, _ = signal.lfilter([a], [1.0, -(1.0 - a)], x, axis=-1, zi=(1.0 - a) * x[..., :1])
    return x[..., 1:] - level[..., :-1]


def row_correlation(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Pearson correlation of each row of ``x`` with the same row of ``y``."""
    xc = x - x.mean(axis=-1, keepdims=True)
    yc = y - y.mean(axis=-1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        return (xc * yc).sum(axis=-1) / np.sqrt((xc * xc).sum(axis=-1) * (yc * yc).sum(axis=-1))


def invalid_bar_counts(paths: Paths, rtol: float = 1e-12) -> np.ndarray:
    """Number of bars per path that break L <= min(O,C) <= max(O,C) <= H, prices > 0, V >= 0."""
    o, h, l, c, v = paths.open, paths.high, paths.low, paths.close, paths.volume
    slack = rtol * np.abs(h)
    finite = np.isfinite(o) & np.isfinite(h) & np.isfinite(l) & np.isfinite(c)
    ok = (
        finite
        & (l > 0)
        & (l <= np.minimum(o, c) + slack)
        & (np.maximum(o, c) <= h + slack)
        & ~(v < 0)
    )
    return (~ok).sum(axis=-1)


def _median(a: np.ndarray) -> float:
    a = np.asarray(a, dtype=float)
    return float(np.nanmedian(a)) if np.isfinite(a).any() else float("nan")


# --------------------------------------------------------------------------- the fact classes


def paths_from_bars(bars: pd.DataFrame) -> Paths:
    """One real OHLCV DataFrame as a one-path :class:`Paths` (volume 0 when absent)."""
    missing = [k for k in ("open", "high", "low", "close") if k not in bars.columns]
    if missing:
        raise DataError(f"Bars lack column(s) {', '.join(missing)}; load them with synthmarket.data.load_data.")
    arrays = {k: np.array(bars[k], dtype=float)[None, :] for k in ("open", "high", "low", "close")}
    volume = np.array(bars["volume"], dtype=float) if "volume" in bars.columns else np.zeros(len(bars))
    index = bars.index if isinstance(bars.index, pd.DatetimeIndex) else pd.bdate_range("2000-01-03", periods=len(bars))
    return Paths(**arrays, volume=np.nan_to_num(volume)[None, :], dates=index)


class StylizedFact(abc.ABC):
    """Base class of a stylized fact. Subclass it and register it with the ``register_facts`` hook.

    Class attributes: ``name`` (its key in the scorecard), ``statistics`` (statistic key ->
    label, in display order), ``reference`` (the literature), ``needs_bars`` (``compute``
    gets the OHLCV bars, otherwise ``bars`` is None) and ``needs_volume``. The docstring's
    first line is the description; its paragraph starting ``Pass rule:`` is the rule shown
    in the scorecard. ``max_paths`` caps how many paths a costly fact is computed on (a
    seeded subsample; the scorecard says so).
    """

    name: ClassVar[str] = ""
    statistics: ClassVar[dict[str, str]] = {}
    reference: ClassVar[str] = ""
    needs_bars: ClassVar[bool] = False
    needs_volume: ClassVar[bool] = False
    max_paths: ClassVar[int | None] = None

    @classmethod
    def description(cls) -> str:
        """The first line of the class docstring."""
        doc = (cls.__doc__ or "").strip()
        return doc.splitlines()[0].strip() if doc else cls.name

    @classmethod
    def rule(cls) -> str:
        """The docstring paragraph that starts with ``Pass rule:`` (without those words)."""
        lines, found = [], False
        for line in (cls.__doc__ or "").splitlines():
            text = line.strip()
            if text.startswith("Pass rule:"):
                found, text = True, text[len("Pass rule:") :].strip()
            elif found and not text:
                break
            if found:
                lines.append(text)
        return " ".join(lines)

    @abc.abstractmethod
    def compute(self, returns: np.ndarray, bars: pd.DataFrame | None = None) -> dict[str, float]:
        """Statistics of one series of log returns (and its bars, when the fact needs them)."""

    def compute_paths(self, returns: np.ndarray, paths: Paths | None = None) -> dict[str, np.ndarray]:
        """Statistics of every row of a (paths, steps) return array; one array per statistic."""
        with_bars = self.needs_bars and paths is not None
        rows = [self.compute(returns[i], paths.path(i) if with_bars else None) for i in range(len(returns))]
        return {key: np.array([row[key] for row in rows], dtype=float) for key in self.statistics}

    @abc.abstractmethod
    def passes(self, real: dict[str, float], synthetic: dict[str, np.ndarray]) -> bool:
        """The pass rule of the docstring, applied to the real values and the per-path values."""

    def not_applicable(self, real: pd.DataFrame | None, synthetic: Paths | None) -> str | None:
        """Why this fact cannot be judged on these data (None when it can)."""
        if (self.needs_bars or self.needs_volume) and synthetic is None:
            return "the synthetic data are returns without bars"
        if self.needs_volume:
            if real is None or "volume" not in real.columns or not (real["volume"] > 0).any():
                return "the real data carry no volume"
            if synthetic is None or not (synthetic.volume > 0).any():
                return "the synthetic paths carry no volume"
        return None


class ArrayFact(StylizedFact):
    """A fact computed on many paths at once from arrays; every built-in fact is one."""

    @abc.abstractmethod
    def compute_arrays(self, returns: np.ndarray, paths: Paths | None) -> dict[str, np.ndarray]:
        """Statistics of each row of ``returns`` (paths, steps); ``paths`` holds the same paths' bars."""

    def compute(self, returns: np.ndarray, bars: pd.DataFrame | None = None) -> dict[str, float]:
        one = None if bars is None else paths_from_bars(bars)
        out = self.compute_arrays(np.asarray(returns, dtype=float)[None, :], one)
        return {key: float(value[0]) for key, value in out.items()}

    def compute_paths(self, returns: np.ndarray, paths: Paths | None = None) -> dict[str, np.ndarray]:
        return self.compute_arrays(np.asarray(returns, dtype=float), paths)


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
    statistics = {"decay_exponent": "power-law exponent beta, lags 1-100", "acf_abs_50_100": "mean ACF(|r|), lags 50-100"}
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


class VolumeVolatility(ArrayFact):
    """Volume-volatility correlation: trading volume rises with the size of price moves.

    Statistics: the correlation of |r_t| with the volume surprise log1p(V_t) minus its
    moving level (the volume channel of ``synthmarket.bars``). Judged only when both the
    real data and the paths carry volume.

    Pass rule: the median path's correlation exceeds 0.1.
    """

    name = "volume_volatility"
    statistics = {"corr_abs_return_volume": "corr(|r_t|, volume surprise_t)"}
    reference = "Cont (2001), fact 11; Karpoff (1987)"
    needs_bars = True
    needs_volume = True

    def compute_arrays(self, returns, paths):
        if paths is None:
            return {"corr_abs_return_volume": np.full(returns.shape[0], np.nan)}
        moves = np.abs(np.diff(np.log(paths.close), axis=-1))
        return {"corr_abs_return_volume": row_correlation(moves, volume_surprise(paths.volume))}

    def passes(self, real, synthetic):
        return _median(synthetic["corr_abs_return_volume"]) > 0.1


class BarValidity(ArrayFact):
    """Bar validity: every bar is internally consistent (L <= min(O,C) <= max(O,C) <= H).

    Statistics: the number of bars per path with a non-finite or non-positive price, a low
    above the open or close, a high below them, or a negative volume.

    Pass rule: no path has an invalid bar.
    """

    name = "bar_validity"
    statistics = {"invalid_bars": "invalid bars per path"}
    reference = "OHLC definition; synthmarket.bars"
    needs_bars = True

    def compute_arrays(self, returns, paths):
        if paths is None:
            return {"invalid_bars": np.full(returns.shape[0], np.nan)}
        return {"invalid_bars": invalid_bar_counts(paths).astype(float)}

    def passes(self, real, synthetic):
        counts = synthetic["invalid_bars"]
        return bool(np.isfinite(counts).all() and np.all(counts == 0))


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
    from .registry import get_registry

    found = {name: info.obj for name, info in get_registry().facts().items()}
    order = [f.name for f in BUILT_IN_FACTS if f.name in found]
    order += sorted(set(found) - set(order))
    return {name: found[name] for name in order}


# --------------------------------------------------------------------------- the scorecard


@dataclass
class FactResult:
    """One fact judged: the real statistics, the per-path statistics and the verdict.

    ``passed`` is None when the fact does not apply (``note`` says why); ``holds_on_real``
    applies the same rule to the real series alone.
    """

    name: str
    description: str
    rule: str
    labels: dict[str, str]
    real: dict[str, float]
    synthetic: dict[str, np.ndarray]
    passed: bool | None
    holds_on_real: bool | None
    note: str = ""
    seconds: float = 0.0


def _band(values: np.ndarray) -> tuple[float, float, float]:
    values = np.asarray(values, dtype=float)
    values = values[np.isfinite(values)]
    if values.size == 0:
        return (float("nan"),) * 3
    p5, med, p95 = np.percentile(values, [5, 50, 95])
    return float(med), float(p5), float(p95)


def _verdict(passed: bool | None) -> str:
    return "n/a" if passed is None else ("pass" if passed else "FAIL")


def _fmt(value: Any) -> str:
    if isinstance(value, (bool, np.bool_)):
        return "yes" if value else "no"
    if isinstance(value, (float, np.floating)):
        if not np.isfinite(value):
            return "-"
        return f"{value:.4g}"
    return "" if value is None else str(value)


def _markdown_table(frame: pd.DataFrame) -> str:
    header = "| " + " | ".join(map(str, frame.columns)) + " |"
    rule = "|" + "|".join("---" for _ in frame.columns) + "|"
    rows = ["| " + " | ".join(_fmt(v).replace("|", "\\|") for v in row) + " |" for row in frame.itertuples(index=False)]
    return "\n".join([header, rule, *rows])


@dataclass
class Scorecard:
    """The verdict on a set of synthetic paths: stylized facts, distances and scores.

    Attributes
    ----------
    results : list of FactResult
        One per fact, in registry order.
    distances : dict
        :func:`synthmarket.distances.return_distances`, the DY metrics and the window scores.
    n_paths, n_steps : int
        Size of the synthetic set.
    notes : list of str
        What was subsampled or skipped, and warnings (memorisation).
    timings : dict
        Seconds spent per fact and per distance group.
    """

    results: list[FactResult]
    distances: dict[str, float]
    n_paths: int
    n_steps: int
    notes: list[str] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)
    curves: dict[str, Any] = field(default_factory=dict, repr=False)

    @property
    def passed(self) -> bool:
        """True when every applicable fact passes."""
        return all(r.passed is not False for r in self.results)

    @property
    def failed(self) -> list[str]:
        return [r.name for r in self.results if r.passed is False]

    @property
    def memorised(self) -> bool | None:
        """True when the memorisation score flags copied training windows (None if not computed)."""
        share = self.distances.get("memorisation_copy_share")
        return None if share is None else share > dist.MEMORISATION_LIMIT

    def __getitem__(self, name: str) -> FactResult:
        for result in self.results:
            if result.name == name:
                return result
        raise KeyError(f"No fact {name!r} in this scorecard; facts: {', '.join(r.name for r in self.results)}")

    @property
    def table(self) -> pd.DataFrame:
        """One row per statistic: fact, statistic, real value, synthetic median and 5-95% band, verdict."""
        rows = []
        for r in self.results:
            for key, label in r.labels.items():
                med, p5, p95 = _band(r.synthetic.get(key, np.array([])))
                rows.append(
                    {
                        "fact": r.name,
                        "statistic": label,
                        "real": r.real.get(key, float("nan")),
                        "median": med,
                        "p5": p5,
                        "p95": p95,
                        "verdict": _verdict(r.passed),
                    }
                )
        return pd.DataFrame(rows, columns=["fact", "statistic", "real", "median", "p5", "p95", "verdict"])

    @property
    def verdicts(self) -> pd.DataFrame:
        """One row per fact: verdict, whether the rule holds on the real data, the rule itself."""
        return pd.DataFrame(
            [
                {
                    "fact": r.name,
                    "verdict": _verdict(r.passed),
                    "holds on real": _verdict(r.holds_on_real),
                    "rule": r.rule if r.passed is not None else f"not judged: {r.note}",
                }
                for r in self.results
            ]
        )

    def summary(self) -> str:
        """One line: the verdict and the failed facts."""
        judged = [r for r in self.results if r.passed is not None]
        n_pass = sum(bool(r.passed) for r in judged)
        line = f"{n_pass}/{len(judged)} stylized facts pass on {self.n_paths} paths x {self.n_steps} steps"
        if self.failed:
            line += f"; failed: {', '.join(self.failed)}"
        if self.memorised:
            line += "; WARNING: memorisation (synthetic windows copy real ones)"
        return line

    def to_dict(self) -> dict:
        """Plain data for JSON: verdicts, statistics (real, median, band) and distances."""
        return {
            "passed": self.passed,
            "memorised": self.memorised,
            "n_paths": self.n_paths,
            "n_steps": self.n_steps,
            "facts": {
                r.name: {"passed": r.passed, "holds_on_real": r.holds_on_real, "rule": r.rule, "note": r.note}
                for r in self.results
            },
            "statistics": self.table.replace({np.nan: None}).to_dict(orient="records"),
            "distances": self.distances,
            "notes": self.notes,
        }

    def to_markdown(self) -> str:
        """The scorecard as a Markdown document (verdicts, statistics, distances, notes)."""
        parts = [
            "# Stylized-facts scorecard",
            "",
            f"**{'PASS' if self.passed else 'FAIL'}** - {self.summary()}.",
            "",
            "## Verdicts",
            "",
            _markdown_table(self.verdicts),
            "",
            "## Statistics (real value; synthetic median and 5-95% band over paths)",
            "",
            _markdown_table(self.table),
            "",
            "## Distances and scores",
            "",
            _markdown_table(pd.DataFrame({"distance": list(self.distances), "value": list(self.distances.values())})),
        ]
        if self.notes:
            parts += ["", "## Notes", ""] + [f"- {note}" for note in self.notes]
        return "\n".join(parts) + "\n"

    def _repr_html_(self) -> str:
        colour = "green" if self.passed else "crimson"
        distances = pd.DataFrame({"value": self.distances}).to_html(float_format=_fmt)
        notes = "".join(f"<li>{html.escape(n)}</li>" for n in self.notes)
        return (
            f"<div><p><b style='color:{colour}'>{'PASS' if self.passed else 'FAIL'}</b> "
            f"{html.escape(self.summary())}</p>"
            f"{self.verdicts.to_html(index=False)}{self.table.to_html(index=False, float_format=_fmt)}"
            f"{distances}{f'<ul>{notes}</ul>' if notes else ''}</div>"
        )

    def __repr__(self) -> str:
        return f"Scorecard({self.summary()})"

    def plot(self, n_sample_paths: int = 5):
        """One figure: density and QQ, ACFs, leverage, kurtosis by horizon and sample paths."""
        return plot_scorecard(self, n_sample_paths)


def _band_plot(ax, lags, quantiles, real, colour="tab:blue") -> None:
    ax.fill_between(lags, quantiles[0], quantiles[2], color=colour, alpha=0.25, label="synthetic 5-95%")
    ax.plot(lags, quantiles[1], color=colour, label="synthetic median")
    ax.plot(lags, real, color="black", lw=1.2, label="real")
    ax.axhline(0, color="grey", lw=0.5)


def plot_scorecard(card: Scorecard, n_sample_paths: int = 5):
    """The scorecard's figure (see :meth:`Scorecard.plot`); a matplotlib Figure, Agg backend."""
    from matplotlib.figure import Figure

    c = card.curves
    fig = Figure(figsize=(15, 12), layout="constrained")
    axes = fig.subplots(3, 3)
    real, synth = c["real_returns"], c["synthetic_sample"]

    ax = axes[0, 0]
    lo, hi = np.percentile(np.r_[real, synth], [0.05, 99.95])
    bins = np.linspace(lo, hi, 121)
    ax.hist(synth, bins=bins, density=True, histtype="stepfilled", alpha=0.4, label="synthetic")
    ax.hist(real, bins=bins, density=True, histtype="step", color="black", label="real")
    ax.set_yscale("log")
    ax.set(title="Return density (log scale)", xlabel="daily log return")
    ax.legend()

    ax = axes[0, 1]
    q = np.linspace(0.001, 0.999, 400)
    qr, qs = np.quantile(real, q), np.quantile(synth, q)
    ax.plot(qr, qs, ".", ms=3)
    ax.plot([qr[0], qr[-1]], [qr[0], qr[-1]], color="black", lw=1)
    ax.set(title="QQ: synthetic against real", xlabel="real quantile", ylabel="synthetic quantile")

    for ax, key, title in (
        (axes[0, 2], "acf_r", "ACF of r"),
        (axes[1, 0], "acf_abs", "ACF of |r|"),
        (axes[1, 1], "acf_sq", "ACF of r$^2$"),
        (axes[1, 2], "leverage", "Leverage corr(r$_t$, r$_{t+k}^2$)"),
    ):
        curve = c["real_curves"][key]
        m = min(50, curve.size - 1) if key in ("acf_r", "leverage") else curve.size - 1
        lags = np.arange(1, m + 1)
        _band_plot(ax, lags, c["synthetic_curves"][key][:, 1 : m + 1], curve[1 : m + 1])
        ax.set(title=title, xlabel="lag k (days)")
    axes[0, 2].legend()

    ax = axes[2, 0]
    horizons = sorted(c["kurtosis_synthetic"])
    band = np.array([c["kurtosis_synthetic"][h] for h in horizons]).T
    _band_plot(ax, horizons, band, [c["kurtosis_real"][h] for h in horizons])
    ax.set_xscale("log")
    ax.set_xticks(horizons, [str(h) for h in horizons])
    ax.set(title="Excess kurtosis against horizon", xlabel="horizon (days)")

    ax = fig.add_subplot(3, 3, (8, 9))
    axes[2, 1].remove()
    axes[2, 2].remove()
    sample = c["sample_log_paths"][:n_sample_paths]
    steps = sample.shape[1]
    real_close = c["real_close"][-(steps + 1) :]
    ax.plot(np.log(real_close / real_close[0]), color="black", lw=1.4, label=f"real (last {steps} days)")
    for i, path in enumerate(sample):
        ax.plot(np.r_[0.0, path], lw=0.8, alpha=0.8, label="synthetic" if i == 0 else None)
    ax.set(title="Sample paths (cumulative log return)", xlabel="step")
    ax.legend()
    fig.suptitle(f"Stylized facts: {card.summary()}", fontsize=11)
    return fig


def _as_returns(synthetic: Paths | np.ndarray) -> tuple[np.ndarray, Paths | None]:
    if isinstance(synthetic, Paths):
        return synthetic.log_returns(), synthetic
    array = np.asarray(synthetic, dtype=float)
    if array.ndim != 2:
        raise DataError(f"Synthetic data must be Paths or a (paths, steps) array of log returns; got shape {array.shape}.")
    return array, None


def _fact_classes(facts: Iterable[str | type[StylizedFact]] | None) -> list[type[StylizedFact]]:
    """Registered facts, or the named ones (registry names or ``module:Class`` references)."""
    from .registry import get_registry

    if facts is None:
        return list(available_facts().values())
    chosen = []
    for fact in facts:
        if isinstance(fact, type) and issubclass(fact, StylizedFact):
            chosen.append(fact)
        else:
            chosen.append(get_registry().get("fact", str(fact)))
    return chosen


def _judge(fact: StylizedFact, real: dict, synthetic: dict) -> tuple[bool, bool]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        passed = bool(fact.passes(real, synthetic))
        holds = bool(fact.passes(real, {k: np.array([v]) for k, v in real.items()}))
    return passed, holds


def _run_fact(
    cls: type[StylizedFact], real_bars: pd.DataFrame, real_returns: np.ndarray, returns: np.ndarray,
    paths: Paths | None, rng: np.random.Generator,
) -> FactResult:
    start = time.perf_counter()
    fact = cls()
    common = dict(name=cls.name, description=cls.description(), rule=cls.rule(), labels=dict(cls.statistics))
    reason = fact.not_applicable(real_bars, paths)
    if reason is not None:
        return FactResult(**common, real={}, synthetic={}, passed=None, holds_on_real=None, note=reason)
    note = ""
    total = returns.shape[0]
    if cls.max_paths is not None and total > cls.max_paths:
        chosen = np.sort(rng.choice(total, cls.max_paths, replace=False))
        returns = returns[chosen]
        paths = paths.subset(chosen) if paths is not None else None
        note = f"computed on {cls.max_paths} randomly chosen paths of {total}"
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            real = {k: float(v) for k, v in fact.compute(real_returns, real_bars if cls.needs_bars else None).items()}
            synthetic = {k: np.asarray(v, dtype=float) for k, v in fact.compute_paths(returns, paths).items()}
        passed, holds = _judge(fact, real, synthetic)
    except SynthmarketError:
        raise
    except Exception as exc:
        if cls in BUILT_IN_FACTS:
            raise
        raise PluginError(
            f"The stylized fact {cls.name!r} ({cls.__module__}.{cls.__qualname__}) failed: {type(exc).__name__}: "
            f"{exc}. Fix that plugin, choose other facts (--fact), or leave the plugin out with "
            f"SYNTHMARKET_LOAD_PLUGINS."
        ) from exc
    return FactResult(
        **common, real=real, synthetic=synthetic, passed=passed, holds_on_real=holds, note=note,
        seconds=time.perf_counter() - start,
    )


def _quantile_curves(curves: np.ndarray) -> np.ndarray:
    return np.percentile(curves, [5, 50, 95], axis=0)


def _distances_and_curves(
    real: pd.DataFrame, real_returns: np.ndarray, returns: np.ndarray, max_lag: int, wanted: set[str], seed: int,
    timings: dict[str, float], notes: list[str], rng: np.random.Generator,
) -> tuple[dict[str, float], dict[str, Any]]:
    """The distances and window scores, and what the figure draws (timings and notes filled in)."""
    start = time.perf_counter()
    lag = max(1, min(max_lag, real_returns.size - 2, returns.shape[1] - 2))
    real_curves = dist.dependence_curves(real_returns, lag)
    synth_curves = dist.dependence_curves(returns, lag)
    timings["curves (ACF, leverage)"] = time.perf_counter() - start

    start = time.perf_counter()
    lags = tuple(k for k in dist.DEFAULT_LAGS if k < min(real_returns.size, returns.shape[1]))
    distances = dist.return_distances(real_returns, returns, lags=lags, max_lag=lag, curves=(real_curves, synth_curves))
    timings["distances (W1, ACF, leverage)"] = time.perf_counter() - start
    start = time.perf_counter()
    distances.update(dist.dy_distances(real_returns, returns, lags=lags))
    timings["distances (DY)"] = time.perf_counter() - start

    for name, score in SCORES.items():
        if name in wanted:
            label = f"{name} score"
            start = time.perf_counter()
            try:
                distances.update(score(real_returns, returns, seed=seed))
            except DataError as exc:
                notes.append(f"{label} skipped: {exc}")
            timings[label] = time.perf_counter() - start
    share = distances.get("memorisation_copy_share")
    if share is not None and share > dist.MEMORISATION_LIMIT:
        notes.append(
            f"Memorisation: {share:.0%} of synthetic {dist.SCORE_WINDOW}-day windows lie closer to a real window "
            f"than the closest {dist.COPY_QUANTILE:.0%} of real windows lie to each other; the generator "
            f"replays its training data."
        )

    pooled = returns.ravel()
    if pooled.size > 200_000:
        pooled = rng.choice(pooled, 200_000, replace=False)
    kurtosis = {h: excess_kurtosis(dist.rolling_sums(returns, h)) for h in HORIZONS if h < returns.shape[1] - 2}
    curves = {
        "real_returns": real_returns,
        "synthetic_sample": pooled,
        "real_curves": real_curves,
        "synthetic_curves": {k: _quantile_curves(v) for k, v in synth_curves.items()},
        "kurtosis_real": {h: float(excess_kurtosis(dist.rolling_sums(real_returns, h))) for h in kurtosis},
        "kurtosis_synthetic": {h: np.array(_band(v))[[1, 0, 2]] for h, v in kurtosis.items()},
        "real_close": real["close"].to_numpy(dtype=float),
        "sample_log_paths": np.cumsum(returns[: min(8, returns.shape[0])], axis=1),
    }
    return distances, curves


def scorecard(
    real: pd.DataFrame,
    synthetic: Paths | np.ndarray,
    *,
    facts: Iterable[str | type[StylizedFact]] | None = None,
    scores: bool | Iterable[str] = True,
    max_lag: int = dist.DEFAULT_MAX_LAG,
    seed: int = 0,
) -> Scorecard:
    """Judge synthetic paths against real bars: every stylized fact, the distances and scores.

    Parameters
    ----------
    real : pd.DataFrame
        Real OHLCV bars, as from :func:`synthmarket.data.load_data`.
    synthetic : Paths or np.ndarray
        The synthetic paths, or a (paths, steps) array of log returns (then the facts that
        need bars are not judged).
    facts : iterable of str or StylizedFact subclasses, optional
        Which facts to compute; default every registered fact.
    scores : bool or iterable of str
        Also compute the window scores (a few seconds): True for all, or some of
        ``"memorisation"``, ``"discriminative"``, ``"predictive"``.
    max_lag : int
        Largest lag of the ACF and leverage curves and distances.
    seed : int
        Seed of every random choice (subsamples, classifier training).

    Returns
    -------
    Scorecard
    """
    if not isinstance(real, pd.DataFrame) or "close" not in real.columns:
        raise DataError("The real data must be an OHLCV DataFrame with a 'close' column (see synthmarket.data.load_data).")
    real_returns = np.diff(np.log(real["close"].to_numpy(dtype=float)))
    returns, paths = _as_returns(synthetic)
    if real_returns.size < MIN_STEPS:
        raise DataError(f"Only {real_returns.size} real returns; the stylized facts need at least {MIN_STEPS}.")
    if returns.shape[1] < MIN_STEPS or returns.shape[0] < 1:
        raise DataError(
            f"Synthetic paths of {returns.shape[1]} steps are too short for the stylized facts; "
            f"sample at least {MIN_STEPS} steps (a trading year is 252)."
        )
    if not np.isfinite(returns).all():
        raise DataError("Synthetic returns contain NaN or infinite values (a path with a non-positive close?).")
    if isinstance(scores, str):
        scores = [scores]
    wanted = set(SCORES) if scores is True else set() if scores is False else set(scores)
    unknown = wanted - set(SCORES)
    if unknown:
        raise ConfigError(f"Unknown score(s) {', '.join(sorted(unknown))}; choose from {', '.join(SCORES)}.")
    rng = np.random.default_rng(seed)
    results, timings, notes = [], {}, []
    for cls in _fact_classes(facts):
        result = _run_fact(cls, real, real_returns, returns, paths, rng)
        results.append(result)
        timings[f"fact: {cls.name}"] = result.seconds
        if result.note and result.passed is not None:
            notes.append(f"{cls.name}: {result.note}.")
        if result.passed is None:
            notes.append(f"{cls.name} not judged: {result.note}.")

    distances, curves = _distances_and_curves(real, real_returns, returns, max_lag, wanted, seed, timings, notes, rng)
    return Scorecard(
        results=results, distances=distances, n_paths=returns.shape[0], n_steps=returns.shape[1],
        notes=notes, timings=timings, curves=curves,
    )
