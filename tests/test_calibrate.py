"""The walk-forward calibration test (issue #22) on real S&P 500 bars: garch trained to 2014,
calibrated on days of 2015 it never saw; resume, errors and the command line."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from synthmarket.calibration.scores import crps
from synthmarket.calibration.walkforward import calibrate, read_calibration
from synthmarket.cli import app
from synthmarket.errors import ConfigError
from synthmarket.registry import get_registry

SETTINGS = {"start": "2015-01-02", "end": "2015-06-30", "horizons": (1, 5), "n_paths": 200, "stride": 10}


@pytest.fixture(scope="module")
def garch(sp500, tmp_path_factory):
    model = get_registry().get("generator", "garch")()
    model.fit(sp500.loc["2009-05-01":"2014-12-31"])
    folder = tmp_path_factory.mktemp("garch")
    model.save(folder)
    return model, folder


def test_each_origin_is_sampled_from_its_own_context_and_scored(garch, sp500):
    model, _ = garch
    result = calibrate(model, sp500, **SETTINGS)
    assert len(result.dates) == 13 and result.dates[0] == pd.Timestamp("2015-01-02")
    assert result.samples.shape == (13, 2, 200) and result.realised.shape == (13, 2)
    closes = sp500["close"]
    first = result.dates[0]
    after = closes.index.get_loc(first)
    assert result.realised[0, 1] == pytest.approx(np.log(closes.iloc[after + 5] / closes.loc[first]))
    # the 5-bar predicted spread is wider than the 1-bar one, about sqrt(5) times
    ratio = result.samples[:, 1, :].std(axis=1) / result.samples[:, 0, :].std(axis=1)
    assert 1.8 < np.median(ratio) < 2.7
    scores = result.scores()
    assert set(scores["horizon"]) == {1, 5} and scores["pit"].between(0, 1).all()
    assert json.dumps(result.summary)
    # realised volatility over 5 bars: the root of the sum of the squared daily log returns
    daily = np.diff(np.log(closes.iloc[after : after + 6].to_numpy()))
    assert result.realised_vol[0, 1] == pytest.approx(np.sqrt((daily**2).sum()))
    assert result.realised_vol[0, 0] == pytest.approx(abs(result.realised[0, 0]))
    # predicted: the root of the paths' mean sum of squares, near the spread of the 5-bar sums
    assert np.median(result.predicted_vol[:, 1] / result.samples[:, 1, :].std(axis=1)) == pytest.approx(1, abs=0.15)


def test_the_tests_count_origins_a_horizon_apart_and_the_estimates_every_one(garch, sp500):
    model, _ = garch
    result = calibrate(model, sp500, **{**SETTINGS, "end": "2015-02-27", "stride": 2})
    n = len(result.dates)
    five = result.summary["horizons"]["5"]
    assert n == 20 and five["n"] == 7 and five["n_scored"] == 20  # tests: every third origin, 6 bars apart
    hits = result.realised[::3, 1] < np.quantile(result.samples[::3, 1, :].astype(float), 0.05, axis=1)
    assert five["levels"]["0.05"]["hits"] == int(hits.sum())
    predicted, realised = result.predicted_vol[:, 1], result.realised_vol[:, 1]
    assert five["vol_pearson"] == pytest.approx(np.corrcoef(predicted, realised)[0, 1])
    assert five["crps_mean"] == pytest.approx(crps(result.samples[:, 1, :].astype(float), result.realised[:, 1]).mean())


def test_an_interrupted_calibration_resumes_without_repeating_or_losing_an_origin(garch, sp500, tmp_path):
    model, _ = garch
    whole = calibrate(model, sp500, **SETTINGS)
    seen: list[int] = []

    def stop_after_the_first_batch(n):
        seen.append(n)
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        calibrate(model, sp500, **SETTINGS, out=tmp_path / "run", batch_size=4, progress=stop_after_the_first_batch)
    assert len(list((tmp_path / "run" / "parts").glob("part-*.npz"))) == 1
    counted: list[int] = []
    resumed = calibrate(
        model, sp500, **SETTINGS, out=tmp_path / "run", resume=True, batch_size=4, progress=counted.append
    )
    assert sum(counted) == 13 - 4  # only the origins not stored were sampled again
    np.testing.assert_array_equal(resumed.samples, whole.samples)
    np.testing.assert_array_equal(resumed.realised, whole.realised)
    np.testing.assert_array_equal(resumed.predicted_vol, whole.predicted_vol)
    again = read_calibration(tmp_path / "run")
    np.testing.assert_array_equal(again.samples, whole.samples)
    np.testing.assert_array_equal(again.realised_vol, whole.realised_vol)
    with pytest.raises(ConfigError, match="already holds a calibration"):
        calibrate(model, sp500, **SETTINGS, out=tmp_path / "run")
    with pytest.raises(ConfigError, match="other n_paths"):
        calibrate(model, sp500, **{**SETTINGS, "n_paths": 100}, out=tmp_path / "run", resume=True)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"start": "2014-06-02"}, "trained on data up to 2014-12-31"),
        ({"start": "2030-01-02", "end": "2030-06-01"}, "lies outside the data"),
        ({"end": "2014-12-31", "start": "2015-01-02"}, "before --from"),
        ({"horizons": (0, 5)}, "at least 1"),
    ],
)
def test_bad_periods_are_one_clear_error(garch, sp500, change, message):
    with pytest.raises(ConfigError, match=message):
        calibrate(garch[0], sp500, **{**SETTINGS, **change})


def test_the_command_line_writes_the_scores_and_prints_the_tests(garch, tmp_path):
    _, folder = garch
    args = ["calibrate", "-m", str(folder), "--data", "sp500", "--from", "2015-01-02", "--to", "2015-12-31"]
    result = CliRunner().invoke(
        app,
        [*args, "--horizons", "1,5", "--paths", "200", "--stride", "20", "-o", str(tmp_path / "c"), "--no-progress"],
    )
    assert result.exit_code == 0, result.output
    assert "Kupiec" in result.output and "horizon 5" in result.output
    scores = pd.read_csv(tmp_path / "c" / "scores.csv")
    assert len(scores) == 2 * 13 and {"pit", "hit_0.01", "crps", "predicted_vol", "realised_vol"} <= set(scores.columns)
    failed = CliRunner().invoke(app, [*args, "--horizons", "1,x", "-o", str(tmp_path / "d")])
    assert failed.exit_code == 2 and "--horizons" in failed.output


def test_the_report_shows_a_calibration_section(garch, sp500, tmp_path):
    from synthmarket.pages import build_report

    calibrate(garch[0], sp500, **SETTINGS, out=tmp_path / "calibration")
    page = build_report(tmp_path).read_text()
    assert "<h2>Calibration</h2>" in page and "Kupiec p" in page and page.count("calibration at ") == 2


@pytest.mark.slow
def test_two_worker_processes_give_the_same_samples(garch, sp500):
    one = calibrate(garch[0], sp500, **SETTINGS, batch_size=3)
    two = calibrate(garch[0], sp500, **SETTINGS, batch_size=3, jobs=2)
    np.testing.assert_array_equal(one.samples, two.samples)
    np.testing.assert_array_equal(one.realised, two.realised)
