"""Like with like: synthetic paths are set beside real windows of their own length, in the
scorecard's figure, its table and its verdicts."""

from __future__ import annotations

import numpy as np
import pytest

from synthmarket import distances as dist
from synthmarket.facts import plot_scorecard, scorecard
from synthmarket.facts.base import percentile_among, real_windows
from synthmarket.facts.results import MIN_REAL_WINDOW_SHARE

L = 252


@pytest.fixture(scope="module")
def real_returns(sp500):
    return np.diff(np.log(sp500["close"].to_numpy(dtype=float)))


@pytest.fixture(scope="module")
def gaussian_card(sp500, real_returns):
    """200 i.i.d. Gaussian paths of one year, as returns, with the real mean and spread."""
    rng = np.random.default_rng(0)
    returns = real_returns.mean() + real_returns.std() * rng.standard_normal((200, L))
    return scorecard(sp500, returns, scores=False)


def test_real_windows_are_consecutive_non_overlapping_and_end_with_the_series(real_returns):
    windows = real_windows(real_returns, L)
    n = real_returns.size
    assert windows.shape == (n // L, L) == (19, 252)
    assert np.array_equal(windows.ravel(), real_returns[n % L :])  # the oldest n mod L returns are left out
    assert real_windows(real_returns, n).shape == (1, n)
    assert real_windows(real_returns, n + 1) is None


def test_one_year_windows_cluster_less_than_the_whole_history(real_returns):
    """The bias the figure corrects: S&P 500 1999-2018, acf(|r|) at lag 1 is 0.244 on the whole history,
    a median 0.061 (5-95%: -0.09 to 0.26) on its 19 one-year windows."""
    whole = dist.acf(np.abs(real_returns), 1)[1]
    per_window = dist.acf(np.abs(real_windows(real_returns, L)), 1)[:, 1]
    assert whole == pytest.approx(0.244, abs=0.001)
    assert np.median(per_window) == pytest.approx(0.061, abs=0.001)
    assert np.median(per_window) < whole / 2


def test_the_figure_band_comes_from_windows_of_the_paths_length(gaussian_card, real_returns):
    curves = gaussian_card.curves
    windows = real_windows(real_returns, L)
    assert curves["real_windows"] == real_returns.size // L == len(windows)
    expected = np.percentile(dist.acf(np.abs(windows), L - 2), [5, 50, 95], axis=0)
    assert curves["real_window_curves"]["acf_abs"] == pytest.approx(expected)
    assert curves["real_window_curves"]["acf_abs"][1, 1] < curves["real_curves"]["acf_abs"][1]  # median below whole
    assert set(curves["kurtosis_real_windows"]) == set(curves["kurtosis_synthetic"])


def test_every_band_panel_draws_the_real_windows_and_the_whole_history_dashed(gaussian_card):
    fig = plot_scorecard(gaussian_card)
    panels = {ax.get_title(): ax for ax in fig.axes}
    curves = gaussian_card.curves
    for title in (
        "ACF of r",
        "ACF of |r|",
        "ACF of r$^2$",
        "Leverage corr(r$_t$, r$_{t+k}^2$)",
        "Excess kurtosis against horizon",
    ):
        lines = {line.get_label(): line for line in panels[title].get_lines()}
        assert "real 252-step windows (n=19) median" in lines, title
        assert lines["real, whole history"].get_linestyle() == "--", title
        labels = [c.get_label() for c in panels[title].collections]
        assert "real 252-step windows (n=19) 5-95%" in labels and "synthetic 5-95%" in labels, title
    median = panels["ACF of |r|"].get_lines()
    drawn = next(line for line in median if line.get_label().endswith("median") and "real" in line.get_label())
    assert np.asarray(drawn.get_ydata()) == pytest.approx(curves["real_window_curves"]["acf_abs"][1, 1:])


def test_percentile_counts_ties_half():
    assert percentile_among(np.array([1.0, 2.0, 3.0]), 2.0) == 50.0
    assert percentile_among(np.zeros(19), 0.0) == 50.0  # a statistic every window shares
    assert percentile_among(np.array([1.0, 2.0]), 5.0) == 100.0
    assert np.isnan(percentile_among(np.array([np.nan]), 1.0))


def test_the_real_windows_themselves_sit_at_the_50th_percentile(sp500, real_returns):
    card = scorecard(sp500, real_windows(real_returns, L), scores=False)
    table = card.table.dropna(subset=["real_window_percentile"])
    assert len(table) >= 18  # every statistic of returns; the facts of bars are not judged on returns
    assert table["real_window_percentile"].to_numpy() == pytest.approx(50.0)
    assert table["median"].to_numpy() == pytest.approx(table["real_windows_median"].to_numpy())


def test_gaussian_leverage_sits_above_every_real_year(gaussian_card):
    """Symmetric i.i.d. paths have no leverage effect; every real one-year window has one."""
    row = gaussian_card.table.set_index("statistic").loc["mean corr(r_t, r_t+k^2), k 1-10"]
    assert row["real_window_percentile"] == 100.0
    assert row["verdict"] == "FAIL" and gaussian_card["leverage_effect"].holds_on_real_windows


def test_a_rule_the_real_windows_fail_cannot_judge_at_this_length(gaussian_card):
    """Slow decay (mean acf(|r|) at lags 50-100 above 0.02) holds on 1 of the 19 real one-year windows:
    it is no verdict on the model, pass or fail."""
    slow = gaussian_card["slow_decay"]
    assert slow.holds_on_real is True and slow.real_windows_pass_rate < MIN_REAL_WINDOW_SHARE
    assert slow.passed is None and slow.note.startswith("cannot judge at this length: the real windows of 252 steps")
    assert "slow_decay" in gaussian_card.too_short and "slow_decay" not in gaussian_card.failed
    verdicts = gaussian_card.verdicts.set_index("fact")
    assert verdicts.loc["slow_decay", "verdict"] == "n/a"
    assert verdicts.loc["slow_decay", "rule"].startswith("not judged: cannot judge at this length")
    assert "cannot judge at this length (252 steps" in gaussian_card.summary()
    assert gaussian_card.to_dict()["facts"]["slow_decay"]["real_windows_pass_rate"] == slow.real_windows_pass_rate


def test_the_resampled_pass_rate_is_seeded(sp500, real_returns):
    returns = real_windows(real_returns, L)
    first = scorecard(sp500, returns, facts=["volatility_clustering"], scores=False, seed=3)
    again = scorecard(sp500, returns, facts=["volatility_clustering"], scores=False, seed=3)
    rate = first["volatility_clustering"].real_windows_pass_rate
    assert rate == again["volatility_clustering"].real_windows_pass_rate and 0.0 < rate < 1.0


def test_facts_of_bars_use_windows_of_the_real_bars(sp500):
    from synthmarket.bars import Anchor, to_features
    from synthmarket.paths import Paths

    feats = to_features(sp500)
    paths = Paths.from_features(np.stack([feats[s : s + L] for s in range(0, 2000, 250)]), Anchor.after(sp500.iloc[:1]))
    card = scorecard(sp500, paths, facts=["volume_volatility", "bar_validity"], scores=False)
    assert card["volume_volatility"].real_windows["corr_abs_return_volume"].shape == (len(sp500) // L,)
    assert card["bar_validity"].real_windows_pass_rate == 1.0 and card["bar_validity"].passed
