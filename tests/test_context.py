"""Scenarios that start from the market's state (issue #22): the context in the Generator
contract, garch and fhs conditioned on it, and the command line. Real S&P 500 bars."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from arch import arch_model
from typer.testing import CliRunner

from synthmarket.cli import app
from synthmarket.context import bars_up_to
from synthmarket.errors import ConfigError
from synthmarket.generator import Generator
from synthmarket.paths import Paths
from synthmarket.registry import get_registry


@pytest.fixture(scope="module")
def bars(sp500):
    return sp500.loc["2004":"2014"]


@pytest.fixture(scope="module", params=["garch", "fhs"])
def fitted(request, bars):
    model = get_registry().get("generator", request.param)()
    model.fit(bars)
    return model


def early_vol(model, context, n=4000, days=5) -> float:
    features = model.sample(n, 20, seed=3, context=context)
    return float(features[:, :days, 0].std())


def test_a_turbulent_context_starts_paths_more_volatile_than_a_calm_one(fitted, bars):
    calm = bars_up_to(bars, "2006-12-29")  # realised volatility about 10% a year
    turbulent = bars_up_to(bars, "2008-10-10")  # about 80%
    assert early_vol(fitted, turbulent) > 4 * early_vol(fitted, calm)
    late = fitted.sample(4000, 400, seed=3, context=turbulent)[:, -50:, 0].std()
    assert late < 0.6 * early_vol(fitted, turbulent)  # the variance reverts to its mean


def test_the_first_variance_is_arch_s_one_step_forecast_at_the_context_s_end(fitted, bars):
    context = bars_up_to(bars, "2011-08-08")
    returns = 100 * np.diff(np.log(context["close"].to_numpy()))
    p = fitted.params
    dist = {"garch": fitted.hparams["dist"], "fhs": fitted.hparams["dist"]}[fitted.name]
    model = arch_model(returns, mean="Constant", vol="GARCH", p=1, q=1, dist="studentst" if dist == "t" else "normal")
    fixed = model.fix([p["mu"], p["omega"], p["alpha"], p["beta"]] + ([p["nu"]] if dist == "t" else []))
    # the recursion by hand from arch's filtered series: omega + alpha * eps_T^2 + beta * sigma_T^2
    eps, sigma = returns[-1] - p["mu"], fixed.conditional_volatility[-1]
    by_hand = p["omega"] + p["alpha"] * eps**2 + p["beta"] * sigma**2
    assert fitted.filtered_variance(returns / 100) == pytest.approx(by_hand, rel=1e-9)
    first = fitted.sample(40_000, 1, seed=5, context=context)[:, 0, 0]
    assert first.std() == pytest.approx(np.sqrt(by_hand) / 100, rel=0.03)


def test_no_context_is_reproducible_and_last_is_the_end_of_training(fitted, bars, tmp_path):
    none = fitted.sample(50, 30, seed=1, context=None)
    np.testing.assert_array_equal(none, fitted.sample(50, 30, seed=1, context=None))
    last = fitted.sample(50, 30, seed=1)
    np.testing.assert_array_equal(last, fitted.sample(50, 30, seed=1, context=bars.iloc[-1001:]))
    assert not np.array_equal(none, last)
    fitted.save(tmp_path / "m")
    loaded = Generator.load(tmp_path / "m")
    np.testing.assert_array_equal(loaded.sample(50, 30, seed=1), last)
    np.testing.assert_array_equal(loaded.sample(50, 30, seed=1, context=None), none)


@pytest.mark.parametrize("name", ["gbm", "bootstrap"])
def test_generators_without_a_market_state_accept_a_context_and_leave_it_unused(name, bars):
    model = get_registry().get("generator", name)()
    model.fit(bars)
    assert not model.uses_context
    base = model.sample(20, 30, seed=2, context=None)
    np.testing.assert_array_equal(base, model.sample(20, 30, seed=2))
    np.testing.assert_array_equal(base, model.sample(20, 30, seed=2, context=bars_up_to(bars, "2008-10-10")))


def test_a_context_continues_the_price_and_dates_after_its_last_bar(fitted, bars):
    context = bars_up_to(bars, "2008-09-12")
    paths = fitted.sample_paths(5, 10, seed=0, context=context)
    assert paths.dates[0] == pd.Timestamp("2008-09-15")
    assert paths.anchor_close == pytest.approx(context["close"].iloc[-1])


@pytest.mark.parametrize(
    ("context", "message"),
    [
        (lambda b: b.iloc[-5:], "needs at least 20 bars of context; got 4"),
        (lambda b: b.drop(columns="volume").iloc[-100:], "has 4 channels; this .* model has 5"),
        (lambda b: "yesterday", "context is 'last', None"),
    ],
)
def test_a_wrong_context_is_one_clear_error(fitted, bars, context, message):
    with pytest.raises(ConfigError, match=message):
        fitted.sample(5, 5, context=context(bars))


def test_generate_from_a_date_and_its_errors(bars, tmp_path):
    model = get_registry().get("generator", "garch")()
    model.fit(bars.loc[:"2007"])
    model.save(tmp_path / "garch")
    runner = CliRunner()
    base = ["generate", "-m", str(tmp_path / "garch"), "-n", "200", "-s", "10", "--no-progress"]
    result = runner.invoke(app, [*base, "--from", "2008-09-12", "--data", "sp500", "-o", str(tmp_path / "a.parquet")])
    assert result.exit_code == 0, result.output
    assert "from the market on 2008-09-12" in result.output
    paths = Paths.load(tmp_path / "a.parquet")
    assert paths.dates[0] == pd.Timestamp("2008-09-15")
    calm = runner.invoke(app, [*base, "--context", "none", "-o", str(tmp_path / "b.parquet")])
    assert calm.exit_code == 0 and "unconditional" in calm.output
    for extra, said in (
        (["--from", "1980-01-02", "--data", "sp500"], "lies outside the data"),
        (["--from", "2008-09-12"], "needs the history it stands on"),
        (["--context", "today"], "--context is 'last' or 'none'"),
        (["--from", "2008-09-12", "--data", "sp500", "--context", "none"], "drop --context none"),
    ):
        failed = runner.invoke(app, [*base, *extra, "-o", str(tmp_path / "c.parquet")])
        assert failed.exit_code == 2 and said in failed.output, failed.output


def test_backtest_samples_from_a_date_with_model_and_from(bars, tmp_path):
    model = get_registry().get("generator", "garch")()
    model.fit(bars.loc[:"2007"])
    model.save(tmp_path / "garch")
    runner = CliRunner()
    args = ["backtest", "-s", "buy_and_hold", "--model", str(tmp_path / "garch"), "--paths", "40", "--steps", "40"]
    args += ["-j", "1", "--no-progress", "--data", "sp500", "--start", "2008-10-13", "--end", "2008-12-05"]
    stormy = runner.invoke(app, [*args, "--from", "2008-10-10", "--out", str(tmp_path / "a")])
    calm = runner.invoke(app, [*args, "--context", "none", "--out", str(tmp_path / "b")])
    assert stormy.exit_code == 0 and calm.exit_code == 0, stormy.output + calm.output
    spread = lambda out: pd.read_parquet(out / "results.parquet").query("path != 'real'")["volatility"].median()  # noqa: E731
    assert spread(tmp_path / "a") > 2 * spread(tmp_path / "b")
    wrong = runner.invoke(
        app,
        [
            "backtest",
            "-s",
            "buy_and_hold",
            "--scenarios",
            "x.parquet",
            "--from",
            "2008-09-12",
            "-o",
            str(tmp_path / "c"),
        ],
    )
    assert wrong.exit_code == 2 and "they go with --model" in wrong.output
