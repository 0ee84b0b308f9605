"""The statistics of the walk-forward calibration test (issue #22), checked against hand-worked values."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from scipy import stats

from synthmarket.calibration.scores import (
    calibration_summary,
    christoffersen_cc,
    christoffersen_independence,
    crps,
    crps_normal,
    crps_skill,
    diebold_mariano,
    es_backtest,
    kupiec_pof,
    pit,
    transition_counts,
    var_hits,
    vol_correlation,
)

N_ORIGINS, N_SAMPLES = 4000, 2000


@pytest.fixture(scope="module")
def market():
    """Volatilities that vary across origins, normal predictive samples with the right scale, and
    realised returns drawn from that same normal (calibrated) or from a unit-variance Student-t 3
    with the same scale (heavier tails, same variance)."""
    rng = np.random.default_rng(20261204)
    sigma = np.exp(rng.uniform(np.log(0.005), np.log(0.05), N_ORIGINS))
    samples = sigma[:, None] * rng.standard_normal((N_ORIGINS, N_SAMPLES))
    realised = sigma * rng.standard_normal(N_ORIGINS)
    heavy = sigma * rng.standard_t(3, N_ORIGINS) / math.sqrt(3.0)
    return sigma, samples, realised, heavy


# --- Kupiec and Christoffersen, against the likelihoods written out by hand ------------------


def test_kupiec_matches_hand_likelihoods_t250_x5():
    T, x, p = 250, 5, 0.01
    hits = np.zeros(T, dtype=bool)
    hits[[10, 70, 71, 150, 249]] = True
    lr = -2 * ((T - x) * math.log(1 - p) + x * math.log(p)) + 2 * ((T - x) * math.log(1 - x / T) + x * math.log(x / T))
    result = kupiec_pof(hits, p)
    assert result.statistic == pytest.approx(lr, abs=1e-10)
    assert result.pvalue == pytest.approx(math.erfc(math.sqrt(lr / 2)), abs=1e-12)  # chi2(1) survival function
    # A second, independent route: twice the binomial log-likelihood ratio (scipy.stats.binom).
    binom_lr = 2 * (stats.binom.logpmf(x, T, x / T) - stats.binom.logpmf(x, T, p))
    assert result.statistic == pytest.approx(binom_lr, abs=1e-9)
    assert 1.5 < result.statistic < 2.5  # 5 exceptions in 250 days at 99%: not rejected at 5%
    assert result.pvalue > 0.05


def test_kupiec_degenerate_counts():
    T, p = 500, 0.05
    none = kupiec_pof(np.zeros(T, dtype=bool), p)
    assert none.statistic == pytest.approx(-2 * T * math.log(1 - p), abs=1e-10)
    every = kupiec_pof(np.ones(T, dtype=bool), p)
    assert every.statistic == pytest.approx(-2 * T * math.log(p), abs=1e-10)
    assert none.pvalue < 1e-10 and every.pvalue < 1e-100
    exact = kupiec_pof(np.arange(100) < 5, p)  # 5 hits in 100 at 5%: the MLE is alpha itself
    assert exact.statistic == pytest.approx(0.0, abs=1e-12) and exact.pvalue == pytest.approx(1.0)
    with pytest.raises(ValueError):
        kupiec_pof(np.zeros(10, dtype=bool), 0.0)


SEQUENCE = [0, 0, 1, 1, 0, 0, 0, 1, 0, 1, 1, 1, 0, 0, 0, 0, 1, 0, 0, 0]


def test_christoffersen_independence_hand_worked():
    # Transitions of SEQUENCE counted by hand: 00 x8, 01 x4, 10 x4, 11 x3 (19 in all).
    n00, n01, n10, n11 = 8, 4, 4, 3
    assert transition_counts(SEQUENCE) == (n00, n01, n10, n11)
    pi01, pi11, pi = 4 / 12, 3 / 7, 7 / 19
    log_l0 = 12 * math.log(1 - pi) + 7 * math.log(pi)
    log_l1 = 8 * math.log(1 - pi01) + 4 * math.log(pi01) + 4 * math.log(1 - pi11) + 3 * math.log(pi11)
    lr = -2 * (log_l0 - log_l1)
    result = christoffersen_independence(SEQUENCE)
    assert result.statistic == pytest.approx(lr, abs=1e-10)
    assert result.pvalue == pytest.approx(math.erfc(math.sqrt(lr / 2)), abs=1e-12)

    cc = christoffersen_cc(SEQUENCE, 0.05)
    pof = kupiec_pof(SEQUENCE, 0.05)
    assert cc.statistic == pytest.approx(pof.statistic + lr, abs=1e-10)
    assert cc.pvalue == pytest.approx(math.exp(-cc.statistic / 2), abs=1e-12)  # chi2(2) survival function


def test_christoffersen_independence_equals_g_test_of_the_transition_table():
    # The Markov-vs-independent likelihood ratio is the G statistic of the 2x2 transition table,
    # which scipy computes on its own (chi2_contingency with lambda_="log-likelihood").
    rng = np.random.default_rng(3)
    hits = np.zeros(1000, dtype=bool)
    for t in range(1, hits.size):  # clustered hits: more likely right after a hit
        hits[t] = rng.random() < (0.3 if hits[t - 1] else 0.03)
    n00, n01, n10, n11 = transition_counts(hits)
    g, p, dof, _ = stats.chi2_contingency([[n00, n01], [n10, n11]], correction=False, lambda_="log-likelihood")
    result = christoffersen_independence(hits)
    assert dof == 1
    assert result.statistic == pytest.approx(g, rel=1e-10)
    assert result.pvalue == pytest.approx(p, rel=1e-8)
    assert result.pvalue < 1e-4  # clustering is detected

    scattered = rng.random(1000) < 0.05
    assert christoffersen_independence(scattered).pvalue > 0.01


def test_christoffersen_degenerate_transitions():
    for hits in ([], [1], [0] * 50, [1] * 50, [0, 0, 0, 1]):  # no row of "hit yesterday" in the last
        result = christoffersen_independence(np.array(hits, dtype=bool))
        assert result.statistic == pytest.approx(0.0, abs=1e-12) and result.pvalue == pytest.approx(1.0)
    # One hit in the middle: n00=1, n01=1, n10=1, n11=0; pi01=1/2, pi11=0, pi=1/3.
    lr = -2 * (2 * math.log(2 / 3) + math.log(1 / 3)) + 2 * (math.log(1 / 2) + math.log(1 / 2) + 0.0)
    assert christoffersen_independence([0, 1, 0, 0]).statistic == pytest.approx(lr, abs=1e-12)
    assert np.isfinite(christoffersen_cc(np.ones(30, dtype=bool), 0.01).statistic)


# --- CRPS ---------------------------------------------------------------------------------------


def normal_crps(mu: float, s: float, y: float) -> float:
    z = (y - mu) / s
    phi = math.exp(-z * z / 2) / math.sqrt(2 * math.pi)
    Phi = 0.5 * (1 + math.erf(z / math.sqrt(2)))
    return s * (z * (2 * Phi - 1) + 2 * phi - 1 / math.sqrt(math.pi))


def test_crps_of_a_large_normal_ensemble_matches_the_closed_form():
    rng = np.random.default_rng(11)
    mu, s = 0.001, 0.02
    ys = np.array([-0.05, -0.01, 0.0, 0.003, 0.04])
    samples = mu + s * rng.standard_normal((ys.size, 20000))
    got = crps(samples, ys)
    want = [normal_crps(mu, s, y) for y in ys]
    assert got.shape == ys.shape
    np.testing.assert_allclose(got, want, rtol=0.02)


def test_crps_normal_is_the_closed_form():
    ys = np.array([-0.05, -0.01, 0.0, 0.003, 0.04])
    np.testing.assert_allclose(crps_normal(ys, 0.001, 0.02), [normal_crps(0.001, 0.02, y) for y in ys], rtol=1e-10)


def test_crps_of_a_tiny_ensemble_is_the_energy_form():
    samples = np.array([[0.0, 1.0, 2.0, 5.0, -1.0], [0.3, 0.3, -0.2, 0.1, 0.0], [-2.0, 4.0, 1.0, 1.5, 0.5]])
    realised = np.array([0.5, 1.0, -3.0])  # three origins of five members: the member axis is the last
    want = []
    for xs, y in zip(samples, realised):
        m = len(xs)
        spread = sum(abs(a - b) for a in xs for b in xs) / m**2
        want.append(sum(abs(a - y) for a in xs) / m - 0.5 * spread)
    np.testing.assert_allclose(crps(samples, realised), want, rtol=1e-12, atol=1e-14)
    assert crps([[0.0, 1.0, 2.0]], [0.5])[0] == pytest.approx((0.5 + 0.5 + 1.5) / 3 - 0.5 * 8 / 9)


def test_crps_skill(market):
    sigma, samples, realised, _ = market
    assert crps_skill([1.0, 2.0], [2.0, 4.0]) == pytest.approx(0.5)
    n = 500
    model = crps(samples[:n, :1000], realised[:n])
    too_wide = crps(3 * samples[:n, :1000], realised[:n])
    assert crps_skill(model, too_wide) > 0.1
    assert crps_skill(model, model) == 0.0


def newey_west_t(d, lags: int) -> float:
    """The mean of ``d`` over its Newey-West standard error, written out (Bartlett weights)."""
    d = np.asarray(d, dtype=float)
    n, e = d.size, d - d.mean()
    gamma = [float(e[lag:] @ e[: n - lag]) / n for lag in range(lags + 1)]
    long_run = gamma[0] + 2 * sum((1 - lag / (lags + 1)) * gamma[lag] for lag in range(1, lags + 1))
    return d.mean() / math.sqrt(long_run / n)


def test_diebold_mariano_is_the_newey_west_t_of_the_score_differences():
    model = [0.30, 0.10, 0.45, 0.20, 0.05, 0.60, 0.25, 0.15, 0.40, 0.10]
    reference = [0.35, 0.30, 0.40, 0.25, 0.20, 0.55, 0.45, 0.10, 0.50, 0.30]
    d = np.subtract(model, reference)
    for horizon in (1, 2, 5):
        statistic, p = diebold_mariano(model, reference, horizon)
        assert statistic == pytest.approx(newey_west_t(d, horizon - 1), rel=1e-10)
        assert p == pytest.approx(2 * stats.norm.sf(abs(statistic)))
    # one day ahead, the statistic is the one-sample t of the differences (variance over n, not n - 1)
    t_scipy = stats.ttest_1samp(d, 0.0).statistic
    assert diebold_mariano(model, reference)[0] == pytest.approx(t_scipy * math.sqrt(d.size / (d.size - 1)))
    swapped = diebold_mariano(reference, model, 2)
    assert swapped[0] == pytest.approx(-diebold_mariano(model, reference, 2)[0])


def test_diebold_mariano_tells_a_calibrated_forecast_from_a_too_wide_one(market):
    _, samples, realised, _ = market
    n = 600
    calibrated = crps(samples[:n, :500], realised[:n])
    too_wide = crps(1.5 * samples[:n, :500], realised[:n])
    statistic, p = diebold_mariano(calibrated, too_wide)
    assert statistic < 0 and p < 0.01
    assert diebold_mariano(too_wide, calibrated)[0] > 0
    assert all(math.isnan(x) for x in diebold_mariano(calibrated, calibrated))
    with pytest.raises(ValueError, match="alike"):
        diebold_mariano(calibrated, calibrated[:-1])


# --- PIT, VaR hits ----------------------------------------------------------------------------


def test_pit_counts_ties_half():
    samples = [[1.0, 2.0, 2.0, 3.0]] * 4
    np.testing.assert_allclose(pit(samples, [2.0, 0.0, 5.0, 2.5]), [0.5, 0.0, 1.0, 0.75])
    with pytest.raises(ValueError):
        pit(np.zeros((3, 4)), np.zeros(4))


def test_pit_is_uniform_when_calibrated_and_u_shaped_when_too_narrow(market):
    _, samples, realised, _ = market
    u = pit(samples, realised)
    assert ((u >= 0) & (u <= 1)).all()
    assert stats.kstest(u, "uniform").pvalue > 0.01

    narrow = pit(0.5 * samples, realised)
    assert stats.kstest(narrow, "uniform").pvalue < 1e-6
    counts = np.histogram(narrow, bins=10, range=(0, 1))[0]
    assert counts[0] > 2 * counts[4:6].mean() and counts[-1] > 2 * counts[4:6].mean()


@pytest.mark.parametrize("alpha", [0.01, 0.05])
def test_var_hits_and_kupiec(market, alpha):
    _, samples, realised, _ = market
    var, hits = var_hits(samples, realised, alpha)
    np.testing.assert_allclose(var, np.quantile(samples, alpha, axis=1))
    assert (var < 0).all() and hits.dtype == bool
    assert abs(hits.sum() - alpha * hits.size) < 3 * math.sqrt(hits.size * alpha * (1 - alpha))  # 3 binomial sd
    assert kupiec_pof(hits, alpha).pvalue > 0.05

    _, narrow_hits = var_hits(0.6 * samples, realised, alpha)
    assert narrow_hits.mean() > 2 * alpha
    assert kupiec_pof(narrow_hits, alpha).pvalue < 0.01


def test_a_realised_value_at_the_var_is_not_a_hit():
    var, hits = var_hits([[-2.0, -1.0, 0.0, 1.0, 2.0]] * 2, [-1.0, -1.0001], 0.25)
    np.testing.assert_allclose(var, [-1.0, -1.0])
    assert hits.tolist() == [False, True]


# --- Expected shortfall -------------------------------------------------------------------------


def test_es_z2_hand_worked_in_acerbi_szekely_convention():
    grid = np.linspace(-1.0, 1.0, 101)
    samples = np.tile(grid, (4, 1))
    realised = np.array([-0.95, 0.3, -2.0, 0.0])
    alpha = 0.05
    var = np.quantile(grid, alpha)  # position 5 of 101 sorted points: -0.9
    es_positive = -grid[grid <= var].mean()  # their ES, a positive loss (0.95)
    pnl_hits = sum(x for x in realised if x < var)  # X_t I_t, P&L = return
    z2 = pnl_hits / (len(realised) * alpha * es_positive) + 1
    result = es_backtest(samples, realised, alpha, n_sim=200)
    assert var == pytest.approx(-0.9) and es_positive == pytest.approx(0.95)
    assert result.statistic == pytest.approx(z2, rel=1e-12)
    assert result.statistic < -10


def test_es_z2_calibrated_versus_heavy_tails(market):
    _, samples, realised, heavy = market
    calibrated = es_backtest(samples, realised, 0.01)
    assert abs(calibrated.statistic) < 0.5 and calibrated.pvalue > 0.05
    assert es_backtest(samples, realised, 0.01) == calibrated  # seeded
    assert es_backtest(samples, realised, 0.05).pvalue > 0.05

    underestimated = es_backtest(samples, heavy, 0.01)
    assert underestimated.statistic < -0.4 and underestimated.pvalue < 0.01
    overestimated = es_backtest(1.5 * samples, realised, 0.01)  # too-wide forecasts: Z2 > 0
    assert overestimated.statistic > 0.5 and overestimated.pvalue > 0.99


# --- Volatility correlation, summary ------------------------------------------------------------


def test_vol_correlation(market):
    sigma, samples, realised, _ = market
    n = 1500
    follows = vol_correlation(samples[:n, :500], realised[:n])
    assert follows.pearson > 0.4 and follows.spearman > 0.4
    sd = samples[:n, :500].std(axis=1, ddof=1)
    assert follows.pearson == pytest.approx(np.corrcoef(sd, np.abs(realised[:n]))[0, 1], rel=1e-10)

    flat = 0.02 * np.random.default_rng(5).standard_normal(n)  # realised ignores the predicted volatility
    ignores = vol_correlation(samples[:n, :500], flat)
    assert abs(ignores.pearson) < 0.1 and abs(ignores.spearman) < 0.1


def test_calibration_summary_is_json_and_consistent(market):
    _, samples, realised, _ = market
    n = 1000
    summary = calibration_summary(samples[:n, :1000], realised[:n], alphas=(0.01, 0.05), n_sim=300)
    text = json.dumps(summary, allow_nan=False)
    assert json.loads(text) == summary
    assert summary["n"] == n and sum(summary["pit_hist"]) == n and len(summary["pit_hist"]) == 10
    assert 0.45 < summary["pit_mean"] < 0.55
    assert set(summary["levels"]) == {"0.01", "0.05"}
    level = summary["levels"]["0.05"]
    _, hits = var_hits(samples[:n, :1000], realised[:n], 0.05)
    assert level["hits"] == int(hits.sum()) and level["expected_hits"] == pytest.approx(50.0)
    assert level["kupiec_stat"] == pytest.approx(kupiec_pof(hits, 0.05).statistic)
    assert level["cc_stat"] == pytest.approx(level["kupiec_stat"] + level["ind_stat"])
    assert summary["crps_mean"] == pytest.approx(crps(samples[:n, :1000], realised[:n]).mean())
    assert summary["vol_pearson"] > 0.3
    spaced = calibration_summary(samples[:n, :1000], realised[:n], alphas=(0.05,), n_sim=300, apart=4)
    assert spaced["n"] == n // 4 and spaced["n_scored"] == n and spaced["crps_mean"] == summary["crps_mean"]
    assert spaced["levels"]["0.05"]["hits"] == int(hits[::4].sum())
