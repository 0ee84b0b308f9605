"""A backtrader strategy runs in synthmarket as its author wrote it (issue #27).

Every case is a strategy of ``tests/compat_strategies.py`` (written as backtrader's own
samples write them) and a few run settings. Each runs

- the plain backtrader way: ``bt.Cerebro(stdstats=False)``, ``bt.feeds.PandasData`` on the
  bars, the settings applied with the Cerebro and broker calls a backtrader user makes
  (:attr:`Case.plain`), and ``cerebro.run()``;
- through ``run_montecarlo(..., jobs=1)`` on the same bars, and through ``synthmarket
  backtest`` on the command line;

and every path must end with the same portfolio value (relative 1e-9), the same number of
closed trades, the same analyzer results and printed output, and no error. The bars are three one-year windows
of the real S&P 500 and three paths of a small seeded GARCH model. So that no case passes
without doing anything, the plain runs of each case must close trades and show the orders
the case is about (a StopTrail that filled, a limit that expired, ...), and a setting meant
to change the outcome must change it.

The slow tests run every case with two worker processes and on a local Ray cluster and ask
for the same rows as ``jobs=1``.
"""

from __future__ import annotations

import collections
import contextlib
import importlib.util
import io
import json
import math
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import backtrader as bt
import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from synthmarket.cli import app
from synthmarket.montecarlo import run_montecarlo
from synthmarket.paths import FIELDS, Paths

STRATEGIES = Path(__file__).resolve().with_name("compat_strategies.py")
FILE = str(STRATEGIES)


def _load_strategies():
    """tests/compat_strategies.py as a module of its own (what a user's file is to backtrader)."""
    spec = importlib.util.spec_from_file_location("compat_strategies", STRATEGIES)
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("compat_strategies", module)  # backtrader looks classes' modules up
    spec.loader.exec_module(module)
    return sys.modules["compat_strategies"]


cs = _load_strategies()
CASH = 100_000.0
COMMISSION = 0.001  # synthmarket's default: a percentage of the traded value


class PerOrder(bt.CommInfoBase):
    """The plain-backtrader reference of ``commission_scheme="per-order"``: a fixed amount per
    execution (an order that fills at once in one piece pays it once)."""

    params = (("stocklike", True), ("commtype", bt.CommInfoBase.COMM_FIXED))

    def _getcommission(self, size, price, pseudoexec):
        return self.p.commission if size else 0.0


# -- the cases ---------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Case:
    """A strategy, its parameters and run settings, and the same settings the backtrader way.

    Attributes
    ----------
    settings : dict
        Keyword arguments of ``run_montecarlo`` (and, through :func:`cli_flags`, the options of
        ``synthmarket backtest``).
    plain : callable
        ``plain(cerebro, data)``: the Cerebro and broker calls a backtrader user makes for the
        same settings (after ``adddata``, ``addstrategy``, ``setcash`` and the default
        ``setcommission(commission=0.001)``).
    cerebro : dict
        Keyword arguments of ``bt.Cerebro`` (besides ``stdstats=False``).
    exercised : tuple
        (order type, status) pairs the plain runs must show, over all paths.
    matters : bool
        The settings change the final value of some path (the plain run without them differs).
    real : tuple, optional
        (start, end) of S&P 500 history passed as ``real=``.
    cli_params : tuple, optional
        ``-p`` values on the command line (default: the params, as ``key=repr(value)``).
    """

    id: str
    strategy: str
    params: dict[str, Any] = field(default_factory=dict)
    settings: dict[str, Any] = field(default_factory=dict)
    plain: Callable[[bt.Cerebro, Any], None] | None = None
    cerebro: dict[str, Any] = field(default_factory=dict)
    exercised: tuple[tuple[str, str], ...] = ()
    matters: bool = False
    real: tuple[str, str] | None = None
    cli_params: tuple[str, ...] | None = None


def _calls(*steps):
    """Several plain steps as one ``plain(cerebro, data)``."""

    def plain(cerebro, data):
        for step in steps:
            step(cerebro, data)

    return plain


def commission(c):
    return lambda cerebro, data: cerebro.broker.setcommission(commission=c)


def sizer(cls, **kw):
    return lambda cerebro, data: cerebro.addsizer(cls, **kw)


def analyzer(cls, **kw):
    return lambda cerebro, data: cerebro.addanalyzer(cls, **kw)


def resample(timeframe):
    return lambda cerebro, data: cerebro.resampledata(data, timeframe=timeframe)


CASES = [
    Case(
        "market_orders",
        "SmaCross",
        {"fast": 5, "slow": 20, "printlog": True},
        {"cash": 50_000.0, "commission": 0.002},
        commission(0.002),
        exercised=(("Market", "Completed"),),
    ),
    Case("limit_orders", "LimitEntry", exercised=(("Limit", "Completed"), ("Limit", "Expired"))),
    Case("stop_orders", "Breakout", exercised=(("Stop", "Completed"), ("Stop", "Canceled"))),
    Case("stop_limit_valid", "StopLimitEntry", exercised=(("StopLimit", "Completed"), ("StopLimit", "Expired"))),
    Case("stoptrail_percent", "TrailingStop", {"trailpercent": 0.02}, exercised=(("StopTrail", "Completed"),)),
    Case("stoptrail_amount", "TrailingStop", {"trailamount": 30.0}, exercised=(("StopTrail", "Completed"),)),
    Case("stop_loss", "StopLoss", exercised=(("Stop", "Completed"),)),
    Case("stop_loss_trail", "StopLoss", {"trail": 0.03}, exercised=(("StopTrail", "Completed"),)),
    Case(
        "bracket_by_hand",
        "ManualBracket",
        exercised=(("Limit", "Completed"), ("Stop", "Completed"), ("Limit", "Canceled"), ("Stop", "Canceled")),
    ),
    Case("buy_bracket", "BracketStrategy", exercised=(("Stop", "Completed"), ("Limit", "Completed"))),
    Case("oco", "OcoEntry", exercised=(("Limit", "Completed"), ("Stop", "Completed"), ("Stop", "Canceled"))),
    Case("target_percent", "OrderTargets", {"use": "percent"}),
    Case("target_size", "OrderTargets", {"use": "size"}),
    Case("target_value", "OrderTargets", {"use": "value"}),
    Case(
        "macd_percent_sizer",
        "MacdAtr",
        settings={"sizer": "PercentSizer:percents=20", "commission": 0.0033, "analyzers": ("SharpeRatio", "SQN")},
        plain=_calls(
            sizer(bt.sizers.PercentSizer, percents=20),
            commission(0.0033),
            analyzer(bt.analyzers.SharpeRatio),
            analyzer(bt.analyzers.SQN),
        ),
        matters=True,
        real=("2016-01-01", "2017-12-31"),
    ),
    Case(
        "macd_user_sizer",
        "MacdAtr",
        settings={"sizer": f"{FILE}:FixedPerc:perc=0.25"},
        plain=sizer(cs.FixedPerc, perc=0.25),
        matters=True,
    ),
    Case("timer", "MonthlyRebalance"),
    Case("timer_cheat", "MonthlyRebalance", {"cheat": True}),
    Case(
        "cheat_on_open",
        "CheatOnOpen",
        settings={"cheat_on_open": True, "cash": 2_000_000.0},
        cerebro={"cheat_on_open": True},
        matters=True,
    ),
    Case(
        "cheat_on_open_ema",
        "CheatOnOpen",
        {"matype": bt.ind.EMA, "periods": [5, 20]},
        settings={"cheat_on_open": True, "cash": 2_000_000.0},
        cerebro={"cheat_on_open": True},
        matters=True,
        cli_params=("matype=bt.ind.EMA", "periods=[5,20]"),
    ),
    Case(
        "cheat_on_close",
        "CloseCheat",
        settings={"cheat_on_close": True},
        plain=lambda cerebro, data: cerebro.broker.set_coc(True),
        matters=True,
    ),
    Case(
        "signal_longshort",
        "LongShortCross",
        settings={"sizer": "FixedSize:stake=10"},
        plain=sizer(bt.sizers.FixedSize, stake=10),
        matters=True,
    ),
    Case("signal_long_exit", "LongWithExit"),
    Case(
        "resample_monthly",
        "MonthlyPivot",
        settings={"resample": ("monthly",)},
        plain=resample(bt.TimeFrame.Months),
    ),
    Case(
        "resample_weekly_monthly",
        "WeeklyMonthly",
        settings={"resample": ("weekly", "monthly")},
        plain=_calls(resample(bt.TimeFrame.Weeks), resample(bt.TimeFrame.Months)),
    ),
    Case(
        "analyzers",
        "SmaCross",
        {"fast": 5, "slow": 20},
        settings={"analyzers": ("TradeAnalyzer", "DrawDown", f"{FILE}:WinLoss:min_pnl=10")},
        plain=_calls(
            analyzer(bt.analyzers.TradeAnalyzer), analyzer(bt.analyzers.DrawDown), analyzer(cs.WinLoss, min_pnl=10)
        ),
    ),
    Case(
        "annual_return_observer",
        "SmaCross",
        {"fast": 5, "slow": 20},
        settings={"analyzers": ("AnnualReturn",), "setup": f"{FILE}:broker_observer"},
        plain=_calls(analyzer(bt.analyzers.AnnualReturn), lambda cerebro, data: cs.broker_observer(cerebro)),
    ),
    Case(
        "futures",
        "SmaCross",
        {"stake": 2},
        settings={"commission": 2.0, "commission_scheme": "futures:margin=2000,mult=10"},
        plain=lambda cerebro, data: cerebro.broker.setcommission(commission=2.0, margin=2000, mult=10),
        matters=True,
    ),
    Case(
        "per_share",
        "SmaCross",
        {"stake": 30},
        settings={"commission": 0.005, "commission_scheme": "per-share"},
        plain=lambda cerebro, data: cerebro.broker.setcommission(
            commission=0.005, commtype=bt.CommInfoBase.COMM_FIXED, stocklike=True
        ),
        matters=True,
    ),
    Case(
        "per_order",
        "SmaCross",
        {"stake": 30},
        settings={"commission": 4.95, "commission_scheme": "per-order"},
        plain=lambda cerebro, data: cerebro.broker.addcommissioninfo(PerOrder(commission=4.95)),
        matters=True,
    ),
    Case(
        "user_comminfo",
        "OrderTargets",
        {"use": "size"},
        settings={"commission_scheme": f"{FILE}:FixedPlusPercent:fixed=1.5"},
        plain=lambda cerebro, data: cerebro.broker.addcommissioninfo(cs.FixedPlusPercent(fixed=1.5)),
        matters=True,
    ),
    Case(
        "slippage_perc",
        "OrderTargets",
        {"use": "percent"},
        settings={"slippage": 0.001},
        plain=lambda cerebro, data: cerebro.broker.set_slippage_perc(0.001),
        matters=True,
    ),
    Case(
        "slippage_fixed",
        "Breakout",
        settings={"slippage_fixed": 0.5},
        plain=lambda cerebro, data: cerebro.broker.set_slippage_fixed(0.5),
        matters=True,
    ),
    Case(
        "setup",
        "SmaCross",
        {"stake": 30},
        settings={"setup": f"{FILE}:thin_market"},
        plain=lambda cerebro, data: cs.thin_market(cerebro),
        matters=True,
    ),
]
IDS = [case.id for case in CASES]
BY_ID = {case.id: case for case in CASES}


# -- the bars ------------------------------------------------------------------------------------------
STEPS = 252
WINDOW_STARTS = ("2008-01-01", "2011-01-01", "2015-01-01")  # a crash, a summer fall, a flat year


@pytest.fixture(scope="module")
def sources(sp500):
    """{"real": three one-year windows of the S&P 500, "synthetic": three GARCH paths}."""
    import synthmarket as sm

    starts = [sp500.index.searchsorted(pd.Timestamp(day)) for day in WINDOW_STARTS]
    index = np.asarray(starts)[:, None] + np.arange(STEPS)
    real = Paths(**{k: sp500[k].to_numpy()[index] for k in FIELDS}, dates=sp500.index[starts[0] : starts[0] + STEPS])
    model = sm.train("garch", data="sp500", start="2009-05-01")
    synthetic = sm.generate(model, 3, STEPS, seed=1)
    return {"real": real, "synthetic": synthetic}


@pytest.fixture(scope="module")
def scenario_file(sources, tmp_path_factory):
    return sources["synthetic"].save(tmp_path_factory.mktemp("compat") / "paths.parquet")


# -- the plain backtrader runs -----------------------------------------------------------------------
class _ClosedTrades(bt.Analyzer):
    def start(self):
        self.rets.closed = 0

    def notify_trade(self, trade):
        if trade.isclosed:
            self.rets.closed += 1


class _OrderLog(bt.Analyzer):
    """(order type, status) of every order notification."""

    def start(self):
        self.seen = collections.Counter()

    def notify_order(self, order):
        self.seen[(order.getordername(), order.getstatusname())] += 1


@dataclass
class Outcome:
    value: float
    closed: int
    orders: collections.Counter
    analyses: dict[str, Any]
    output: str


def flatten(prefix: str, analysis) -> dict[str, tuple[Any, tuple[str, str] | None]]:
    """An analyzer's nested results: ``prefix.key.subkey`` -> (scalar, None). A mapping keyed by
    other than text (AnnualReturn's years) is a series: ``prefix.key`` -> (scalar, (prefix, key)),
    found as a column or, failing that, in the path's other analyses under ``prefix``."""
    if isinstance(analysis, dict):
        out = {}
        if all(isinstance(key, str) for key in analysis):
            for key, value in analysis.items():
                out.update(flatten(f"{prefix}.{key}", value))
        else:
            for key, value in analysis.items():
                if value is None or isinstance(value, (bool, int, float, np.number)):
                    out[f"{prefix}.{key}"] = (value, (prefix, str(key)))
        return out
    if analysis is None or isinstance(analysis, (bool, int, float, np.number)):
        return {prefix: (analysis, None)}
    return {}


def plain_run(case: Case, frame: pd.DataFrame, *, bare: bool = False) -> Outcome:
    """``case`` in a plain Cerebro on ``frame``; ``bare``: without the case's settings (but its cash)."""
    cerebro = bt.Cerebro(stdstats=False, **({} if bare else case.cerebro))
    data = bt.feeds.PandasData(dataname=frame)
    cerebro.adddata(data)
    cerebro.addstrategy(getattr(cs, case.strategy), **case.params)
    cerebro.broker.setcash(case.settings.get("cash", CASH))
    cerebro.broker.setcommission(commission=COMMISSION)
    if case.plain is not None and not bare:
        case.plain(cerebro, data)
    cerebro.addanalyzer(_ClosedTrades, _name="_closed")
    cerebro.addanalyzer(_OrderLog, _name="_orders")
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        strategy = cerebro.run()[0]
    analyses = {}
    for name in strategy.analyzers.getnames():
        if not name.startswith("_"):
            analyses.update(flatten(name.lower(), strategy.analyzers.getbyname(name).get_analysis()))
    return Outcome(
        value=cerebro.broker.getvalue(),
        closed=strategy.analyzers.getbyname("_closed").rets.closed,
        orders=strategy.analyzers.getbyname("_orders").seen,
        analyses=analyses,
        output=printed.getvalue(),
    )


@pytest.fixture(scope="module")
def plain(sources, sp500):
    """plain(case, source) -> {path id: Outcome}, computed once per module."""
    cache: dict[tuple[str, str], dict[str, Outcome]] = {}

    def get(case: Case, source: str) -> dict[str, Outcome]:
        key = (case.id, source)
        if key not in cache:
            paths = sources[source]
            outcomes = {label: plain_run(case, paths.path(i)) for i, label in enumerate(paths.id_labels)}
            if case.real is not None:
                outcomes["real"] = plain_run(case, sp500.loc[case.real[0] : case.real[1]])
            cache[key] = outcomes
        return cache[key]

    return get


# -- comparisons ----------------------------------------------------------------------------------------
def _missing(value) -> bool:
    """No value: None, NaN, or backtrader's sys.maxsize for "none yet" (TradeAnalyzer's min lengths)."""
    return value is None or (isinstance(value, float) and math.isnan(value)) or value == sys.maxsize


def assert_same(
    case: Case,
    results: pd.DataFrame,
    expected: dict[str, Outcome],
    where: str,
    analysis: Callable | None = None,
    output: Callable | None = None,
) -> None:
    """Every path of ``results`` has the plain run's final value, closed trades, analyzer
    results and printed output; ``analysis(path)``: the path's analyses that are not columns;
    ``output(path)``: what the strategy printed on the path."""
    rows = results.set_index("path")
    assert sorted(rows.index) == sorted(expected), f"{case.id} ({where}): paths {list(rows.index)}"
    problems = []
    for path, outcome in expected.items():
        row = rows.loc[path]
        if not _missing(row["error"]):
            problems.append(f"path {path}: error {row['error']}")
            continue
        if row["final_value"] != pytest.approx(outcome.value, rel=1e-9):
            problems.append(f"path {path}: final_value {row['final_value']!r}, plain backtrader {outcome.value!r}")
        if int(row["n_trades"]) != outcome.closed:
            problems.append(f"path {path}: n_trades {row['n_trades']}, plain backtrader {outcome.closed}")
        for column, (value, series) in outcome.analyses.items():
            if column in rows.columns:
                got = row[column]
            elif series is not None and analysis is not None and series[1] in analysis(path).get(series[0], {}):
                got = analysis(path)[series[0]][series[1]]
            else:
                problems.append(f"path {path}: no column {column!r} (plain {value!r})")
                continue
            if _missing(value) != _missing(got) or (not _missing(value) and got != pytest.approx(value, rel=1e-9)):
                problems.append(f"path {path}: {column} {got!r}, plain backtrader {value!r}")
        if output is not None and output(path) != outcome.output:
            problems.append(f"path {path}: printed {output(path)!r}, plain backtrader {outcome.output!r}")
    assert not problems, f"{case.id} ({where}):\n" + "\n".join(problems)


def run_api(case: Case, paths, sp500, **kwargs):
    real = None if case.real is None else sp500.loc[case.real[0] : case.real[1]]
    kwargs = {"jobs": 1, **kwargs}
    return run_montecarlo(
        f"{FILE}:{case.strategy}", paths, params=case.params, real=real, progress=False, **case.settings, **kwargs
    )


def cli_flags(case: Case) -> list[str]:
    """``synthmarket backtest`` options for ``case.params`` and ``case.settings``."""
    if case.cli_params is not None:
        params = list(case.cli_params)
    else:
        params = [f"{k}={v if isinstance(v, str) else repr(v)}" for k, v in case.params.items()]
    flags = [arg for p in params for arg in ("-p", p)]
    for key, value in case.settings.items():
        option = "--" + key.replace("_", "-")
        if key in ("cheat_on_open", "cheat_on_close"):
            flags += [option] if value else []
        elif key == "resample":
            flags += [arg for v in value for arg in ("--resample", v)]
        elif key == "analyzers":
            flags += [arg for v in value for arg in ("--analyzer", v)]
        else:
            flags += [option, str(value)]
    if case.real is not None:
        flags += ["--data", "sp500", "--start", case.real[0], "--end", case.real[1]]
    return flags


# -- the plain runs do what each case is about --------------------------------------------------------
@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_plain_backtrader_runs_exercise_the_case(case, plain, sources):
    outcomes = [o for source in ("real", "synthetic") for o in plain(case, source).values()]
    assert sum(o.closed for o in outcomes) > 0, f"{case.id}: no closed trade on any path"
    seen = sum((o.orders for o in outcomes), collections.Counter())
    missing = [pair for pair in case.exercised if not seen[pair]]
    assert not missing, f"{case.id}: no order {missing} on any path; seen {dict(seen)}"
    if case.matters:
        paths = sources["synthetic"]
        bare = [plain_run(case, paths.path(i), bare=True).value for i in range(paths.n_paths)]
        with_settings = [plain(case, "synthetic")[label].value for label in paths.id_labels]
        assert bare != pytest.approx(with_settings, rel=1e-9), f"{case.id}: the settings change nothing"


# -- synthmarket gives the same ----------------------------------------------------------------------
@pytest.mark.parametrize("source", ["real", "synthetic"])
@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_run_montecarlo_equals_plain_backtrader(case, source, sources, plain, sp500):
    result = run_api(case, sources[source], sp500)
    assert_same(
        case, result.results, plain(case, source), f"run_montecarlo, {source} paths", result.analysis, result.output
    )


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_command_line_equals_plain_backtrader(case, scenario_file, plain, tmp_path):
    out = tmp_path / "run"
    args = [
        "backtest",
        "--strategy",
        f"{FILE}:{case.strategy}",
        *cli_flags(case),
        "--scenarios",
        str(scenario_file),
        "--jobs",
        "1",
        "--no-progress",
        "--out",
        str(out),
    ]
    result = CliRunner().invoke(app, args, catch_exceptions=False)
    assert result.exit_code == 0, f"synthmarket {' '.join(args)}\n{result.output}"
    results = pq.read_table(out / "results.parquet").to_pandas()

    def analysis(path):
        file = out / "analyzers" / f"{path}.json"
        return json.loads(file.read_text()) if file.exists() else {}

    def output(path):
        file = out / "logs" / f"{path}.log"
        return file.read_text() if file.exists() else ""

    assert_same(case, results, plain(case, "synthetic"), "synthmarket backtest", analysis, output)


@pytest.mark.xfail(
    strict=True, reason="per-order charges every execution: an order that reverses a position pays twice"
)
def test_per_order_commission_is_charged_once_per_order(sources):
    """An order that turns a long position short is one order: it pays the per-order fee once.
    The reference is exact because the strategy's orders have fixed sizes: the value without
    commission, less the fee times the orders that filled."""
    case = Case("per_order_reversal", "OrderTargets", {"use": "size"}, plain=commission(0.0))
    paths = sources["real"]
    expected = []
    for i in range(paths.n_paths):
        free = plain_run(case, paths.path(i))
        assert free.orders[("Market", "Completed")] > 0
        expected.append(free.value - 4.95 * free.orders[("Market", "Completed")])
    result = run_montecarlo(
        f"{FILE}:OrderTargets",
        paths,
        params={"use": "size"},
        commission=4.95,
        commission_scheme="per-order",
        jobs=1,
        progress=False,
    )
    assert list(result.results["final_value"]) == pytest.approx(expected, rel=1e-9)


# -- the same rows on two workers and on Ray ---------------------------------------------------------
def _same_rows(one: pd.DataFrame, other: pd.DataFrame) -> None:
    pd.testing.assert_frame_equal(
        one.sort_values("path").reset_index(drop=True), other.sort_values("path").reset_index(drop=True)
    )


@pytest.mark.slow
@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_two_workers_give_the_same_rows(case, sources, sp500):
    for source in ("real", "synthetic"):
        one = run_api(case, sources[source], sp500)
        two = run_api(case, sources[source], sp500, jobs=2, batch_size=1)
        _same_rows(one.results, two.results)
        assert one.analyses == two.analyses


@pytest.fixture(scope="module")
def ray_cluster():
    ray = pytest.importorskip("ray")
    ray.init(num_cpus=2, include_dashboard=False, logging_level="error")
    yield ray
    ray.shutdown()


@pytest.mark.slow
@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_a_ray_cluster_gives_the_same_rows(case, sources, sp500, ray_cluster):
    one = run_api(case, sources["synthetic"], sp500)
    on_ray = run_api(case, sources["synthetic"], sp500, backend="ray", batch_size=2)
    _same_rows(one.results, on_ray.results)
    assert one.analyses == on_ray.analyses
