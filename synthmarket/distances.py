"""Distances between real daily log returns and a set of synthetic return paths.

Everything here is vectorised numpy (autocorrelations through the FFT), so a
1,000 x 2,500 set of paths is scored in about a second. These numbers are what a
training loop can monitor and what the scorecard reports beside the stylized facts.

- ``w1_k``: Wasserstein-1 distance between the real series' rolling (overlapping) k-day
  sums and the pooled k-day sums of every synthetic path.
- ``acf_r``, ``acf_abs``, ``acf_sq``: L2 norm, over lags 1..max_lag, of the real ACF of
  r, |r| and r^2 minus the mean synthetic ACF.
- ``leverage``: the same for corr(r_t, r_{t+k}^2), k = 1..max_lag.
- ``dy_k``: the DY metric of Quant GANs (Wiese et al., 2020) for k-day sums.

All autocorrelations use the sample convention of ``statsmodels.tsa.stattools.acf``
(demeaned, divided by the full-length variance, ``adjusted=False``).

The window scores (memorisation, discriminative, predictive) are in
:mod:`synthmarket.window_scores`.
"""

from __future__ import annotations

import numpy as np
from scipy import fft as sp_fft

from .errors import DataError

DEFAULT_LAGS = (1, 5, 20, 100)
DEFAULT_MAX_LAG = 250
DY_OBSERVATIONS_PER_BIN = 5


def as_real_returns(real: np.ndarray) -> np.ndarray:
    """``real`` as a checked 1-D float array of returns."""
    real = np.asarray(real, dtype=float)
    if real.ndim != 1:
        raise DataError(f"Real returns must be a 1-D array; got shape {real.shape}.")
    if not np.isfinite(real).all():
        raise DataError("Real returns contain NaN or infinite values; drop or fill them first.")
    return real


def as_synthetic_returns(synthetic: np.ndarray) -> np.ndarray:
    """``synthetic`` as a checked (paths, steps) float array of returns (one path may be 1-D)."""
    synthetic = np.asarray(synthetic, dtype=float)
    if synthetic.ndim == 1:
        synthetic = synthetic[None, :]
    if synthetic.ndim != 2:
        raise DataError(f"Synthetic returns must be a (paths, steps) array; got shape {synthetic.shape}.")
    if not np.isfinite(synthetic).all():
        raise DataError("Synthetic returns contain NaN or infinite values.")
    return synthetic


def _spectra(x: np.ndarray, size: int) -> tuple[np.ndarray, np.ndarray]:
    """FFT of the demeaned series (zero-padded to ``size``) and its sum of squares."""
    centred = x - x.mean(axis=-1, keepdims=True)
    return sp_fft.rfft(centred, size, axis=-1), (centred * centred).sum(axis=-1, keepdims=True)


def _correlate(fx, ssx, fy, ssy, size: int, max_lag: int) -> np.ndarray:
    lagged = sp_fft.irfft(np.conj(fx) * fy, size, axis=-1)[..., : max_lag + 1]
    scale = np.sqrt(ssx * ssy)
    with np.errstate(invalid="ignore", divide="ignore"):
        out = lagged / scale
    return np.where(scale > 0, out, 0.0)


def _size(n: int) -> int:
    return sp_fft.next_fast_len(2 * n - 1, real=True)


def cross_correlation(x: np.ndarray, y: np.ndarray, max_lag: int) -> np.ndarray:
    """corr(x_t, y_{t+k}) for k = 0..max_lag along the last axis.

    Uses full-sample means and standard deviations and divides the lagged sum by the full
    length (the ``adjusted=False`` convention of statsmodels' ``acf`` and ``ccf``), so
    ``cross_correlation(x, x, m)`` equals ``acf(x, nlags=m)``. A constant series has
    correlation 0 at every lag.
    """
    x = np.asarray(x, dtype=float)
    y = np.asarray(y, dtype=float)
    n = x.shape[-1]
    size = _size(n)
    return _correlate(*_spectra(x, size), *_spectra(y, size), size, min(max_lag, n - 1))


def acf(x: np.ndarray, max_lag: int, mask: np.ndarray | None = None, min_pairs: int = 1) -> np.ndarray:
    """Sample autocorrelation at lags 0..max_lag along the last axis (statsmodels convention).

    With ``mask`` (True where a day counts, e.g. the days of one regime) only pairs of days
    both in it count: the masked days' mean is removed, and each lag's products are averaged
    over its pairs and divided by the masked days' variance (statsmodels' ``adjusted=True``),
    so the days between the masked stretches are skipped. A lag with fewer than ``min_pairs``
    pairs is NaN.
    """
    x = np.asarray(x, dtype=float)
    n = x.shape[-1]
    size = _size(n)
    lags = min(max_lag, n - 1)
    if mask is None:
        spectrum = _spectra(x, size)
        return _correlate(*spectrum, *spectrum, size, lags)
    inside = np.broadcast_to(np.asarray(mask, dtype=bool), x.shape)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.where(inside, x, 0.0).sum(axis=-1, keepdims=True) / inside.sum(axis=-1, keepdims=True)
        centred = np.where(inside, x - mean, 0.0)
        spectrum, days = sp_fft.rfft(centred, size, axis=-1), sp_fft.rfft(inside.astype(float), size, axis=-1)
        products = sp_fft.irfft(np.conj(spectrum) * spectrum, size, axis=-1)[..., : lags + 1]
        pairs = np.rint(sp_fft.irfft(np.conj(days) * days, size, axis=-1)[..., : lags + 1])
        covariance = products / pairs
        out = covariance / covariance[..., :1]
    return np.where((pairs >= max(min_pairs, 1)) & (covariance[..., :1] > 0), out, np.nan)


def leverage(r: np.ndarray, max_lag: int) -> np.ndarray:
    """corr(r_t, r_{t+k}^2) at lags 0..max_lag along the last axis."""
    r = np.asarray(r, dtype=float)
    return cross_correlation(r, r * r, max_lag)


def dependence_curves(r: np.ndarray, max_lag: int) -> dict[str, np.ndarray]:
    """ACF of r, |r|, r^2 and the leverage curve at lags 0..max_lag, sharing the FFTs.

    Returns a dict with keys ``acf_r``, ``acf_abs``, ``acf_sq`` and ``leverage``; each
    value has the shape of ``r`` with the last axis replaced by ``max_lag + 1`` lags.
    """
    r = np.asarray(r, dtype=float)
    n = r.shape[-1]
    size = _size(n)
    m = min(max_lag, n - 1)
    s_r, s_abs, s_sq = (_spectra(x, size) for x in (r, np.abs(r), r * r))
    return {
        "acf_r": _correlate(*s_r, *s_r, size, m),
        "acf_abs": _correlate(*s_abs, *s_abs, size, m),
        "acf_sq": _correlate(*s_sq, *s_sq, size, m),
        "leverage": _correlate(*s_r, *s_sq, size, m),
    }


def rolling_sums(x: np.ndarray, k: int) -> np.ndarray:
    """Overlapping k-step sums along the last axis: shape (..., n - k + 1)."""
    x = np.asarray(x, dtype=float)
    if k == 1:
        return x
    c = np.cumsum(x, axis=-1)
    zero = np.zeros(x.shape[:-1] + (1,))
    c = np.concatenate([zero, c], axis=-1)
    return c[..., k:] - c[..., :-k]


def wasserstein1(u: np.ndarray, v: np.ndarray) -> float:
    """Wasserstein-1 distance between two empirical distributions: the integral of |F_u - F_v|.

    The smaller sample is inserted into the sorted larger one, so the cost is one sort of the
    larger sample.
    """
    u = np.sort(np.ravel(np.asarray(u, dtype=float)))
    v = np.sort(np.ravel(np.asarray(v, dtype=float)))
    if u.size == 0 or v.size == 0:
        raise DataError("Wasserstein distance needs two non-empty samples.")
    if u.size > v.size:
        u, v = v, u
    where = np.searchsorted(v, u, side="left") + np.arange(u.size)
    grid = np.insert(v, where - np.arange(u.size), u)
    steps = np.full(grid.size, -1.0 / v.size)
    steps[where] = 1.0 / u.size
    gap = np.cumsum(steps)[:-1]  # F_u - F_v just right of each grid point
    return float(np.abs(gap) @ np.diff(grid))


def dy_metric(real: np.ndarray, synthetic: np.ndarray, per_bin: int = DY_OBSERVATIONS_PER_BIN) -> float:
    """The DY metric: sum over bins of |log p_real - log p_synthetic|.

    Bins are cut at the quantiles of ``real`` so that each holds about ``per_bin`` real
    observations (outer edges at the real minimum and maximum); densities are counts
    divided by (sample size x bin width). A bin the synthetic sample leaves empty counts as
    holding half an observation, so the metric stays finite and still punishes it.
    This is the metric's usual reading; Quant GANs does not say how empty bins are treated.
    """
    real = np.sort(np.ravel(np.asarray(real, dtype=float)))
    synthetic = np.sort(np.ravel(np.asarray(synthetic, dtype=float)))
    n_bins = max(1, real.size // per_bin)
    edges = np.unique(np.quantile(real, np.linspace(0.0, 1.0, n_bins + 1)))
    if edges.size < 2:
        return 0.0
    widths = np.diff(edges)

    def counts(sample: np.ndarray) -> np.ndarray:
        cum = np.searchsorted(sample, edges, side="left").astype(float)
        cum[-1] = np.searchsorted(sample, edges[-1], side="right")  # the last bin is closed
        return np.diff(cum)

    p_real = np.maximum(counts(real), 0.5) / (real.size * widths)
    p_synth = np.maximum(counts(synthetic), 0.5) / (synthetic.size * widths)
    return float(np.sum(np.abs(np.log(p_real) - np.log(p_synth))))


def _clip_max_lag(max_lag: int, *lengths: int) -> int:
    return max(1, min(max_lag, min(lengths) - 2))


def _check_lags(lags, n_real: int, n_steps: int) -> tuple[int, ...]:
    lags = tuple(int(k) for k in lags)
    too_long = [k for k in lags if k < 1 or k >= min(n_real, n_steps)]
    if too_long:
        raise DataError(
            f"Horizon(s) {too_long} do not fit series of {n_real} real and {n_steps} synthetic steps; "
            f"use horizons between 1 and {min(n_real, n_steps) - 1}, or longer series."
        )
    return lags


def return_distances(
    real: np.ndarray,
    synthetic: np.ndarray,
    *,
    lags=DEFAULT_LAGS,
    max_lag: int = DEFAULT_MAX_LAG,
    curves: tuple[dict, dict] | None = None,
) -> dict[str, float]:
    """Distances between real log returns and synthetic return paths.

    Parameters
    ----------
    real : np.ndarray
        1-D array of real daily log returns.
    synthetic : np.ndarray
        (paths, steps) array of synthetic daily log returns.
    lags : sequence of int
        Horizons k of the Wasserstein distances ``w1_k``.
    max_lag : int
        Largest lag of the ACF and leverage distances, clipped to what the lengths allow.
    curves : (dict, dict), optional
        :func:`dependence_curves` of ``real`` and of ``synthetic`` already computed (with at
        least the clipped ``max_lag`` lags), to reuse instead of recomputing.

    Returns
    -------
    dict
        ``w1_<k>`` per horizon, ``acf_r``, ``acf_abs``, ``acf_sq`` and ``leverage``.
    """
    real = as_real_returns(real)
    synthetic = as_synthetic_returns(synthetic)
    lags = _check_lags(lags, real.size, synthetic.shape[1])
    out: dict[str, float] = {}
    for k in lags:
        out[f"w1_{k}"] = wasserstein1(rolling_sums(real, k), rolling_sums(synthetic, k))
    m = _clip_max_lag(max_lag, real.size, synthetic.shape[1])
    real_curves, synthetic_curves = (
        curves if curves is not None else (dependence_curves(real, m), dependence_curves(synthetic, m))
    )
    for key in ("acf_r", "acf_abs", "acf_sq", "leverage"):
        gap = real_curves[key][1 : m + 1] - synthetic_curves[key][:, 1 : m + 1].mean(axis=0)
        out[key] = float(np.linalg.norm(gap))
    return out


def dy_distances(
    real: np.ndarray, synthetic: np.ndarray, *, lags=DEFAULT_LAGS, per_bin: int = DY_OBSERVATIONS_PER_BIN
) -> dict[str, float]:
    """The DY metric of Quant GANs between real and pooled synthetic k-day sums, keys ``dy_<k>``."""
    real = as_real_returns(real)
    synthetic = as_synthetic_returns(synthetic)
    lags = _check_lags(lags, real.size, synthetic.shape[1])
    return {f"dy_{k}": dy_metric(rolling_sums(real, k), rolling_sums(synthetic, k), per_bin) for k in lags}


def all_distances(
    real: np.ndarray, synthetic: np.ndarray, *, lags=DEFAULT_LAGS, max_lag: int = DEFAULT_MAX_LAG
) -> dict[str, float]:
    """:func:`return_distances` and :func:`dy_distances` in one dictionary."""
    return {**return_distances(real, synthetic, lags=lags, max_lag=max_lag), **dy_distances(real, synthetic, lags=lags)}
