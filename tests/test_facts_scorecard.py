"""The scorecard on real, Gaussian and bootstrapped paths; its API; third-party facts."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from arch.bootstrap import StationaryBootstrap
from matplotlib.figure import Figure

from synthmarket.bars import Anchor, to_features
from synthmarket.errors import ConfigError, DataError, PluginError
from synthmarket.facts import BUILT_IN_FACTS, StylizedFact, available_facts, scorecard
from synthmarket.paths import Paths

MARGINAL = ("no_autocorrelation", "heavy_tails", "gain_loss_asymmetry", "aggregational_gaussianity", "bar_validity")
DOCS = Path(__file__).resolve().parents[1] / "docs" / "facts.md"


def real_windows(bars, length: int, stride: int) -> Paths:
    """Windows of the real bars as paths, through the same feature round trip generators use."""
    feats = to_features(bars)
    windows = np.stack([feats[s : s + length] for s in range(0, len(feats) - length + 1, stride)])
    return Paths.from_features(windows, Anchor.after(bars.iloc[:1]))


def gaussian_paths(bars, n_paths: int, n_steps: int, seed: int = 0) -> Paths:
    """I.i.d. Gaussian features with the real channels' mean and spread."""
    feats = to_features(bars)
    rng = np.random.default_rng(seed)
    draws = feats.mean(axis=0) + rng.standard_normal((n_paths, n_steps, feats.shape[1])) * feats.std(axis=0)
    draws[..., 2:4] = np.abs(draws[..., 2:4])
    return Paths.from_features(draws, Anchor.after(bars))


def bootstrap_paths(bars, n_paths: int, n_steps: int, seed: int = 0) -> Paths:
    """A stationary bootstrap (mean block 20 days) of whole bars' features."""
    feats = to_features(bars)
    boot = StationaryBootstrap(20, feats, seed=np.random.default_rng(seed))
    draws = [data[0][:n_steps] for data, _ in boot.bootstrap(n_paths)]
    return Paths.from_features(np.stack(draws), Anchor.after(bars))


@pytest.fixture(scope="module")
def gaussian_card(sp500):
    return scorecard(sp500, gaussian_paths(sp500, 200, 2500), scores=False)


@pytest.fixture(scope="module")
def bootstrap_card(sp500):
    return scorecard(sp500, bootstrap_paths(sp500, 100, 2500), scores=["memorisation"])


def test_real_windows_pass_every_fact(sp500):
    card = scorecard(sp500, real_windows(sp500, 2500, 100), scores=False)
    assert card.passed, card.verdicts.to_string()
    assert all(r.passed and r.holds_on_real for r in card.results)


def test_one_half_against_the_other_passes_every_fact(sp500):
    first, second = sp500.iloc[:2515], sp500.iloc[2515:]
    assert scorecard(first, real_windows(second, 1000, 50), scores=False).passed
    assert scorecard(second, real_windows(first, 1000, 50), scores=False).passed


def test_real_windows_say_when_paths_are_too_short_to_judge_a_fact(sp500):
    """One-year paths cannot show the lag-50-100 memory: real one-year windows fail slow_decay too, so it is
    not judged; the market's own one-year windows, as paths, then fail no fact (volatility_clustering failed
    them before the real windows decided what can be judged)."""
    short = scorecard(sp500, real_windows(sp500, 252, 126), scores=False)
    slow = short["slow_decay"]
    assert slow.passed is None and slow.holds_on_real is True and slow.holds_on_real_windows is False
    assert slow.real_windows_pass_rate == 0.0 and slow.real_windows["acf_abs_50_100"].shape == (19,)
    assert slow.note == (
        "cannot judge at this length: the real windows of 252 steps, resampled as sets of paths, "
        "pass the rule 0% of the time (at least 67% must)"
    )
    assert "slow_decay" in short.too_short and "volatility_clustering" in short.too_short
    assert "cannot judge at this length (252 steps" in short.summary()
    assert short.passed and not short.failed
    verdicts = short.verdicts.set_index("fact")
    assert (
        verdicts.loc["slow_decay", "verdict"] == "n/a" and verdicts.loc["slow_decay", "holds on real windows"] == "0%"
    )
    assert short["bar_validity"].real_windows["invalid_bars"].shape == (19,)  # facts of bars: windows of real bars
    long = scorecard(sp500, real_windows(sp500, 2500, 100), scores=False)
    assert all(r.holds_on_real_windows is not False for r in long.results) and not long.too_short


def test_gaussian_paths_fail_clustering_tails_and_leverage(gaussian_card):
    for name in ("volatility_clustering", "heavy_tails", "leverage_effect", "slow_decay", "gain_loss_asymmetry"):
        assert gaussian_card[name].passed is False, name
        assert gaussian_card[name].holds_on_real is True, name
        assert gaussian_card[name].holds_on_real_windows is True, name  # real 2,500-day windows have it
    assert not gaussian_card.too_short
    assert gaussian_card["no_autocorrelation"].passed  # i.i.d. returns are uncorrelated
    assert gaussian_card["bar_validity"].passed
    assert not gaussian_card.passed
    assert "heavy_tails" in gaussian_card.failed


def test_bootstrap_passes_marginal_facts_and_is_flagged_as_memorising(bootstrap_card):
    for name in MARGINAL:
        assert bootstrap_card[name].passed, bootstrap_card.verdicts.to_string()
    assert bootstrap_card.memorised
    assert bootstrap_card.distances["memorisation_copy_share"] > 0.2
    assert any("Memorisation" in note for note in bootstrap_card.notes)
    assert "WARNING: memorisation" in bootstrap_card.summary()


def test_gaussian_is_not_flagged_as_memorising(sp500):
    card = scorecard(sp500, gaussian_paths(sp500, 50, 500), facts=["heavy_tails"], scores=["memorisation"])
    assert card.memorised is False
    assert card.distances["memorisation_nn_ratio"] > 0.9


def test_table_reports_real_median_and_band(gaussian_card, sp500):
    table = gaussian_card.table
    assert list(table.columns) == [
        "fact",
        "statistic",
        "real",
        "median",
        "p5",
        "p95",
        "real_windows_median",
        "real_windows_p5",
        "real_windows_p95",
        "real_window_percentile",
        "verdict",
    ]
    row = table[table.statistic == "excess kurtosis"].iloc[0]
    real_returns = np.diff(np.log(sp500["close"].to_numpy()))
    from scipy.stats import kurtosis

    assert row.real == pytest.approx(kurtosis(real_returns), rel=1e-9)
    assert row.p5 <= row["median"] <= row.p95 and abs(row["median"]) < 0.3
    assert row.verdict == "FAIL"
    per_path = gaussian_card["heavy_tails"].synthetic["excess_kurtosis"]
    assert per_path.shape == (200,) and row["median"] == pytest.approx(np.median(per_path))


def test_distances_are_part_of_the_scorecard(gaussian_card):
    keys = {"w1_1", "w1_5", "w1_20", "w1_100", "acf_r", "acf_abs", "acf_sq", "leverage", "dy_1", "dy_100"}
    assert keys <= set(gaussian_card.distances)
    assert gaussian_card.memorised is None  # scores were not asked for


def test_outputs_markdown_html_dict_and_figure(gaussian_card):
    md = gaussian_card.to_markdown()
    assert md.startswith("# Stylized-facts scorecard") and "**FAIL**" in md
    for cls in BUILT_IN_FACTS:
        assert cls.name in md
    html = gaussian_card._repr_html_()
    assert "<table" in html and "FAIL" in html
    json.dumps(gaussian_card.to_dict())
    fig = gaussian_card.plot()
    assert isinstance(fig, Figure) and len(fig.axes) == 8
    assert "Return density (log scale)" in [ax.get_title() for ax in fig.axes]
    assert "Scorecard(" in repr(gaussian_card)


def test_broken_bars_fail_bar_validity(sp500):
    paths = real_windows(sp500.iloc[:1200], 500, 200)
    paths.high[1, 7] = paths.low[1, 7] * 0.5
    card = scorecard(sp500, paths, facts=["bar_validity"], scores=False)
    assert card["bar_validity"].passed is False
    assert card["bar_validity"].synthetic["invalid_bars"].tolist() == [0.0, 1.0, 0.0, 0.0]


def test_without_volume_the_volume_fact_is_not_judged(sp500):
    real = sp500[["open", "high", "low", "close"]]
    card = scorecard(real, real_windows(sp500, 2500, 500), scores=False)
    assert card["volume_volatility"].passed is None
    assert "no volume" in card["volume_volatility"].note
    assert card.passed  # a fact that does not apply does not fail the card


def test_returns_without_bars(sp500):
    returns = gaussian_paths(sp500, 20, 300).log_returns()
    card = scorecard(sp500, returns, facts=["heavy_tails", "volume_volatility", "bar_validity"], scores=False)
    assert card["heavy_tails"].passed is False
    assert card["volume_volatility"].passed is None and card["bar_validity"].passed is None


class LargestDailyMove(StylizedFact):
    """Crashes: the paths contain at least one daily move of 5 sigma or more.

    Statistics: the largest absolute daily return in units of the path's standard deviation.

    Pass rule: the median path's largest move exceeds 5 standard deviations.
    """

    name = "test_largest_move"
    statistics = {"largest_move": "max |r| / std(r)"}
    reference = "test"
    max_paths = 7

    def compute(self, returns, bars=None):
        return {"largest_move": float(np.max(np.abs(returns)) / np.std(returns))}

    def passes(self, real, synthetic):
        return float(np.median(synthetic["largest_move"])) > 5


def test_a_plain_stylized_fact_runs_per_path_on_a_subsample(sp500):
    card = scorecard(sp500, gaussian_paths(sp500, 20, 2500), facts=[LargestDailyMove, "heavy_tails"], scores=False)
    result = card["test_largest_move"]
    assert result.synthetic["largest_move"].shape == (7,)
    assert result.passed is False and result.holds_on_real is True and result.real_windows_pass_rate == 1.0
    assert result.rule == "the median path's largest move exceeds 5 standard deviations."
    assert any("computed on 7 randomly chosen paths of 20" in n for n in card.notes)
    # 2 of the 16 real 300-day windows move 5 of their own standard deviations in a day (none of the 7 the
    # fact's max_paths keeps): the rule cannot judge such paths
    short = scorecard(sp500, gaussian_paths(sp500, 20, 300), facts=[LargestDailyMove], scores=False)[
        "test_largest_move"
    ]
    assert short.real_windows["largest_move"].shape == (7,)  # 7 of the 16 real windows, as of the paths
    assert short.passed is None and "pass the rule 0% of the time" in short.note


class BrokenFact(LargestDailyMove):
    """A fact with a bug."""

    name = "test_broken"

    def compute(self, returns, bars=None):
        return {"largest_move": float(returns[len(returns) * 2])}


def test_a_broken_plugin_fact_is_a_plugin_error(sp500):
    with pytest.raises(PluginError, match="test_broken.*IndexError"):
        scorecard(sp500, gaussian_paths(sp500, 3, 300), facts=[BrokenFact], scores=False)


def test_registry_lists_the_built_in_facts_in_order():
    assert list(available_facts())[: len(BUILT_IN_FACTS)] == [cls.name for cls in BUILT_IN_FACTS]


def test_facts_reference_documents_every_built_in_fact():
    text = DOCS.read_text()
    for cls in BUILT_IN_FACTS:
        assert f"`{cls.name}`" in text, cls.name
        assert cls.rule() in " ".join(text.split()), cls.name


def test_bad_inputs_are_user_errors(sp500):
    paths = gaussian_paths(sp500, 3, 300)
    with pytest.raises(DataError, match="too short"):
        scorecard(sp500, gaussian_paths(sp500, 3, 50))
    with pytest.raises(DataError, match="OHLCV DataFrame"):
        scorecard(sp500["close"], paths)
    with pytest.raises(PluginError, match="No fact named"):
        scorecard(sp500, paths, facts=["not_a_fact"])
    with pytest.raises(ConfigError, match="Unknown score"):
        scorecard(sp500, paths, scores=["accuracy"])
    broken = gaussian_paths(sp500, 3, 300)
    broken.close[0, 5] = np.nan
    with pytest.raises(DataError, match="NaN"):
        scorecard(sp500, broken)


def test_scorecard_carries_the_window_scores(sp500):
    card = scorecard(sp500, gaussian_paths(sp500, 40, 400), facts=["heavy_tails"], scores=["discriminative"], seed=2)
    assert 0.0 <= card.distances["discriminative_score"] <= 0.5
    assert "predictive_ratio" not in card.distances
    assert card.timings["discriminative score"] > 0
