"""The Monte-Carlo runner on paths cut from the real S&P 500: metrics, failures, resume, parallelism."""

from __future__ import annotations

import math
import textwrap

import backtrader as bt
import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from synthmarket.errors import ConfigError, PluginError
from synthmarket.montecarlo import (
    COLUMNS,
    REAL,
    PathFailed,
    ResultStore,
    Summary,
    WorkerDied,
    coerce_params,
    read_results,
    run_montecarlo,
    tidy_results,
)
from synthmarket.paths import FIELDS, Paths
from synthmarket.registry import get_registry

USER_STRATEGIES = textwrap.dedent(
    '''
    import os
    import signal

    from synthmarket_strategies import SmaCross


    class FailsOnPath(SmaCross):
        """SmaCross that raises on one path."""

        params = (("fail_on", "path-3"),)

        def next(self):
            if self.data._name == self.p.fail_on and len(self) == 40:
                raise ZeroDivisionError("boom on " + self.data._name)
            super().next()


    class KillsWorker(SmaCross):
        """SmaCross whose worker process kills itself on one path, once (the marker remembers)."""

        params = (("kill_on", "path-9"), ("marker", ""))

        def next(self):
            if self.data._name == self.p.kill_on and not os.path.exists(self.p.marker):
                open(self.p.marker, "w").close()
                os.kill(os.getpid(), signal.SIGKILL)
            super().next()


    NOT_A_STRATEGY = 42
    '''
)


def windows(bars: pd.DataFrame, n: int, steps: int) -> Paths:
    """``n`` consecutive ``steps``-bar windows of real bars, as paths on the first window's dates."""
    arrays = {k: np.stack([bars[k].to_numpy()[i * steps : (i + 1) * steps] for i in range(n)]) for k in FIELDS}
    return Paths(**arrays, dates=bars.index[:steps])


@pytest.fixture(scope="module")
def paths(sp500):
    return windows(sp500, 12, 252)


@pytest.fixture(scope="module")
def small(sp500):
    return windows(sp500.loc["2004":], 24, 120)


@pytest.fixture()
def user_file(tmp_path):
    file = tmp_path / "my_strategies.py"
    file.write_text(USER_STRATEGIES)
    return file


# ----------------------------------------------------------------------------------------
# One path's metrics against a direct cerebro.run with backtrader's own feed and analyzers
# ----------------------------------------------------------------------------------------
def direct_metrics(cls, frame, params, cash, commission, slippage):
    cerebro = bt.Cerebro()
    cerebro.adddata(bt.feeds.PandasData(dataname=frame))
    cerebro.addstrategy(cls, **params)
    cerebro.broker.setcash(cash)
    cerebro.broker.setcommission(commission=commission)
    if slippage:
        cerebro.broker.set_slippage_perc(slippage)
    cerebro.addanalyzer(bt.analyzers.TimeReturn, _name="returns")
    cerebro.addanalyzer(bt.analyzers.DrawDown, _name="drawdown")
    cerebro.addanalyzer(bt.analyzers.TradeAnalyzer, _name="trades")
    cerebro.addanalyzer(bt.analyzers.PositionsValue, _name="positions")
    strat = cerebro.run()[0]
    r = np.array(list(strat.analyzers.returns.get_analysis().values()))
    trades = strat.analyzers.trades.get_analysis()
    closed = trades.get("total", {}).get("closed", 0)
    won = trades.get("won", {}).get("total", 0)
    held = [v[0] != 0 for v in strat.analyzers.positions.get_analysis().values()]
    dd = strat.analyzers.drawdown.get_analysis()
    final = cerebro.broker.getvalue()
    return {
        "final_value": final,
        "total_return": final / cash - 1,
        "cagr": (final / cash) ** (252 / len(r)) - 1,
        "volatility": r.std(ddof=1) * math.sqrt(252),
        "sharpe": r.mean() / r.std(ddof=1) * math.sqrt(252),
        "sortino": r.mean() / math.sqrt(np.mean(np.minimum(r, 0) ** 2)) * math.sqrt(252),
        "max_drawdown": dd["max"]["drawdown"] / 100,
        "max_drawdown_days": dd["max"]["len"],
        "n_trades": closed,
        "win_rate": won / closed if closed else math.nan,
        "exposure": np.mean(held),
    }


@pytest.mark.parametrize(
    "name, params",
    [("sma_cross", {"fast": 5, "slow": 20}), ("rsi_mean_reversion", {}), ("donchian_breakout", {"entry": 15})],
)
def test_path_metrics_equal_a_direct_cerebro_run(paths, name, params):
    cash, commission, slippage = 50_000.0, 0.002, 0.0005
    result = run_montecarlo(
        name,
        paths.subset(slice(0, 4)),
        params=params,
        cash=cash,
        commission=commission,
        slippage=slippage,
        jobs=1,
        progress=False,
    )
    cls = get_registry().get("strategy", name)
    for i in range(4):
        expected = direct_metrics(cls, paths.path(i), params, cash, commission, slippage)
        row = result.results.set_index("path").loc[str(i)]
        assert row["error"] is None
        assert row["n_trades"] == expected["n_trades"] and row["max_drawdown_days"] == expected["max_drawdown_days"]
        for metric, value in expected.items():
            assert float(row[metric]) == pytest.approx(value, rel=1e-9, nan_ok=True), (i, metric)


def test_results_have_one_row_per_path_and_the_real_one(paths, sp500):
    result = run_montecarlo("buy_and_hold", paths, jobs=1, real=sp500.loc["2016":"2017"], progress=False)
    frame = result.results
    assert tuple(frame.columns) == COLUMNS
    assert list(frame["path"]) == [str(i) for i in range(12)] + [REAL]
    assert frame["path"].map(type).eq(str).all()
    assert frame["error"].isna().all()
    real = result.real
    assert real["total_return"] == pytest.approx(0.99 * 2 * 0.17, abs=0.12)  # 2016-2017 was a good pair of years
    rank = result.summary.metrics.loc["total_return", "real_rank"]
    assert rank == pytest.approx(100 * np.mean(result.synthetic["total_return"] <= real["total_return"]))
    figure = result.plot()
    assert len(figure.axes) == 3 and all(ax.lines for ax in figure.axes)
    assert "Monte-Carlo backtest of buy_and_hold" in result._repr_html_()


# ----------------------------------------------------------------------------------------
# Parameters
# ----------------------------------------------------------------------------------------
def test_params_are_checked_and_converted():
    cls = get_registry().get("strategy", "sma_cross")
    assert coerce_params(cls, {"fast": "5", "slow": 40, "target": "0.5"}) == {"fast": 5, "slow": 40, "target": 0.5}
    assert coerce_params(cls, {"target": 1}) == {"target": 1.0}
    with pytest.raises(ConfigError, match=r"no parameter 'fats'.*fast=10"):
        coerce_params(cls, {"fats": 5})
    for bad in ("ten", "2.5", 2.5, True):
        with pytest.raises(ConfigError, match="'fast' of 'SmaCross' takes a whole number"):
            coerce_params(cls, {"fast": bad})
    with pytest.raises(ConfigError, match="takes a number"):
        coerce_params(cls, {"target": "lots"})


def test_bool_and_str_params(tmp_path):
    file = tmp_path / "typed.py"
    file.write_text(
        textwrap.dedent(
            """
        import backtrader as bt

        class Typed(bt.Strategy):
            params = (("flag", False), ("mode", "fast"), ("extra", None))
        """
        )
    )
    cls = get_registry().get("strategy", f"{file}:Typed")
    assert coerce_params(cls, {"flag": "yes", "mode": "slow", "extra": "(1, 2)"}) == {
        "flag": True,
        "mode": "slow",
        "extra": (1, 2),
    }
    # a False default is backtrader's "off, or a value": a number or a literal; a bare word that
    # is no true/false word is refused (a typo of "true" must not pass as text)
    assert coerce_params(cls, {"flag": "20.5"}) == {"flag": 20.5}
    assert coerce_params(cls, {"flag": "'maybe'"}) == {"flag": "maybe"}
    for wrong in ("maybe", "ture", [1]):
        with pytest.raises(ConfigError, match="takes true or false, a number or quoted text"):
            coerce_params(cls, {"flag": wrong})
    with pytest.raises(ConfigError, match="takes text"):
        coerce_params(cls, {"mode": 3})


def test_unknown_strategies_are_plugin_errors(paths, user_file):
    with pytest.raises(PluginError, match="Did you mean 'sma_cross'"):
        run_montecarlo("sma_cros", paths, jobs=1, progress=False)
    with pytest.raises(PluginError, match=r"backtrader\.Strategy"):
        run_montecarlo(f"{user_file}:NOT_A_STRATEGY", paths, jobs=1, progress=False)


def test_a_class_without_a_name_runs_only_in_process(paths):
    class Local(bt.Strategy):
        pass

    with pytest.raises(ConfigError, match="file.py:Local"):
        run_montecarlo(Local, paths, jobs=2, progress=False)
    result = run_montecarlo(Local, paths.subset(slice(0, 2)), jobs=1, progress=False)
    assert (result.results["final_value"] == 100_000).all() and (result.results["n_trades"] == 0).all()


# ----------------------------------------------------------------------------------------
# Failures, resume and parallelism
# ----------------------------------------------------------------------------------------
def test_one_failing_path_is_recorded_and_the_run_goes_on(small, user_file):
    result = run_montecarlo(f"{user_file}:FailsOnPath", small.subset(slice(0, 8)), jobs=1, progress=False)
    reference = run_montecarlo("sma_cross", small.subset(slice(0, 8)), jobs=1, progress=False).results
    frame = result.results
    failed = frame[frame["error"].notna()]
    assert list(failed["path"]) == ["3"]
    assert failed["error"].iloc[0].startswith("ZeroDivisionError: boom on path-3 (at my_strategies.py:")
    # It raised in next() on its 40th bar, flat: the value when it failed is the starting cash.
    assert failed["failed_bar"].iloc[0] == 40 and failed["final_value"].iloc[0] == 100_000
    assert failed["n_trades"].iloc[0] == 0 and np.isnan(failed["sharpe"].iloc[0])
    assert frame.loc[frame["path"] != "3", "failed_bar"].isna().all()
    assert frame.loc[frame["path"] != "3", "failed_bar"].isna().all()
    ok = frame["path"] != "3"
    pd.testing.assert_frame_equal(
        frame[ok].reset_index(drop=True), reference[reference["path"] != "3"].reset_index(drop=True)
    )
    assert result.summary.n_failed == 1 and result.summary.n_paths == 8


def test_fail_fast_stops_and_leaves_a_readable_file(small, user_file, tmp_path):
    out = tmp_path / "run"
    with pytest.raises(PathFailed, match=r"Path 3 failed: ZeroDivisionError.*paths are saved in .*--resume"):
        run_montecarlo(f"{user_file}:FailsOnPath", small, jobs=1, batch_size=2, out=out, fail_fast=True, progress=False)
    stored = pq.read_table(out / "results.parquet").to_pandas()
    assert list(stored["path"]) == ["0", "1", "2", "3"]
    assert stored["error"].notna().tolist() == [False, False, False, True]
    assert not list((out / "results").glob("*.parquet"))


def test_same_results_with_one_and_two_processes(small):
    one = run_montecarlo("sma_cross", small, params={"fast": 8}, jobs=1, progress=False)
    two = run_montecarlo("sma_cross", small, params={"fast": 8}, jobs=2, batch_size=5, progress=False)
    pd.testing.assert_frame_equal(one.results, two.results)
    assert len(one.results) == small.n_paths


def test_resume_after_a_worker_is_killed(small, user_file, tmp_path):
    out, marker = tmp_path / "run", tmp_path / "killed-once"
    strategy = f"{user_file}:KillsWorker"
    params = {"kill_on": "path-9", "marker": str(marker)}
    with pytest.raises(WorkerDied, match=r"died.*of 24 paths are saved.*resume"):
        run_montecarlo(strategy, small, params=params, jobs=2, batch_size=2, out=out, progress=False)
    assert marker.exists()
    partial = pq.read_table(out / "results.parquet").to_pandas()
    assert 0 < len(partial) < 24 and partial["path"].is_unique and "9" not in set(partial["path"])

    resumed = run_montecarlo(strategy, small, params=params, jobs=2, batch_size=2, out=out, resume=True, progress=False)
    expected = run_montecarlo("sma_cross", small, jobs=1, progress=False).results
    pd.testing.assert_frame_equal(resumed.results, expected)
    pd.testing.assert_frame_equal(read_results(out), expected)
    assert (out / "summary.json").exists()


def test_resume_skips_stored_paths_and_checks_the_inputs(small, tmp_path):
    out = tmp_path / "run"
    first = run_montecarlo("sma_cross", small.subset(slice(0, 6)), jobs=1, out=out, progress=False)
    with pytest.raises(ConfigError, match="already holds backtest results"):
        run_montecarlo("sma_cross", small.subset(slice(0, 6)), jobs=1, out=out, progress=False)
    with pytest.raises(ConfigError, match=r"other inputs \(params"):
        run_montecarlo(
            "sma_cross", small.subset(slice(0, 6)), params={"fast": 3}, jobs=1, out=out, resume=True, progress=False
        )
    # a finished run resumes to the same results without running anything again
    stamp = (out / "results.parquet").stat().st_mtime_ns
    again = run_montecarlo("sma_cross", small.subset(slice(0, 6)), jobs=1, out=out, resume=True, progress=False)
    pd.testing.assert_frame_equal(first.results, again.results)
    assert (out / "results.parquet").stat().st_mtime_ns == stamp


def test_store_reads_each_path_once(tmp_path):
    store = ResultStore(tmp_path)
    store.prepare({"format": "x"}, resume=False)
    row = lambda p, v: {"path": p, **{m: v for m in COLUMNS[1:-1]}, "error": None}  # noqa: E731
    store.append([row("0", 1), row("1", 1)])
    store.compact()
    store.append([row("1", 2), row("2", 2)])
    (store.parts / "part-broken.parquet.tmp").write_bytes(b"half a file")
    frame = store.read()
    assert list(frame["path"]) == ["0", "1", "2"] and list(frame["final_value"]) == [1, 2, 2]
    assert store.prepare({"format": "x"}, resume=True) == {"0", "1", "2"}
    assert not list(store.parts.glob("*.tmp"))


# ----------------------------------------------------------------------------------------
# Summary and generated scenarios
# ----------------------------------------------------------------------------------------
def test_summary_statistics():
    returns = np.linspace(-0.5, 1.4, 20)  # 20 paths
    drawdowns = np.linspace(0.01, 0.2, 20)
    rows = [
        {"path": str(i), "final_value": 1 + r, "total_return": r, "max_drawdown": d, "sharpe": r, "error": None}
        for i, (r, d) in enumerate(zip(returns, drawdowns))
    ]
    rows.append({"path": "20", "error": "ValueError: x"})
    rows.append(
        {"path": REAL, "final_value": 1.1, "total_return": 0.1, "max_drawdown": 0.05, "sharpe": 0.1, "error": None}
    )
    summary = Summary.of(tidy_results(rows))
    assert summary.n_paths == 21 and summary.n_failed == 1
    assert summary.prob_loss == pytest.approx(np.mean(returns < 0))
    assert summary.es_return == pytest.approx(returns[0])  # the worst 5 % of 20 paths is one path
    assert summary.es_drawdown == pytest.approx(drawdowns[-1])
    table = summary.metrics
    assert table.loc["total_return", "p50"] == pytest.approx(np.median(returns))
    assert table.loc["total_return", "p5"] == pytest.approx(np.percentile(returns, 5))
    assert table.loc["total_return", "real_rank"] == pytest.approx(100 * np.mean(returns <= 0.1))
    data = summary.to_dict()
    assert data["metrics"]["cagr"]["p50"] is None and data["n_failed"] == 1
    assert "P(loss)" in str(summary)


def test_generated_scenarios_stream_from_a_model(sp500_recent, tmp_path):
    from synthmarket.generator import Generator
    from synthmarket.montecarlo import GeneratedScenarios

    gbm = get_registry().get("generator", "gbm")()
    gbm.fit(sp500_recent)
    gbm.save(tmp_path / "gbm")
    model = Generator.load(tmp_path / "gbm")
    scenarios = GeneratedScenarios(model, 6, 80, seed=7)
    expected = model.sample_paths(6, 80, seed=7)
    (chunk,) = list(scenarios.chunks())
    np.testing.assert_array_equal(chunk.close, expected.close)
    result = run_montecarlo("sma_cross", scenarios, params={"fast": 5, "slow": 20}, jobs=1, progress=False)
    assert list(result.results["path"]) == [str(i) for i in range(6)]
    assert result.results["error"].isna().all()


@pytest.mark.slow
def test_same_results_on_a_local_ray_cluster(small):
    ray = pytest.importorskip("ray")
    one = run_montecarlo("sma_cross", small, jobs=1, progress=False)
    ray.init(num_cpus=2, include_dashboard=False, logging_level="error")
    try:
        on_ray = run_montecarlo("sma_cross", small, backend="ray", batch_size=5, progress=False)
    finally:
        ray.shutdown()
    pd.testing.assert_frame_equal(one.results, on_ray.results)
