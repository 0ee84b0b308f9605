"""The statistics of a walk-forward calibration test of a scenario generator.

At each forecast origin ``t`` a generator conditioned on the market up to ``t`` samples many
paths; their h-day log returns form the predictive sample ``samples[t]`` and the return that
happened is ``realised[t]``. Every function takes ``samples`` of shape ``(n_origins, n_samples)``
and ``realised`` of shape ``(n_origins,)``.

Sign convention: everything is on the return scale, losses are negative. The Value-at-Risk at
level ``alpha`` is the ``alpha``-quantile of the sampled returns (a negative number in practice)
and the expected shortfall is the mean of the sampled returns at or below it (more negative
still). A hit (an exception) is a realised return strictly below the VaR.

Caveat: with daily origins and h > 1 the realised h-day returns overlap, so the hits and the PIT
values are serially dependent by construction; the chi-square p-values assume independence.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from scipy import special, stats


class BacktestResult(NamedTuple):
    """A test statistic and its p-value."""

    statistic: float
    pvalue: float


class VolCorrelation(NamedTuple):
    """Pearson and Spearman correlations of predicted volatility with realised absolute return."""

    pearson: float
    spearman: float


def _check(samples, realised) -> tuple[np.ndarray, np.ndarray]:
    samples, realised = np.asarray(samples, dtype=float), np.asarray(realised, dtype=float)
    if samples.ndim != 2 or realised.shape != samples.shape[:1] or samples.size == 0:
        raise ValueError(f"shapes {samples.shape}, {realised.shape}: want (n_origins, n_samples), (n_origins,)")
    if not (np.isfinite(samples).all() and np.isfinite(realised).all()):
        raise ValueError("samples and realised must be finite")
    return samples, realised


def _check_alpha(alpha: float) -> None:
    if not 0.0 < alpha < 1.0:
        raise ValueError(f"alpha must lie in (0, 1), got {alpha}")


def pit(samples, realised) -> np.ndarray:
    """Probability integral transform of each realised value under its sample distribution.

    ``u_t = (#{s in samples[t] : s < y_t} + 0.5 * #{s = y_t}) / n_samples``: the empirical
    predictive CDF at ``y_t`` with ties counted half. If the forecasts are calibrated the
    ``u_t`` are uniform on [0, 1]; a U shape means too narrow, a hump too wide.

    References
    ----------
    Diebold, F. X., Gunther, T. A., Tay, A. S. (1998). Evaluating density forecasts with
    applications to financial risk management. International Economic Review 39(4), 863-883.
    """
    samples, realised = _check(samples, realised)
    below = (samples < realised[:, None]).sum(axis=1)
    ties = (samples == realised[:, None]).sum(axis=1)
    return (below + 0.5 * ties) / samples.shape[1]


def var_hits(samples, realised, alpha: float) -> tuple[np.ndarray, np.ndarray]:
    """Value-at-Risk per origin and the exceptions (hits).

    ``VaR_t = Q_alpha(samples[t])`` (``numpy.quantile``'s default linear interpolation,
    Hyndman-Fan type 7), a left-tail return threshold; ``hit_t = realised_t < VaR_t``.
    Under correct coverage the hits are i.i.d. Bernoulli(alpha).

    Returns
    -------
    var : ndarray (n_origins,)
        The VaR on the return scale (negative for a loss threshold).
    hits : ndarray of bool (n_origins,)

    References
    ----------
    Jorion, P. (2007). Value at Risk, 3rd ed., McGraw-Hill, ch. 6.
    """
    samples, realised = _check(samples, realised)
    _check_alpha(alpha)
    var = np.quantile(samples, alpha, axis=1)
    return var, realised < var


def kupiec_pof(hits, alpha: float) -> BacktestResult:
    """Kupiec's proportion-of-failures (unconditional coverage) likelihood-ratio test.

    With ``T`` observations, ``x`` hits and ``p_hat = x / T``::

        LR_pof = -2 ln[(1 - alpha)^(T - x) alpha^x] + 2 ln[(1 - p_hat)^(T - x) p_hat^x]

    with ``0 ln 0 = 0`` (so 0 hits and all hits are handled); ``LR_pof ~ chi2(1)`` under H0.

    References
    ----------
    Kupiec, P. (1995). Techniques for verifying the accuracy of risk measurement models.
    Journal of Derivatives 3(2), 73-84.
    """
    _check_alpha(alpha)
    hits = np.asarray(hits, dtype=bool)
    n, x = hits.size, int(hits.sum())
    if n == 0:
        raise ValueError("hits is empty")
    p_hat = x / n
    log_l0 = special.xlogy(n - x, 1.0 - alpha) + special.xlogy(x, alpha)
    log_l1 = special.xlogy(n - x, 1.0 - p_hat) + special.xlogy(x, p_hat)
    stat = max(float(-2.0 * (log_l0 - log_l1)), 0.0)
    return BacktestResult(stat, float(stats.chi2.sf(stat, 1)))


def transition_counts(hits) -> tuple[int, int, int, int]:
    """Counts ``(n00, n01, n10, n11)`` of transitions ``hit_{t-1} = i -> hit_t = j``."""
    hits = np.asarray(hits, dtype=bool)
    prev, cur = hits[:-1], hits[1:]
    return tuple(int(np.sum((prev == i) & (cur == j))) for i in (False, True) for j in (False, True))


def christoffersen_independence(hits) -> BacktestResult:
    """Christoffersen's independence likelihood-ratio test on the Markov chain of hits.

    With transition counts ``n_ij`` (``i`` yesterday, ``j`` today), ``pi_01 = n01 / (n00 + n01)``,
    ``pi_11 = n11 / (n10 + n11)`` and ``pi = (n01 + n11) / (T - 1)``::

        LR_ind = -2 ln[(1 - pi)^(n00 + n10) pi^(n01 + n11)]
                 + 2 ln[(1 - pi_01)^n00 pi_01^n01 (1 - pi_11)^n10 pi_11^n11]

    with ``0 ln 0 = 0``; a row with no transitions (e.g. no hit before the last day) adds
    nothing. ``LR_ind ~ chi2(1)`` under H0; fewer than two observations give 0 and p = 1.

    References
    ----------
    Christoffersen, P. F. (1998). Evaluating interval forecasts. International Economic
    Review 39(4), 841-862.
    """
    n00, n01, n10, n11 = transition_counts(hits)
    total = n00 + n01 + n10 + n11
    if total == 0:
        return BacktestResult(0.0, 1.0)
    # An empty row (n_i0 + n_i1 = 0) has a zero numerator too: max(., 1) makes its pi 0, unused.
    pi01, pi11, pi = n01 / max(n00 + n01, 1), n11 / max(n10 + n11, 1), (n01 + n11) / total
    xlogy = special.xlogy
    log_l0 = xlogy(n00 + n10, 1.0 - pi) + xlogy(n01 + n11, pi)
    log_l1 = xlogy(n00, 1.0 - pi01) + xlogy(n01, pi01) + xlogy(n10, 1.0 - pi11) + xlogy(n11, pi11)
    stat = max(float(-2.0 * (log_l0 - log_l1)), 0.0)
    return BacktestResult(stat, float(stats.chi2.sf(stat, 1)))


def christoffersen_cc(hits, alpha: float) -> BacktestResult:
    """Christoffersen's conditional-coverage test: ``LR_cc = LR_pof + LR_ind ~ chi2(2)``.

    ``LR_pof`` (:func:`kupiec_pof`) uses all ``T`` observations and ``LR_ind`` the ``T - 1``
    transitions, the usual practical form (Jorion 2007, ch. 6; Campbell 2005).

    References
    ----------
    Christoffersen, P. F. (1998). Evaluating interval forecasts. International Economic
    Review 39(4), 841-862.
    """
    stat = kupiec_pof(hits, alpha).statistic + christoffersen_independence(hits).statistic
    return BacktestResult(stat, float(stats.chi2.sf(stat, 2)))


def _z2(x: np.ndarray, var: np.ndarray, es: np.ndarray, alpha: float) -> np.ndarray:
    """Z2 of realised values ``x`` (..., T) against per-origin VaR and (signed) ES."""
    return 1.0 - np.sum(x * (x < var) / es, axis=-1) / (x.shape[-1] * alpha)


def es_backtest(samples, realised, alpha: float, n_sim: int = 2000, seed: int | None = 0) -> BacktestResult:
    """Acerbi-Szekely Z2 expected-shortfall backtest, p-value by simulation under H0.

    Acerbi and Szekely write it for P&L ``X_t`` with a positive ES:
    ``Z2 = sum_t X_t I_t / (T alpha ES_t) + 1``. Here ``ES_t`` is signed, the mean of the
    sampled returns at or below ``VaR_t`` (negative for a loss), so the same statistic reads::

        Z2 = 1 - sum_t y_t I_t / (T alpha ES_t),   I_t = 1{y_t < VaR_t}

    ``E[Z2] = 0`` under H0; ``Z2 < 0`` means the realised tail losses exceed the predicted ES
    (risk underestimated), ``Z2 > 0`` that it is overestimated.

    The p-value is one-sided: draw each origin's ``y_t`` from its own sample (resampling with
    replacement, ``n_sim`` times, ``numpy.random.default_rng(seed)``), recompute Z2 with the same
    ``VaR_t`` and ``ES_t``, and report the share of simulated Z2 at or below the observed one.

    References
    ----------
    Acerbi, C., Szekely, B. (2014). Backtesting expected shortfall. Risk, December 2014.
    """
    samples, realised = _check(samples, realised)
    var, _ = var_hits(samples, realised, alpha)
    tail = samples <= var[:, None]
    es = (samples * tail).sum(axis=1) / tail.sum(axis=1)
    observed = float(_z2(realised, var, es, alpha))
    rng = np.random.default_rng(seed)
    n_origins, n_samples = samples.shape
    rows = np.arange(n_origins)
    chunk = max(1, 2_000_000 // n_origins)
    below = 0
    for start in range(0, n_sim, chunk):
        idx = rng.integers(0, n_samples, size=(min(chunk, n_sim - start), n_origins))
        below += int(np.sum(_z2(samples[rows, idx], var, es, alpha) <= observed))
    return BacktestResult(observed, below / n_sim)


def crps(samples, realised) -> np.ndarray:
    """CRPS of each origin's ensemble (sample) forecast, via ``scoringrules.crps_ensemble``.

    ``CRPS(F, y) = E|X - y| - 0.5 E|X - X'|`` with ``F`` the empirical distribution of the
    samples (estimator ``"qd"``, exact for the empirical CDF). Lower is better; it has the
    units of the returns. The mean over origins is ``crps(...).mean()``.

    References
    ----------
    Gneiting, T., Raftery, A. E. (2007). Strictly proper scoring rules, prediction, and
    estimation. JASA 102(477), 359-378.
    """
    import scoringrules as sr

    samples, realised = _check(samples, realised)
    return np.asarray(sr.crps_ensemble(realised, samples, m_axis=-1, estimator="qd"), dtype=float)


def crps_normal(realised, mu, sigma) -> np.ndarray:
    """CRPS of normal forecasts N(``mu``, ``sigma``^2) for each realised value, in closed form
    (``scoringrules.crps_normal``): the reference a forecast that knows no state is held to."""
    import scoringrules as sr

    return np.asarray(sr.crps_normal(np.asarray(realised, dtype=float), mu, sigma), dtype=float)


def crps_skill(crps_model, crps_reference) -> float:
    """CRPS skill score ``1 - mean(CRPS_model) / mean(CRPS_reference)``.

    Positive when the model beats the reference (e.g. a GBM baseline), 1 for a perfect forecast.

    Reference: Gneiting, T., Raftery, A. E. (2007), JASA 102(477), 359-378.
    """
    return float(1.0 - np.mean(crps_model) / np.mean(crps_reference))


def diebold_mariano(scores_model, scores_reference, horizon: int = 1) -> BacktestResult:
    """Is one forecast's mean score really lower than another's? The Diebold-Mariano test.

    ``scores_model`` and ``scores_reference`` are per-origin scores of two forecasts of the
    same outcomes (lower is better, e.g. :func:`crps`). The statistic is the mean of their
    differences (model - reference) over its standard error, with the long-run variance of
    Newey and West over ``horizon - 1`` lags (forecasts ``horizon`` days ahead from daily
    origins overlap); the p-value is two-sided, from the standard normal. A negative statistic
    favours the model. Computed as the HAC t-statistic of the differences' mean
    (``statsmodels`` OLS on a constant, ``cov_type="HAC"``).

    References
    ----------
    Diebold, F. X., Mariano, R. S. (1995). Comparing predictive accuracy. JBES 13(3), 253-263.
    """
    import statsmodels.api as sm

    a, b = np.asarray(scores_model, dtype=float), np.asarray(scores_reference, dtype=float)
    if a.ndim != 1 or a.shape != b.shape:
        raise ValueError(f"scores are 1-D and alike; got {a.shape} and {b.shape}")
    if int(horizon) < 1:
        raise ValueError(f"horizon must be at least 1; got {horizon}")
    d = a - b
    if d.size < 3 or np.ptp(d) == 0:
        return BacktestResult(float("nan"), float("nan"))
    fit = sm.OLS(d, np.ones_like(d)).fit(
        cov_type="HAC", cov_kwds={"maxlags": int(horizon) - 1, "use_correction": False}
    )
    statistic = float(fit.tvalues[0])
    return BacktestResult(statistic, float(2 * stats.norm.sf(abs(statistic))))


def vol_correlation(samples, realised) -> VolCorrelation:
    """Correlation of the predicted volatility with the realised absolute return.

    ``sigma_t = std(samples[t])`` (ddof=1) against ``|y_t|``: see :func:`volatility_correlation`.
    A generator that tracks volatility regimes gives a clearly positive value.
    """
    samples, realised = _check(samples, realised)
    if samples.shape[0] < 3 or samples.shape[1] < 2:
        return VolCorrelation(float("nan"), float("nan"))
    return volatility_correlation(samples.std(axis=1, ddof=1), np.abs(realised))


def volatility_correlation(predicted, realised) -> VolCorrelation:
    """Pearson's r (``scipy.stats.pearsonr``) and Spearman's rank correlation
    (``scipy.stats.spearmanr``) of predicted with realised volatilities, one pair per origin.

    Reference: Andersen, T. G., Bollerslev, T. (1998). Answering the skeptics: yes, standard
    volatility models do provide accurate forecasts. International Economic Review 39(4), 885-905.
    """
    predicted, realised = np.asarray(predicted, dtype=float), np.asarray(realised, dtype=float)
    if predicted.shape != realised.shape or predicted.ndim != 1:
        raise ValueError(f"predicted and realised are 1-D and alike; got {predicted.shape} and {realised.shape}")
    if predicted.size < 3 or np.ptp(predicted) == 0 or np.ptp(realised) == 0:
        return VolCorrelation(float("nan"), float("nan"))
    return VolCorrelation(float(stats.pearsonr(predicted, realised)[0]), float(stats.spearmanr(predicted, realised)[0]))


def calibration_summary(
    samples, realised, alphas=(0.01, 0.05), n_sim: int = 2000, seed: int | None = 0, volatility=None, apart: int = 1
) -> dict:
    """All the statistics above for one horizon, as a JSON-able dict.

    The tests (VaR hits, Kupiec, Christoffersen, the ES backtest) count every ``apart``-th
    origin: the outcomes of origins closer than the horizon overlap, and their hits would not
    be independent as the tests assume. The estimates (PIT, CRPS, volatility correlation)
    use every origin.

    ``volatility``, a pair (predicted, realised) of volatilities, one per origin, is what the
    correlation compares (e.g. the square root of the expected and of the realised sum of
    squared daily returns over the horizon); without it, the samples' standard deviation and
    the absolute realised return (:func:`vol_correlation`).

    Keys: ``n`` (the origins the tests count), ``n_scored`` (every origin), ``pit_mean``,
    ``pit_hist`` (counts in 10 equal bins on [0, 1]), ``crps_mean``, ``vol_pearson``,
    ``vol_spearman`` and ``levels``: for each alpha (key ``f"{alpha:g}"``) ``alpha``,
    ``expected_hits`` (alpha * n), ``hits``, ``hit_rate``, ``kupiec_stat``, ``kupiec_p``,
    ``ind_stat``, ``ind_p``, ``cc_stat``, ``cc_p``, ``es_z2`` and ``es_p``. Undefined values
    (e.g. a correlation with constant volatility) are NaN.
    """
    samples, realised = _check(samples, realised)
    u = pit(samples, realised)
    corr = vol_correlation(samples, realised) if volatility is None else volatility_correlation(*volatility)
    tested, outcomes = samples[::apart], realised[::apart]
    n = int(outcomes.size)
    levels = {}
    for alpha in alphas:
        _, hits = var_hits(tested, outcomes, alpha)
        pof, ind, cc = kupiec_pof(hits, alpha), christoffersen_independence(hits), christoffersen_cc(hits, alpha)
        es = es_backtest(tested, outcomes, alpha, n_sim=n_sim, seed=seed)
        levels[f"{alpha:g}"] = {
            "alpha": float(alpha),
            "expected_hits": float(alpha * n),
            "hits": int(hits.sum()),
            "hit_rate": float(hits.mean()),
            "kupiec_stat": pof.statistic,
            "kupiec_p": pof.pvalue,
            "ind_stat": ind.statistic,
            "ind_p": ind.pvalue,
            "cc_stat": cc.statistic,
            "cc_p": cc.pvalue,
            "es_z2": es.statistic,
            "es_p": es.pvalue,
        }
    return {
        "n": n,
        "n_scored": int(realised.size),
        "pit_mean": float(u.mean()),
        "pit_hist": [int(c) for c in np.histogram(u, bins=10, range=(0.0, 1.0))[0]],
        "crps_mean": float(crps(samples, realised).mean()),
        "vol_pearson": corr.pearson,
        "vol_spearman": corr.spearman,
        "levels": levels,
    }
