"""synthmarket.distances and .window_scores against independent computations (statsmodels, scipy, loops)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import wasserstein_distance
from statsmodels.tsa.stattools import acf as sm_acf
from statsmodels.tsa.stattools import ccf as sm_ccf

from synthmarket.distances import (
    acf,
    all_distances,
    dependence_curves,
    dy_distances,
    dy_metric,
    leverage,
    return_distances,
    rolling_sums,
    wasserstein1,
)
from synthmarket.errors import DataError
from synthmarket.window_scores import discriminative_score, memorisation_score, predictive_score


@pytest.fixture(scope="module")
def real(sp500_recent):
    return np.diff(np.log(sp500_recent["close"].to_numpy()))


@pytest.fixture(scope="module")
def synthetic():
    rng = np.random.default_rng(7)
    return 0.01 * rng.standard_t(4, size=(6, 900))


def test_acf_matches_statsmodels(real):
    for x in (real, np.abs(real), real**2):
        np.testing.assert_allclose(acf(x, 120), sm_acf(x, nlags=120, fft=False), atol=1e-12)


def test_acf_of_each_path_matches_statsmodels(synthetic):
    ours = acf(synthetic, 30)
    for i, path in enumerate(synthetic):
        np.testing.assert_allclose(ours[i], sm_acf(path, nlags=30), atol=1e-12)


def test_leverage_matches_statsmodels_ccf_and_pearson(real):
    ours = leverage(real, 40)
    np.testing.assert_allclose(ours, sm_ccf(real**2, real, adjusted=False)[:41], atol=1e-12)
    # For small lags the full-sample convention is close to the plain Pearson correlation.
    pearson = [np.corrcoef(real[:-k], real[k:] ** 2)[0, 1] for k in (1, 2, 3)]
    np.testing.assert_allclose(ours[1:4], pearson, atol=0.02)
    assert ours[1:6].mean() < 0  # the S&P 500 shows the leverage effect


def test_dependence_curves_agree_with_single_functions(synthetic):
    curves = dependence_curves(synthetic, 25)
    np.testing.assert_allclose(curves["acf_abs"], acf(np.abs(synthetic), 25), atol=1e-12)
    np.testing.assert_allclose(curves["acf_sq"], acf(synthetic**2, 25), atol=1e-12)
    np.testing.assert_allclose(curves["leverage"], leverage(synthetic, 25), atol=1e-12)


def test_rolling_sums_match_a_loop(real):
    k = 5
    expected = np.array([real[i : i + k].sum() for i in range(real.size - k + 1)])
    np.testing.assert_allclose(rolling_sums(real, k), expected, atol=1e-12)


def test_wasserstein_matches_scipy(real, synthetic):
    assert wasserstein1(real, synthetic) == pytest.approx(wasserstein_distance(real, synthetic.ravel()), rel=1e-9)
    # ties and a smaller second sample
    a, b = np.round(real, 3), np.round(synthetic[0, :50], 2)
    assert wasserstein1(a, b) == pytest.approx(wasserstein_distance(a, b), rel=1e-9)
    assert wasserstein1(a, a) == pytest.approx(0.0, abs=1e-15)


def test_return_distances_keys_and_values(real, synthetic):
    out = return_distances(real, synthetic, max_lag=100)
    assert list(out) == ["w1_1", "w1_5", "w1_20", "w1_100", "acf_r", "acf_abs", "acf_sq", "leverage"]
    pooled = np.concatenate([np.convolve(p, np.ones(20), "valid") for p in synthetic])
    assert out["w1_20"] == pytest.approx(
        wasserstein_distance(np.convolve(real, np.ones(20), "valid"), pooled), rel=1e-9
    )
    mean_acf = np.mean([sm_acf(np.abs(p), nlags=100) for p in synthetic], axis=0)
    expected = np.linalg.norm(sm_acf(np.abs(real), nlags=100)[1:] - mean_acf[1:])
    assert out["acf_abs"] == pytest.approx(expected, rel=1e-9)
    mean_lev = np.mean([sm_ccf(p**2, p, adjusted=False)[:101] for p in synthetic], axis=0)
    expected = np.linalg.norm(sm_ccf(real**2, real, adjusted=False)[1:101] - mean_lev[1:])
    assert out["leverage"] == pytest.approx(expected, rel=1e-9)


def test_max_lag_is_clipped_to_short_series(real):
    out = return_distances(real[:300], np.tile(real[:60], (3, 1)), lags=(1, 5), max_lag=250)
    expected = np.linalg.norm(sm_acf(real[:300], nlags=58)[1:] - sm_acf(real[:60], nlags=58)[1:])
    assert out["acf_r"] == pytest.approx(expected, rel=1e-9)


def test_distances_rank_a_close_model_above_a_far_one(real):
    rng = np.random.default_rng(0)
    windows = np.lib.stride_tricks.sliding_window_view(real, 500)[::200]
    gaussian = real.std() * rng.standard_normal(windows.shape)
    near, far = return_distances(real, windows), return_distances(real, gaussian)
    for key in ("w1_1", "acf_abs", "acf_sq", "leverage"):
        assert near[key] < far[key]
    assert dy_distances(real, windows)["dy_1"] < dy_distances(real, gaussian)["dy_1"]


def test_dy_matches_a_histogram_computation(real, synthetic):
    edges = np.unique(np.quantile(real, np.linspace(0, 1, real.size // 5 + 1)))
    widths = np.diff(edges)
    count_r, _ = np.histogram(real, edges)
    count_s, _ = np.histogram(synthetic.ravel(), edges)
    p_r = count_r / (real.size * widths)
    p_s = np.maximum(count_s, 0.5) / (synthetic.size * widths)
    assert dy_metric(real, synthetic) == pytest.approx(np.sum(np.abs(np.log(p_r) - np.log(p_s))), rel=1e-9)
    assert dy_metric(real, real) == pytest.approx(0.0, abs=1e-9)


def test_dy_keys_and_all_distances(real, synthetic):
    dy = dy_distances(real, synthetic)
    assert list(dy) == ["dy_1", "dy_5", "dy_20", "dy_100"]
    assert all(np.isfinite(v) and v > 0 for v in dy.values())
    assert set(all_distances(real, synthetic)) == set(dy) | set(return_distances(real, synthetic))


def test_bad_input_is_a_data_error(real, synthetic):
    with pytest.raises(DataError, match="1-D"):
        return_distances(synthetic, synthetic)
    with pytest.raises(DataError, match="NaN"):
        return_distances(np.r_[real, np.nan], synthetic)
    with pytest.raises(DataError, match="Horizon"):
        return_distances(real, synthetic[:, :50], lags=(1, 100))


def _gaussian_like(real, n_paths, n_steps, seed=0):
    return real.mean() + real.std() * np.random.default_rng(seed).standard_normal((n_paths, n_steps))


def test_memorisation_catches_replayed_windows_only(real):
    windows = np.lib.stride_tricks.sliding_window_view(real, 300)[::150]
    copied = memorisation_score(real, windows)
    fresh = memorisation_score(real, _gaussian_like(real, 30, 300))
    assert copied["memorisation_nn_ratio"] == pytest.approx(0.0, abs=1e-6)
    assert copied["memorisation_copy_share"] == 1.0
    assert fresh["memorisation_copy_share"] < 0.05 and fresh["memorisation_nn_ratio"] > 0.9
    too_calm = memorisation_score(real, 0.1 * _gaussian_like(real, 30, 300))  # collapse is not copying
    assert too_calm["memorisation_copy_share"] < 0.05
    # the nearest-neighbour distances equal a brute-force computation
    scale = real.std()
    queries = np.lib.stride_tricks.sliding_window_view(real[:200] / scale, 20)
    brute = np.sqrt(((queries[:5, None, :] - queries[None, :, :]) ** 2).sum(-1))
    for i in range(5):
        brute[i, max(0, i - 19) : i + 20] = np.inf
    from synthmarket.window_scores import _nearest_sq_distances

    np.testing.assert_allclose(
        np.sqrt(_nearest_sq_distances(queries, queries, exclude_band=20))[:5], brute.min(axis=1), rtol=1e-6
    )


def test_discriminative_and_predictive_scores_tell_gaussian_from_real(real):
    gaussian = _gaussian_like(real, 60, 600, seed=1)
    found = discriminative_score(real, gaussian, steps=120, seed=3)
    assert found["discriminative_accuracy"] > 0.6
    assert found["discriminative_score"] == pytest.approx(abs(found["discriminative_accuracy"] - 0.5))
    predictive = predictive_score(real, gaussian, steps=120, seed=3)
    assert predictive["predictive_ratio"] > 1.05  # i.i.d. paths teach nothing about volatility
    assert predictive["predictive_ratio"] == pytest.approx(
        predictive["predictive_tstr_mae"] / predictive["predictive_trtr_mae"]
    )


def test_window_scores_are_seeded(real):
    gaussian = _gaussian_like(real, 10, 300, seed=2)
    assert discriminative_score(real, gaussian, steps=15, seed=4) == discriminative_score(
        real, gaussian, steps=15, seed=4
    )
    assert predictive_score(real, gaussian, steps=15, seed=4) == predictive_score(real, gaussian, steps=15, seed=4)


def test_masked_acf_is_statsmodels_adjusted_and_skips_the_days_outside():
    """With a mask, only pairs of days both inside count (the regime comparison's real ACF)."""
    from statsmodels.tsa.stattools import acf as sm_acf

    from synthmarket.distances import acf

    rng = np.random.default_rng(0)
    x = np.abs(rng.standard_t(4, size=(3, 400)))
    every_day = np.ones_like(x, dtype=bool)
    expected = np.array([sm_acf(row, nlags=10, adjusted=True) for row in x])
    np.testing.assert_allclose(acf(x, 10, every_day), expected, atol=1e-12)
    mask = rng.random(x.shape) > 0.3
    for row, inside in zip(x, mask):
        centred = np.where(inside, row - row[inside].mean(), 0.0)
        variance = np.mean(centred[inside] ** 2)
        by_hand = [
            np.mean(centred[:-k][inside[:-k] & inside[k:]] * centred[k:][inside[:-k] & inside[k:]]) / variance
            for k in range(1, 11)
        ]
        np.testing.assert_allclose(acf(row, 10, inside)[1:], by_hand, atol=1e-12)
    assert np.isnan(acf(x[0], 10, np.arange(400) < 5, min_pairs=11)[1:]).all()
