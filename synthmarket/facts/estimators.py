"""The statistics behind the stylized facts, each computed along the last axis of an array.

Every function takes one series or a (paths, steps) array and returns one value per row, so
a fact computes 1,000 paths at about the cost of one. Each matches an independent reference
(scipy, statsmodels), as ``tests/test_facts_statistics.py`` checks.
"""

from __future__ import annotations

import numpy as np
from scipy import signal, stats

from .. import distances as dist
from ..bars import VOLUME_ALPHA
from ..paths import Paths

TAIL_FRACTION = 0.05


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
    ok = finite & (l > 0) & (l <= np.minimum(o, c) + slack) & (np.maximum(o, c) <= h + slack) & ~(v < 0)
    return (~ok).sum(axis=-1)
