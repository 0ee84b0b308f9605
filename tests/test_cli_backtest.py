"""``synthmarket backtest`` and ``synthmarket strategies`` from the command line."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from synthmarket.cli import app
from synthmarket.montecarlo import COLUMNS, read_results, run_montecarlo
from synthmarket.paths import FIELDS, Paths

runner = CliRunner()


def windows(bars: pd.DataFrame, n: int, steps: int) -> Paths:
    """``n`` consecutive ``steps``-bar windows of real bars, as paths on the first window's dates."""
    arrays = {k: np.stack([bars[k].to_numpy()[i * steps : (i + 1) * steps] for i in range(n)]) for k in FIELDS}
    return Paths(**arrays, dates=bars.index[:steps])


@pytest.fixture(scope="module")
def scenario_file(sp500, tmp_path_factory):
    return windows(sp500, 8, 200).save(tmp_path_factory.mktemp("scenarios") / "paths.parquet")


def invoke(*args: str):
    return runner.invoke(app, list(args), catch_exceptions=False)


def test_strategies_lists_names_params_and_defaults():
    result = invoke("strategies")
    assert result.exit_code == 0
    for text in (
        "buy_and_hold",
        "sma_cross",
        "rsi_mean_reversion",
        "donchian_breakout",
        "volatility_target",
        "fast: int = 10",
        "oversold: float = 30.0",
        "target_vol: float = 0.15",
    ):
        assert text in result.output


def test_backtest_writes_results_and_summary(scenario_file, tmp_path):
    out = tmp_path / "run"
    result = invoke(
        "backtest",
        "--strategy",
        "sma_cross",
        "-p",
        "fast=5",
        "-p",
        "slow=20",
        "--scenarios",
        str(scenario_file),
        "--data",
        "sp500",
        "--start",
        "2017-01-01",
        "--end",
        "2018-12-31",
        "--cash",
        "50000",
        "--commission",
        "0.002",
        "--jobs",
        "1",
        "--out",
        str(out),
    )
    assert result.exit_code == 0, result.output
    assert "sma_cross (fast=5, slow=20) on 8 paths" in result.output
    assert "P(loss)" in result.output and "sharpe" in result.output and "rank %" in result.output
    frame = pq.read_table(out / "results.parquet").to_pandas()
    assert tuple(frame.columns) == COLUMNS
    assert list(frame["path"]) == [str(i) for i in range(8)] + ["real"]
    summary = json.loads((out / "summary.json").read_text())
    assert summary["strategy"] == "sma_cross" and summary["params"] == {"fast": 5, "slow": 20}
    assert summary["n_paths"] == 8 and summary["settings"]["cash"] == 50000
    assert summary["metrics"]["sharpe"]["real"] == pytest.approx(frame.set_index("path").loc["real", "sharpe"])
    # the same numbers as the library call
    direct = run_montecarlo(
        "sma_cross",
        Paths.load(scenario_file),
        params={"fast": 5, "slow": 20},
        cash=50000,
        commission=0.002,
        jobs=1,
        progress=False,
    )
    stored = read_results(out)
    pd.testing.assert_frame_equal(stored[stored["path"] != "real"].reset_index(drop=True), direct.results)


@pytest.mark.parametrize(
    "args, message",
    [
        (["--strategy", "sma_crosss"], "No strategy named 'sma_crosss'"),
        (["--strategy", "sma_cross", "-p", "fats=3"], "has no parameter 'fats'"),
        (["--strategy", "sma_cross", "-p", "fast=ten"], "'fast' of 'sma_cross' takes a whole number"),
        (["--strategy", "sma_cross", "-p", "fast"], "is not key=value"),
        (["--strategy", "sma_cross", "-p", "fast=40"], "fast < slow"),
        (["--strategy", "sma_cross", "--backend", "spark"], "Unknown backend 'spark'"),
        (["--strategy", "sma_cross", "--commission", "-1"], "commission is a fraction"),
    ],
)
def test_mistakes_exit_2_with_a_message(scenario_file, tmp_path, args, message):
    result = invoke("backtest", *args, "--scenarios", str(scenario_file), "--jobs", "1", "--out", str(tmp_path / "o"))
    assert result.exit_code == 2
    assert message in " ".join(result.output.split())
    assert not (tmp_path / "o" / "results.parquet").exists()


def test_scenarios_or_model_not_both(scenario_file, tmp_path):
    both = invoke(
        "backtest",
        "-s",
        "sma_cross",
        "--scenarios",
        str(scenario_file),
        "--model",
        str(tmp_path),
        "--paths",
        "3",
        "--steps",
        "50",
        "--out",
        str(tmp_path / "o"),
    )
    assert both.exit_code == 2 and "not both" in both.output
    neither = invoke("backtest", "-s", "sma_cross", "--out", str(tmp_path / "o"))
    assert neither.exit_code == 2 and "--scenarios FILE, or --model DIR" in " ".join(neither.output.split())
    partial = invoke(
        "backtest", "-s", "sma_cross", "--model", str(tmp_path), "--paths", "3", "--out", str(tmp_path / "o")
    )
    assert partial.exit_code == 2 and "--model needs --steps" in partial.output


def test_backtest_samples_from_a_model(sp500_recent, tmp_path):
    from synthmarket.registry import get_registry

    gbm = get_registry().get("generator", "gbm")()
    gbm.fit(sp500_recent)
    gbm.save(tmp_path / "gbm")
    out = tmp_path / "run"
    result = invoke(
        "backtest",
        "-s",
        "buy_and_hold",
        "--model",
        str(tmp_path / "gbm"),
        "--paths",
        "5",
        "--steps",
        "60",
        "--seed",
        "3",
        "--jobs",
        "1",
        "--out",
        str(out),
    )
    assert result.exit_code == 0, result.output
    frame = pq.read_table(out / "results.parquet").to_pandas()
    assert list(frame["path"]) == [str(i) for i in range(5)]
    expected = run_montecarlo("buy_and_hold", gbm.sample_paths(5, 60, seed=3), jobs=1, progress=False).results
    np.testing.assert_allclose(frame["final_value"], expected["final_value"], rtol=1e-9)


@pytest.mark.slow
def test_ctrl_c_leaves_a_readable_file_and_resume_finishes(sp500, tmp_path):
    """A real SIGINT to a running `synthmarket backtest`, then --resume."""
    scenario = windows(sp500, 10, 250).save(tmp_path / "paths.parquet")
    slow_file = tmp_path / "slow.py"
    slow_file.write_text(
        "import time\nfrom synthmarket_strategies import BuyAndHold\n\n"
        "class Slow(BuyAndHold):\n    def stop(self):\n        time.sleep(0.8)\n"
    )
    out = tmp_path / "run"
    args = [
        "backtest",
        "-s",
        f"{slow_file}:Slow",
        "--scenarios",
        str(scenario),
        "--jobs",
        "1",
        "--batch-size",
        "1",
        "--out",
        str(out),
    ]
    env = {**os.environ, "SYNTHMARKET_LOAD_PLUGINS": ""}
    process = subprocess.Popen(
        [sys.executable, "-c", "from synthmarket.cli import main; main()", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        env=env,
        # a child inherits an ignored SIGINT (Python then never raises KeyboardInterrupt), and
        # an earlier test in the same pytest process may have left it ignored
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    deadline = time.time() + 60
    while time.time() < deadline and len(list((out / "results").glob("part-*.parquet"))) < 2:
        time.sleep(0.05)
    process.send_signal(signal.SIGINT)
    output = process.communicate(timeout=60)[0].decode()
    assert process.returncode == 130, output
    partial = pq.read_table(out / "results.parquet").to_pandas()
    assert 2 <= len(partial) < 10 and partial["path"].is_unique

    finished = invoke(*args, "--resume")
    assert finished.exit_code == 0, finished.output
    frame = read_results(out)
    assert list(frame["path"]) == [str(i) for i in range(10)]
    expected = run_montecarlo("buy_and_hold", Paths.load(scenario), jobs=1, progress=False).results
    pd.testing.assert_frame_equal(frame, expected)
