"""Parameters as backtrader takes them (``-p key=value`` and the API), and the wording of the
messages about strategies and references. Real backtrader classes throughout."""

from __future__ import annotations

import json

import backtrader as bt
import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from synthmarket.checks import coerce_like, kind_word, type_word
from synthmarket.cli import app
from synthmarket.errors import ConfigError, PluginError
from synthmarket.montecarlo import read_results
from synthmarket.montecarlo.strategy import coerce_params, parse_param_items, resolve_params, resolve_strategy
from synthmarket.paths import FIELDS, Paths
from synthmarket.references import load_object
from synthmarket.registry import get_registry

STRATEGY_FILE = """
import backtrader as bt

from synthmarket.errors import ConfigError


class MaTrend(bt.Strategy):
    \"\"\"Long above a moving average of the close, flat below it.\"\"\"

    params = (("ma", bt.ind.SMA), ("period", 10), ("trail", False), ("extra", None), ("name", "x"),
              ("weights", (1, 2)), ("timeframe", bt.TimeFrame.Days))

    @classmethod
    def check_params(cls, params):
        if params.get("period", 10) < 2:
            raise ConfigError("MaTrend: period must be at least 2")
        ma = params.get("ma", bt.ind.SMA)
        if not (isinstance(ma, type) and issubclass(ma, bt.Indicator)):
            raise ConfigError(f"MaTrend: ma must be an indicator class; got {ma!r}")

    def __init__(self):
        self.above = self.data.close > self.p.ma(self.data, period=self.p.period)

    def next(self):
        if self.above[0] and not self.position:
            self.order_target_percent(target=0.9)
        elif not self.above[0] and self.position:
            self.close()


class Buyer(bt.Strategy):
    pass


class Helper:
    pass
"""


@pytest.fixture(scope="module")
def strategy_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("strategies") / "ma_trend.py"
    path.write_text(STRATEGY_FILE)
    return path


@pytest.fixture(scope="module")
def cls(strategy_file):
    return resolve_strategy(f"{strategy_file}:MaTrend")[0]


# -- text parses as backtrader takes it -----------------------------------------------------
@pytest.mark.parametrize(
    "given, expected",
    [
        ({"period": "20"}, {"period": 20}),
        ({"period": "1e2"}, {"period": 100}),
        ({"weights": "(3, 4)"}, {"weights": (3, 4)}),
        ({"name": "'quoted'"}, {"name": "quoted"}),
        ({"name": "plain words"}, {"name": "plain words"}),
        ({"extra": "[1, 2]"}, {"extra": [1, 2]}),
        ({"extra": "None"}, {"extra": None}),
        ({"extra": "some text"}, {"extra": "some text"}),
        ({"trail": "20.0"}, {"trail": 20.0}),  # "off, or a value"
        ({"trail": 20.0}, {"trail": 20.0}),
        ({"trail": "True"}, {"trail": True}),
        ({"trail": "no"}, {"trail": False}),
        ({"timeframe": "bt.TimeFrame.Years"}, {"timeframe": bt.TimeFrame.Years}),
        ({"timeframe": "backtrader.TimeFrame.Weeks"}, {"timeframe": bt.TimeFrame.Weeks}),
    ],
)
def test_text_parses_as_the_type_of_the_default(cls, given, expected):
    got = coerce_params(cls, given)
    assert got == expected and [type(v) for v in got.values()] == [type(v) for v in expected.values()]


@pytest.mark.parametrize(
    "given, message",
    [
        ({"period": "ten"}, "'period' of 'MaTrend' takes a whole number"),
        ({"period": 2.5}, "takes a whole number"),
        ({"trail": [1]}, "'trail' of 'MaTrend' takes true or false, a number or quoted text"),
        ({"timeframe": "bt.TimeFrame.Yeers"}, r"'bt.TimeFrame.Yeers' names nothing: 'backtrader.TimeFrame' has no"),
        ({"timeframe": "bt.ind.EMA"}, "takes a whole number"),
        ({"perid": "3"}, r"Strategy 'MaTrend' has no parameter 'perid'. Its parameters: ma=.*period=10"),
        ({"period": "1"}, "period must be at least 2"),  # the strategy's own check_params
    ],
)
def test_values_that_do_not_fit_name_the_parameter(cls, given, message):
    with pytest.raises(ConfigError, match=message):
        coerce_params(cls, given)


def test_a_key_value_item_without_an_equals_sign():
    assert parse_param_items(["ma=bt.ind.EMA", "weights=(1, 2)"]) == {"ma": "bt.ind.EMA", "weights": "(1, 2)"}
    with pytest.raises(ConfigError, match=r"'period' is not key=value \(e.g. -p fast=10\)"):
        parse_param_items(["period"])


# -- class- and function-valued parameters travel as references ---------------------------
@pytest.mark.parametrize("name", ["bt.ind.EMA", "bt.indicators.EMA", "backtrader.indicators.EMA", bt.ind.EMA])
def test_a_class_parameter_takes_a_dotted_name_or_the_class(cls, name):
    got = coerce_params(cls, {"ma": name})
    assert got == {"ma": "backtrader.indicators.ema:EMA"}
    assert json.loads(json.dumps(got)) == got  # what run.json records and workers receive
    assert resolve_params(cls, got) == {"ma": bt.ind.EMA}


def test_a_class_parameter_takes_a_module_or_file_reference(cls, tmp_path):
    assert resolve_params(cls, coerce_params(cls, {"ma": "backtrader.indicators:WMA"}))["ma"] is bt.ind.WMA
    file = tmp_path / "my_ma.py"
    file.write_text("import backtrader as bt\n\nclass MyMA(bt.ind.SMA):\n    pass\n")
    got = coerce_params(cls, {"ma": f"{file}:MyMA"})
    assert got == {"ma": f"{file.resolve()}:MyMA"}
    resolved = resolve_params(cls, got)["ma"]
    assert resolved is load_object(f"{file}:MyMA") and issubclass(resolved, bt.ind.SMA)
    # the object itself, from a user's file, becomes the same reference
    assert coerce_params(cls, {"ma": resolved}) == got


def test_a_class_that_cannot_be_found_again_stays_an_object(cls):
    class Local(bt.ind.SMA):
        pass

    assert coerce_params(cls, {"ma": Local}) == {"ma": Local}
    assert resolve_params(cls, {"ma": Local}) == {"ma": Local}


@pytest.mark.parametrize(
    "name, tried",
    [
        ("bt.ind.NoSuchAverage", r"'backtrader.ind' has no attribute 'NoSuchAverage'"),
        ("no_such_package_here.EMA", r"Could not import 'no_such_package_here'"),
        ("backtrader.indicators:NoSuchAverage", r"'backtrader.indicators' has no attribute 'NoSuchAverage'"),
    ],
)
def test_a_name_that_loads_nothing_names_the_parameter_and_what_was_tried(cls, name, tried):
    with pytest.raises(ConfigError, match=rf"Parameter 'ma' of 'MaTrend' takes a class .*names nothing: {tried}"):
        coerce_params(cls, {"ma": name})
    with pytest.raises(ConfigError, match="'ma' of 'MaTrend' takes a class"):
        coerce_params(cls, {"ma": 3})


def test_a_wrong_name_in_a_file_lists_what_the_file_defines(cls, strategy_file):
    with pytest.raises(ConfigError, match=rf"{strategy_file} defines no 'Foo'; it defines: MaTrend, Buyer, Helper\."):
        coerce_params(cls, {"ma": f"{strategy_file}:Foo"})


def test_resolve_params_costs_nothing_without_class_parameters():
    sma_cross = get_registry().get("strategy", "sma_cross")
    params = coerce_params(sma_cross, {"fast": "5"})
    assert resolve_params(sma_cross, params) is params


# -- other backtrader classes: sizers, analyzers, commission schemes -------------------------
def test_other_backtrader_classes():
    assert coerce_params(bt.sizers.PercentSizer, {"percents": "20"}) == {"percents": 20}
    assert coerce_params(bt.sizers.PercentSizer, {"retint": "yes"}) == {"retint": True}
    sharpe = coerce_params(bt.analyzers.SharpeRatio, {"timeframe": "bt.TimeFrame.Years", "factor": "252"})
    assert sharpe == {"timeframe": bt.TimeFrame.Years, "factor": 252}
    assert coerce_params(bt.CommInfoBase, {"commission": "0.001", "margin": "2000"}) == {
        "commission": 0.001,
        "margin": 2000,
    }
    with pytest.raises(ConfigError, match=r"Sizer 'PercentSizer' has no parameter 'percent'\. .*percents=20"):
        coerce_params(bt.sizers.PercentSizer, {"percent": "20"})
    with pytest.raises(ConfigError, match=r"^The sizer PercentSizer has no parameter 'percent'"):
        coerce_params(bt.sizers.PercentSizer, {"percent": "20"}, label="sizer PercentSizer")
    with pytest.raises(ConfigError, match="'percents' of 'PercentSizer' takes a whole number"):
        coerce_params(bt.sizers.PercentSizer, {"percents": "lots"})


# -- wording --------------------------------------------------------------------------------
def test_wording(strategy_file):
    with pytest.raises(PluginError, match=r"Known strategies: .*sma_cross"):
        get_registry().get("strategy", "no_such_strategy")
    with pytest.raises(PluginError, match=rf"^{strategy_file} defines no 'Foo'; it defines: MaTrend, Buyer\.$"):
        resolve_strategy(f"{strategy_file}:Foo")
    with pytest.raises(PluginError) as info:
        resolve_strategy(f"{strategy_file}:Helper")
    assert f"gave {strategy_file}:Helper as a strategy" in str(info.value)
    assert "synthmarket_user_" not in str(info.value)
    assert kind_word(int) == "a whole number" and kind_word(dict) == "a dict" and kind_word(object) == "an object"
    assert type_word(1) == "a whole number" and coerce_like("'x'", "y") == "x"


# -- end to end: -p ma=bt.ind.EMA on the command line ---------------------------------------
def test_a_class_parameter_from_the_command_line(strategy_file, sp500, tmp_path):
    steps = 150
    arrays = {k: np.stack([sp500[k].to_numpy()[i * steps : (i + 1) * steps] for i in range(3)]) for k in FIELDS}
    scenarios = Paths(**arrays, dates=sp500.index[:steps]).save(tmp_path / "paths.parquet")

    def backtest(out, *params):
        args = ["backtest", "--strategy", f"{strategy_file}:MaTrend", *params, "--scenarios", str(scenarios)]
        result = CliRunner().invoke(app, [*args, "--jobs", "1", "--out", str(out), "--no-progress"])
        assert result.exit_code == 0, result.output
        frame = read_results(out)
        assert frame["error"].isna().all(), frame["error"]
        return frame, json.loads((out / "run.json").read_text())

    sma, _ = backtest(tmp_path / "sma")
    ema, manifest = backtest(tmp_path / "ema", "-p", "ma=bt.ind.EMA", "-p", "period=20")
    assert manifest["params"] == {"ma": "backtrader.indicators.ema:EMA", "period": 20}
    assert len(ema) == len(sma) == 3
    assert not np.allclose(ema["final_value"], sma["final_value"])
    assert pd.Series(ema["final_value"]).notna().all()
