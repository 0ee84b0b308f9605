"""Every statistic of synthmarket.facts against an independent computation (scipy, statsmodels)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from statsmodels.stats.diagnostic import acorr_ljungbox, het_arch
from statsmodels.stats.stattools import jarque_bera as sm_jarque_bera
from statsmodels.tsa.stattools import acf as sm_acf
from statsmodels.tsa.stattools import ccf as sm_ccf

from synthmarket import facts as F
from synthmarket.bars import Anchor, to_features
from synthmarket.paths import Paths


@pytest.fixture(scope="module")
def returns(sp500_recent):
    return np.diff(np.log(sp500_recent["close"].to_numpy()))


@pytest.fixture(scope="module")
def panel():
    """A few heavy-tailed series with volatility clustering (GARCH(1,1)-t), seeded."""
    rng = np.random.default_rng(3)
    n_paths, n = 4, 1500
    z = rng.standard_t(5, size=(n_paths, n)) / np.sqrt(5 / 3)
    out, var = np.empty((n_paths, n)), np.full(n_paths, 1e-4)
    for t in range(n):
        out[:, t] = np.sqrt(var) * z[:, t]
        var = 2e-6 + 0.1 * out[:, t] ** 2 + 0.88 * var
    return out


def test_moments_match_scipy(returns, panel):
    assert F.skewness(returns) == pytest.approx(stats.skew(returns), rel=1e-10)
    assert F.excess_kurtosis(returns) == pytest.approx(stats.kurtosis(returns), rel=1e-10)
    np.testing.assert_allclose(F.skewness(panel), stats.skew(panel, axis=1), rtol=1e-10)
    np.testing.assert_allclose(F.excess_kurtosis(panel), stats.kurtosis(panel, axis=1), rtol=1e-10)


def test_hill_index_is_the_pareto_mle_of_the_exceedances(returns):
    losses = -returns
    k = int(0.05 * losses.size)
    ordered = np.sort(losses)[::-1]
    threshold = ordered[k]
    b, _, _ = stats.pareto.fit(ordered[:k] / threshold, floc=0, fscale=1)
    assert F.hill_index(losses) == pytest.approx(b, rel=1e-6)


def test_hill_index_recovers_a_known_tail_index():
    sample = stats.pareto.rvs(3.0, size=(3, 20_000), random_state=np.random.default_rng(1))
    np.testing.assert_allclose(F.hill_index(sample), 3.0, rtol=0.1)
    assert np.isnan(F.hill_index(-np.abs(sample[0])))  # no positive tail


def test_ljung_box_matches_statsmodels(returns, panel):
    expected = acorr_ljungbox(returns, lags=[20])["lb_pvalue"].iloc[0]
    assert F.ljung_box_pvalue(returns, 20) == pytest.approx(expected, rel=1e-8)
    for i, row in enumerate(F.ljung_box_pvalue(panel, 20)):
        assert row == pytest.approx(acorr_ljungbox(panel[i], lags=[20])["lb_pvalue"].iloc[0], rel=1e-8)


def test_jarque_bera_matches_scipy_and_statsmodels(returns, panel):
    assert F.jarque_bera_pvalue(panel[0]) == pytest.approx(stats.jarque_bera(panel[0]).pvalue, rel=1e-8, abs=1e-300)
    np.testing.assert_allclose(F.jarque_bera_pvalue(panel), sm_jarque_bera(panel, axis=1)[1], rtol=1e-8, atol=1e-300)
    normal = np.random.default_rng(0).standard_normal(2000)
    assert F.jarque_bera_pvalue(normal) == pytest.approx(stats.jarque_bera(normal).pvalue, rel=1e-8)


def test_arch_lm_matches_statsmodels_het_arch(returns, panel):
    expected = het_arch(returns - returns.mean(), nlags=10, result_object=False)[1]
    assert F.arch_lm_pvalue(returns)[0] == pytest.approx(expected, rel=1e-6, abs=1e-300)
    normal = np.random.default_rng(5).standard_normal((3, 800))
    for x, p in zip(normal, F.arch_lm_pvalue(normal)):
        assert p == pytest.approx(het_arch(x - x.mean(), nlags=10, result_object=False)[1], rel=1e-8)
    for x, p in zip(panel, F.arch_lm_pvalue(panel, chunk=3)):  # across chunk boundaries too
        assert p == pytest.approx(het_arch(x - x.mean(), nlags=10, result_object=False)[1], rel=1e-6, abs=1e-300)


def test_power_law_exponent_matches_linregress(returns):
    curve = sm_acf(np.abs(returns), nlags=100, fft=False)[1:]
    lags = np.arange(1, 101)
    keep = curve > 0
    fit = stats.linregress(np.log(lags[keep]), np.log(curve[keep]))
    assert F.power_law_exponent(curve)[0] == pytest.approx(-fit.slope, rel=1e-10)
    exact = 0.3 * lags**-0.4
    assert F.power_law_exponent(exact)[0] == pytest.approx(0.4, rel=1e-12)
    assert np.isnan(F.power_law_exponent(-exact)[0])


def test_volume_surprise_is_the_volume_channel_of_to_features(sp500_recent):
    bars = sp500_recent.iloc[:400]
    expected = to_features(bars)[:, 4]
    np.testing.assert_allclose(F.volume_surprise(bars["volume"].to_numpy()[None, :])[0], expected, atol=1e-10)


def test_row_correlation_matches_pearsonr(panel):
    y = np.abs(panel) + 0.1 * np.roll(panel, 1, axis=1)
    for i, value in enumerate(F.row_correlation(panel, y)):
        assert value == pytest.approx(stats.pearsonr(panel[i], y[i])[0], rel=1e-10)


def test_invalid_bar_counts_find_each_broken_bar(sp500_recent):
    paths = F.paths_from_bars(sp500_recent.iloc[:300])
    assert F.invalid_bar_counts(paths)[0] == 0
    paths.high[0, 10] = paths.close[0, 10] * 0.99  # high below close
    paths.low[0, 20] = paths.open[0, 20] * 1.01  # low above open
    paths.volume[0, 30] = -1.0
    paths.close[0, 40] = np.nan
    assert F.invalid_bar_counts(paths)[0] == 4


# --- every built-in fact: its statistics against independent values, and its vectorised path


def _sum(x, k):
    return np.convolve(x, np.ones(k), "valid")


def test_fact_statistics_on_real_returns(returns, sp500_recent):
    bars = sp500_recent
    acf_r = sm_acf(returns, nlags=20, fft=False)
    out = F.NoAutocorrelation().compute(returns, bars)
    assert out["max_abs_acf"] == pytest.approx(np.abs(acf_r[1:]).max(), rel=1e-10)
    assert out["excess_over_noise"] == pytest.approx(np.abs(acf_r[1:]).max() - 1.96 / np.sqrt(returns.size), rel=1e-10)

    out = F.HeavyTails().compute(returns)
    assert out["excess_kurtosis"] == pytest.approx(stats.kurtosis(returns), rel=1e-10)
    assert out["jarque_bera_pvalue"] == pytest.approx(stats.jarque_bera(returns).pvalue, abs=1e-300)

    out = F.GainLossAsymmetry().compute(returns)
    assert out["skewness_1"] == pytest.approx(stats.skew(returns), rel=1e-10)
    assert out["skewness_20"] == pytest.approx(stats.skew(_sum(returns, 20)), rel=1e-10)

    out = F.AggregationalGaussianity().compute(returns)
    for h in (1, 5, 20, 60):
        assert out[f"kurtosis_{h}"] == pytest.approx(stats.kurtosis(_sum(returns, h)), rel=1e-9)

    out = F.VolatilityClustering().compute(returns)
    assert out["acf_abs_1_10"] == pytest.approx(sm_acf(np.abs(returns), nlags=10)[1:].mean(), rel=1e-10)
    assert out["acf_sq_1_10"] == pytest.approx(sm_acf(returns**2, nlags=10)[1:].mean(), rel=1e-10)

    out = F.SlowDecay().compute(returns)
    assert out["acf_abs_50_100"] == pytest.approx(
        sm_acf(np.abs(returns), nlags=100, fft=False)[50:101].mean(), rel=1e-10
    )

    out = F.LeverageEffect().compute(returns)
    lev = sm_ccf(returns**2, returns, adjusted=False)
    assert out["leverage_1"] == pytest.approx(lev[1], rel=1e-10)
    assert out["leverage_1_10"] == pytest.approx(lev[1:11].mean(), rel=1e-10)

    out = F.VolumeVolatility().compute(returns, bars)
    surprise = to_features(bars)[:, 4]
    assert out["corr_abs_return_volume"] == pytest.approx(stats.pearsonr(np.abs(returns), surprise)[0], rel=1e-9)

    assert F.BarValidity().compute(returns, bars)["invalid_bars"] == 0


def test_vectorised_paths_equal_one_series_at_a_time(sp500_recent):
    feats = to_features(sp500_recent)
    paths = Paths.from_features(
        np.stack([feats[i : i + 700] for i in (0, 500, 1000)]), Anchor.after(sp500_recent.iloc[:1])
    )
    returns = paths.log_returns()
    for cls in F.BUILT_IN_FACTS:
        fact = cls()
        many = fact.compute_paths(returns, paths)
        assert set(many) == set(cls.statistics)
        for i in range(paths.n_paths):
            one = fact.compute(returns[i], paths.path(i))
            for key in cls.statistics:
                assert many[key][i] == pytest.approx(one[key], rel=1e-9, abs=1e-12, nan_ok=True), (cls.name, key)


def test_docstrings_give_description_rule_and_reference():
    for cls in F.BUILT_IN_FACTS:
        assert cls.description() and not cls.description().startswith("Pass rule")
        assert cls.rule() and "Pass rule" not in cls.rule()
        assert cls.reference and cls.statistics


def test_paths_from_bars_without_volume(sp500_recent):
    bars = sp500_recent[["open", "high", "low", "close"]].iloc[:50]
    one = F.paths_from_bars(bars)
    assert one.close.shape == (1, 50) and (one.volume == 0).all()
    assert isinstance(one.dates, pd.DatetimeIndex)
