"""Issue #27 around the strategy: run settings checked before the run, failures told honestly
(where, when, how many, a second view, the exit status), each path's output apart, analyzers'
results kept, and --resume refusing any change. Real backtrader on real S&P 500 windows."""

from __future__ import annotations

import json
import textwrap

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from synthmarket.cli import app
from synthmarket.errors import ConfigError
from synthmarket.montecarlo import Settings, TooManyFailures, run_montecarlo
from synthmarket.montecarlo.failures import allowed_failures
from synthmarket.montecarlo.settings import split_spec
from synthmarket.paths import FIELDS, Paths

STRATEGIES = textwrap.dedent(
    """
    import backtrader as bt


    class Talker(bt.Strategy):
        '''Prints every bar; buys on the 3rd bar.'''

        def next(self):
            print(self.data._name, len(self), round(self.data.close[0], 4))
            if len(self) == 3:
                self.buy()


    class FailsWhenItFalls(bt.Strategy):
        '''Holds ten shares; raises once the price is 10 % under the first close.'''

        def next(self):
            if len(self) == 1:
                self.buy(size=10)
                self.first = self.data.close[0]
            elif self.data.close[0] < 0.9 * self.first:
                raise RuntimeError("the price fell")


    class AlwaysFails(bt.Strategy):
        def next(self):
            raise KeyError("nothing here")


    class ReadsData1(bt.Strategy):
        def __init__(self):
            self.slow = bt.ind.SMA(self.data1, period=3)

        def next(self):
            if not self.position and self.data.close[0] > self.slow[0]:
                self.buy()
            elif self.position and self.data.close[0] < self.slow[0]:
                self.close()


    class LongPeriod(bt.Strategy):
        def __init__(self):
            self.sma = bt.ind.SMA(period=400)
    """
)


def windows(bars: pd.DataFrame, n: int, steps: int) -> Paths:
    arrays = {k: np.stack([bars[k].to_numpy()[i * steps : (i + 1) * steps] for i in range(n)]) for k in FIELDS}
    return Paths(**arrays, dates=bars.index[:steps])


@pytest.fixture(scope="module")
def paths(sp500):
    return windows(sp500.loc["2005":], 8, 252)


@pytest.fixture(scope="module")
def files(tmp_path_factory, paths):
    folder = tmp_path_factory.mktemp("honesty")
    (folder / "mine.py").write_text(STRATEGIES)
    paths.save(folder / "paths.parquet")
    return folder


def cli(*args: str):
    return CliRunner().invoke(app, ["backtest", "--no-progress", *args])


# -- failures ------------------------------------------------------------------------------
def test_a_failed_path_records_its_bar_value_and_place_and_a_second_view_counts_it(files, paths):
    result = run_montecarlo(f"{files}/mine.py:FailsWhenItFalls", paths, jobs=1, progress=False)
    frame = result.results
    failed = frame[frame["error"].notna()]
    assert 0 < len(failed) < len(frame)
    for _, row in failed.iterrows():
        closes = paths.close[int(row["path"])]
        bar = int(row["failed_bar"])  # counted from 1: the first close under 90 % of the first
        assert bar == 1 + int(np.argmax(closes < 0.9 * closes[0]))
        fill = paths.open[int(row["path"])][1]  # bought at the second bar's open, 0.1 % commission
        assert row["final_value"] == pytest.approx(100_000 + 10 * (closes[bar - 1] - fill) - 0.001 * 10 * fill)
        assert row["error"] == "RuntimeError: the price fell (at mine.py:22 in next)"
    summary = result.summary
    assert summary.common_errors == [
        ("RuntimeError: the price fell (at mine.py:22 in next)", len(failed), list(failed["path"])[:5])
    ]
    survivors = frame.loc[frame["error"].isna(), "total_return"]
    assert summary.prob_loss == pytest.approx(float((survivors < 0).mean()))
    assert summary.prob_loss_with_failed == pytest.approx(float((frame["total_return"] < 0).mean()))
    assert summary.prob_loss_with_failed > summary.prob_loss  # the failed paths lost: survivors look rosier
    assert summary.with_failed.loc["total_return", "p50"] == pytest.approx(frame["total_return"].median())
    assert "failures" in summary.to_dict() and "look better than the truth" in str(summary)


def test_exit_status_follows_max_failures_once_the_run_is_saved(files, tmp_path):
    strategy = f"{files}/mine.py:FailsWhenItFalls"
    scenarios = str(files / "paths.parquet")
    result = cli("-s", strategy, "--scenarios", scenarios, "-j", "1", "--out", str(tmp_path / "a"))
    assert result.exit_code == 2
    assert "paths failed, more than --max-failures 0% allows" in result.output
    assert "Counting failed paths at their value when they failed" in result.output
    assert (tmp_path / "a" / "results.parquet").exists() and (tmp_path / "a" / "summary.json").exists()
    allowed = cli(
        "-s", strategy, "--scenarios", scenarios, "-j", "1", "--max-failures", "100%", "--out", str(tmp_path / "b")
    )
    assert allowed.exit_code == 0, allowed.output
    everything = cli(
        "-s", f"{files}/mine.py:AlwaysFails", "--scenarios", scenarios, "-j", "2", "--max-failures", "100%",
        "--out", str(tmp_path / "c"),
    )  # fmt: skip
    assert everything.exit_code == 2 and "Every path failed (8)" in everything.output
    assert "8 x KeyError: 'nothing here' (at mine.py:27 in next) (paths 0, 1, 2, 3, 4, ...)" in everything.output


def test_the_api_raises_with_the_result_only_when_asked(files, paths):
    strategy = f"{files}/mine.py:AlwaysFails"
    result = run_montecarlo(strategy, paths.subset(slice(0, 2)), jobs=1, progress=False)
    assert result.summary.n_failed == 2
    with pytest.raises(TooManyFailures) as raised:
        run_montecarlo(strategy, paths.subset(slice(0, 2)), jobs=1, progress=False, max_failures="100%")
    assert raised.value.result.summary.n_failed == 2


@pytest.mark.parametrize(("given", "total", "allowed"), [("0%", 50, 0), ("5%", 50, 2), ("3", 50, 3), (0.1, 50, 5)])
def test_max_failures_reads_counts_and_shares(given, total, allowed):
    assert allowed_failures(given, total) == allowed


@pytest.mark.parametrize("given", ["-1", "five", "120%", "1.5"])
def test_max_failures_refuses_nonsense(given):
    with pytest.raises(ConfigError, match="max_failures"):
        allowed_failures(given, 10)


# -- said before the run -------------------------------------------------------------------
def test_a_strategy_reading_data1_is_told_to_resample_before_the_run(files, tmp_path):
    out = tmp_path / "run"
    result = cli("-s", f"{files}/mine.py:ReadsData1", "--scenarios", str(files / "paths.parquet"), "--out", str(out))
    assert result.exit_code == 2
    assert "fails before its first bar" in result.output and "(at mine.py:" in result.output
    assert "--resample monthly" in result.output and "lineseries" not in result.output
    assert not out.exists()
    ok = cli(
        "-s", f"{files}/mine.py:ReadsData1", "--resample", "monthly", "--scenarios", str(files / "paths.parquet"),
        "-j", "1", "--out", str(out),
    )  # fmt: skip
    assert ok.exit_code == 0, ok.output


def test_an_indicator_longer_than_the_paths_is_said_before_the_run(files, paths, sp500):
    with pytest.raises(ConfigError, match=r"needs 400 bars of data0 .* each path gives 252"):
        run_montecarlo(f"{files}/mine.py:LongPeriod", paths, jobs=1, progress=False)
    with pytest.raises(ConfigError, match=r"needs 3 bars of data1 \(its monthly bars\) .* each path gives 2"):
        run_montecarlo(f"{files}/mine.py:ReadsData1", windows(sp500.loc["2005":], 1, 30), resample="monthly")


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"sizer": "PercentSizr:percents=20"}, "No sizer named 'PercentSizr'.*PercentSizer"),
        ({"sizer": "PercentSizer:percent=20"}, "no parameter 'percent'"),
        ({"analyzers": ("SQNN",)}, "No analyzer named 'SQNN'"),
        ({"commission_scheme": "futures"}, "margin"),
        ({"commission_scheme": "per-share:x=1"}, "takes no parameters"),
        ({"resample": ("daily",)}, "Cannot resample to 'daily'"),
        ({"slippage": 0.01, "slippage_fixed": 0.5}, "not both"),
        ({"setup": "nowhere.py:setup"}, "setup function"),
    ],
)
def test_bad_settings_are_one_message_before_the_run(paths, settings, message):
    with pytest.raises(ConfigError, match=message):
        run_montecarlo("sma_cross", paths, jobs=1, progress=False, **settings)


def test_specs_split_name_and_parameters():
    assert split_spec("PercentSizer:percents=20") == ("PercentSizer", {"percents": "20"})
    assert split_spec("/a/b.py:Mine:w=(1,2),k=3") == ("/a/b.py:Mine", {"w": "(1,2)", "k": "3"})
    assert split_spec("pkg.mod:Mine") == ("pkg.mod:Mine", {})
    assert Settings(sizer="x.py:S:k=1").sizer.endswith("/x.py:S:k=1")


# -- output, analyzers ---------------------------------------------------------------------
def test_each_paths_output_is_kept_apart_with_jobs_2(files, tmp_path):
    out = tmp_path / "run"
    result = cli(
        "-s", f"{files}/mine.py:Talker", "--scenarios", str(files / "paths.parquet"), "-j", "2", "--batch-size", "1",
        "--out", str(out),
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "path-0 1 " not in result.output  # the terminal shows the summary, not the prints
    for i in range(8):
        lines = (out / "logs" / f"{i}.log").read_text().splitlines()
        assert len(lines) == 252 and all(line.startswith(f"path-{i} ") for line in lines)
    shown = cli(
        "-s", f"{files}/mine.py:Talker", "--scenarios", str(files / "paths.parquet"), "-j", "2", "--show-output",
        "--out", str(tmp_path / "shown"),
    )  # fmt: skip
    assert shown.exit_code == 0
    printed = [line for line in shown.output.splitlines() if line.startswith("[path ")]
    assert len(printed) == 8 * 252
    assert all(line.startswith(f"[path {line.split()[1][:-1]}] path-{line.split()[1][:-1]} ") for line in printed)


def test_output_is_capped_and_says_so(files, paths):
    from synthmarket.montecarlo.output import CappedText

    sink = CappedText(limit=10)
    sink.write("0123456789abc")
    assert sink.getvalue().startswith("0123456789\n[synthmarket: this path's output is cut at 10 characters; 3 more")
    result = run_montecarlo(f"{files}/mine.py:Talker", paths.subset(slice(0, 2)), jobs=1, progress=False)
    assert result.output(1).splitlines()[0].startswith("path-1 1 ") and result.output(7) == ""


def test_analyzers_become_columns_and_the_rest_is_kept_per_path(paths, tmp_path):
    result = run_montecarlo(
        "sma_cross", paths, jobs=2, progress=False, analyzers=("SQN", "TimeReturn", "TradeAnalyzer"), out=tmp_path / "r"
    )
    frame = result.results
    assert {"sqn.sqn", "sqn.trades", "tradeanalyzer.total.closed"} <= set(frame.columns)
    assert (frame["sqn.trades"] == frame["n_trades"]).all()
    returns = result.analysis(3)["timereturn"]  # a series by date: not a column
    assert len(returns) == 252 and all(isinstance(v, float) for v in returns.values())
    final = 100_000 * np.prod([1 + v for v in returns.values()])
    assert final == pytest.approx(frame.loc[3, "final_value"], rel=1e-9)
    summary = json.loads((tmp_path / "r" / "summary.json").read_text())
    assert "sqn.sqn" in summary["metrics"] and summary["settings"]["analyzers"] == [
        "SQN",
        "TimeReturn",
        "TradeAnalyzer",
    ]


# -- resume --------------------------------------------------------------------------------
def test_resume_refuses_any_change_and_names_it(files, tmp_path):
    source = files / "mine_resume.py"
    source.write_text(STRATEGIES)
    out = tmp_path / "run"
    base = ["-s", f"{source}:Talker", "--scenarios", str(files / "paths.parquet"), "-j", "1", "--out", str(out)]
    assert cli(*base).exit_code == 0
    changes = {
        "the strategy's code changed": lambda: source.write_text(STRATEGIES + "\n# edited\n"),
        "settings.cash: 100000.0 then, 5000.0 now": ["--cash", "5000"],
        "settings.analyzers: [] then, ['SQN'] now": ["--analyzer", "SQN"],
        "settings.sizer: None then, 'PercentSizer:percents=20' now": ["--sizer", "PercentSizer:percents=20"],
    }
    for said, change in changes.items():
        extra = change if isinstance(change, list) else []
        if callable(change):
            change()
        result = cli(*base, "--resume", *extra)
        assert result.exit_code == 2 and said in result.output, result.output
        source.write_text(STRATEGIES)
    assert cli(*base, "--resume").exit_code == 0


def test_the_report_shows_the_failures_and_the_view_counting_them(files, paths, tmp_path):
    from synthmarket.pages import build_report

    run_montecarlo(f"{files}/mine.py:FailsWhenItFalls", paths, jobs=1, progress=False, out=tmp_path / "backtest")
    page = build_report(tmp_path).read_text()
    assert "<h3>Failed paths</h3>" in page and "RuntimeError: the price fell (at mine.py:22 in next)" in page
    assert "Counting the failed paths at their value when they failed" in page
    assert "look better than the truth" in page


def test_known_pitfalls_inside_backtrader_get_a_hint(files, paths, tmp_path):
    (tmp_path / "pitfalls.py").write_text(
        textwrap.dedent(
            """
            import backtrader as bt


            class Shadows(bt.Strategy):
                def next(self):
                    self.stop = self.data.close[0]
            """
        )
    )
    shadow = run_montecarlo(f"{tmp_path}/pitfalls.py:Shadows", paths.subset(slice(0, 1)), jobs=1, progress=False)
    assert "hides Strategy.stop" in shadow.results["error"].iloc[0]
    annual = run_montecarlo("sma_cross", paths.subset(slice(0, 1)), jobs=1, progress=False, analyzers=("AnnualReturn",))
    error = annual.results["error"].iloc[0]
    assert "(at annualreturn.py:" in error and "cerebro.addobserver(bt.observers.Broker)" in error


def test_a_commission_scheme_of_your_own_takes_its_commission_in_its_spec(tmp_path):
    (tmp_path / "comm.py").write_text("import backtrader as bt\n\nclass Flat(bt.CommInfoBase):\n    pass\n")
    with pytest.raises(ConfigError, match=r"give its commission as one of its parameters"):
        Settings(commission=2.0, commission_scheme=f"{tmp_path}/comm.py:Flat")
    assert Settings(commission_scheme=f"{tmp_path}/comm.py:Flat:commission=2").commission == 0.0
    assert Settings().commission == 0.001 and Settings(commission_scheme="per-share").commission == 0.0


def test_a_bad_max_failures_is_refused_before_the_run(files, tmp_path):
    out = tmp_path / "run"
    result = cli(
        "-s", "sma_cross", "--scenarios", str(files / "paths.parquet"), "--max-failures", "lots", "--out", str(out)
    )
    assert result.exit_code == 2 and "max_failures is a count" in result.output and not out.exists()
