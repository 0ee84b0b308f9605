"""Scenario files: one validator for every reader, and path ids that travel unchanged to the results.

Scenario files are windows of the bundled S&P 500, one cell (or row) corrupted per case.
"""

from __future__ import annotations

import json
import re
import textwrap

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

import synthmarket as sm
from synthmarket.cli import app
from synthmarket.errors import DataError
from synthmarket.montecarlo import ResultStore, run_montecarlo
from synthmarket.paths import FIELDS, Paths

runner = CliRunner()

N_PATHS, STEPS = 4, 150  # 149 returns: enough for the stylized facts (100)
PATH, BAR = 2, 40  # the corrupted bar: path 2 on its 41st date


def windows(bars: pd.DataFrame, n: int, steps: int) -> Paths:
    """``n`` consecutive ``steps``-bar windows of real bars, as paths on the first window's dates."""
    arrays = {k: np.stack([bars[k].to_numpy()[i * steps : (i + 1) * steps] for i in range(n)]) for k in FIELDS}
    return Paths(**arrays, dates=bars.index[:steps])


@pytest.fixture(scope="module")
def paths(sp500):
    return windows(sp500, N_PATHS, STEPS)


@pytest.fixture(scope="module")
def days(paths):
    return {
        "day": f"{paths.dates[BAR]:%Y-%m-%d}",
        "first": f"{paths.dates[0]:%Y-%m-%d}",
        "last": f"{paths.dates[-1]:%Y-%m-%d}",
        "negated": f"{-paths.open[PATH, 0]:.10g}",
    }


def one_bar(**values):
    """Set some fields of the corrupted bar."""

    def corrupt(frame, sp500):
        row = PATH * STEPS + BAR
        for field, value in values.items():
            if isinstance(value, str):
                frame[field] = frame[field].astype(object)
            frame.loc[row, field] = value
        return frame

    return corrupt


def own_dates(frame, sp500):
    """Path 2 on the real dates of its window (as long as the others, but later)."""
    frame.loc[frame["path"] == PATH, "date"] = sp500.index[PATH * STEPS : (PATH + 1) * STEPS].to_numpy()
    return frame


def negated(frame, sp500):
    """Every price of path 2 negated."""
    rows = frame["path"] == PATH
    frame.loc[rows, ["open", "high", "low", "close"]] *= -1
    return frame


RULE_BAR = "(rule: low <= open, close <= high)"
RULE_PRICE = "(rule: prices are finite and positive)"

# id, corruption, file suffix, expected message after "FILE: "
CASES = [
    (
        "nan price",
        one_bar(close=np.nan),
        "parquet",
        f"path 2, {{day}}: close nan is not a finite positive price {RULE_PRICE}",
    ),
    (
        "zero price",
        one_bar(open=0.0),
        "parquet",
        f"path 2, {{day}}: open 0 is not a finite positive price {RULE_PRICE}",
    ),
    (
        "negative price",
        one_bar(low=-99.0),
        "csv",
        f"path 2, {{day}}: low -99 is not a finite positive price {RULE_PRICE}",
    ),
    (
        "negated path",
        negated,
        "parquet",
        f"path 2, {{first}}: open {{negated}} is not a finite positive price {RULE_PRICE}",
    ),
    (
        "infinite price",
        one_bar(high=np.inf),
        "parquet",
        f"path 2, {{day}}: high inf is not a finite positive price {RULE_PRICE}",
    ),
    (
        "high below low",
        one_bar(open=100.0, high=99.0, low=100.5, close=100.0),
        "parquet",
        f"path 2, {{day}}: high 99 is below low 100.5 {RULE_BAR}",
    ),
    (
        "close above high",
        one_bar(open=100.0, high=101.2, low=99.0, close=101.9),
        "csv",
        f"path 2, {{day}}: high 101.2 is below close 101.9 {RULE_BAR}",
    ),
    (
        "negative volume",
        one_bar(volume=-5.0),
        "parquet",
        "path 2, {day}: volume -5 is negative or not a number (rule: volume is finite and >= 0)",
    ),
    (
        "duplicate row",
        lambda f, _: pd.concat([f, f.iloc[[PATH * STEPS + BAR]]], ignore_index=True),
        "parquet",
        "path 2, {day}: more than one row (rule: one row per path and date)",
    ),
    (
        "every path twice",
        lambda f, _: pd.concat([f, f], ignore_index=True),
        "parquet",
        "path 0, {first}: more than one row (rule: one row per path and date)",
    ),
    (
        "text in prices",
        one_bar(close="abc"),
        "csv",
        "path 2, {day}: close 'abc' is not a number (rule: prices and volume are numbers)",
    ),
    (
        "text in dates",
        one_bar(date="2019-13-45"),
        "csv",
        "path 2: date '2019-13-45' is not a date (rule: dates such as 2019-03-04)",
    ),
    (
        "different dates",
        own_dates,
        "parquet",
        "path 2, {first}: no bar, while path 0 has one (rule: every path has the same dates)",
    ),
    (
        "shorter path",
        lambda f, _: f.drop(index=(PATH + 1) * STEPS - 1),
        "csv",
        "path 2, {last}: no bar, while path 0 has one (rule: every path has the same dates)",
    ),
]


def write(frame: pd.DataFrame, file):
    if file.suffix == ".csv":
        frame.to_csv(file, index=False, date_format="%Y-%m-%d")
    else:
        frame.to_parquet(file, index=False)
    return file


def flat(text: str) -> str:
    return " ".join(text.split())


@pytest.mark.parametrize("corrupt, suffix, expected", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_backtest_facts_and_the_api_refuse_the_same_way(paths, days, sp500, tmp_path, corrupt, suffix, expected):
    file = write(corrupt(paths.to_frame(), sp500), tmp_path / f"scenarios.{suffix}")
    message = f"{file.name}: {expected.format(**days)}"
    out = tmp_path / "run"
    backtest = runner.invoke(
        app,
        ["backtest", "-s", "buy_and_hold", "--scenarios", str(file), "--jobs", "1", "--out", str(out)],
        catch_exceptions=False,
    )
    facts = runner.invoke(
        app, ["facts", "--scenarios", str(file), "--no-scores", "--fact", "heavy_tails"], catch_exceptions=False
    )
    for result in (backtest, facts):
        assert result.exit_code == 2, result.output
        assert message in flat(result.output)
        assert "Traceback" not in result.output
    assert not (out / "results.parquet").exists()
    with pytest.raises(DataError) as raised:
        run_montecarlo("buy_and_hold", file, jobs=1, progress=False)
    assert str(raised.value) == message + "."
    with pytest.raises(DataError, match="^" + re.escape(message)):
        sm.scorecard(sp500, file, facts=["heavy_tails"], scores=False)


@pytest.mark.parametrize(
    "field, value, expected",
    [
        ("close", -1.0, "close -1 is not a finite positive price (rule: prices are finite and positive)"),
        ("high", 1.0, "high 1 is below low"),
        ("volume", np.nan, "volume nan is negative or not a number"),
    ],
)
def test_paths_in_memory_are_checked_before_a_backtest(paths, days, field, value, expected):
    broken = paths.subset(np.arange(N_PATHS))  # a copy
    getattr(broken, field)[PATH, BAR] = value
    with pytest.raises(DataError, match="^" + re.escape(f"scenarios: path 2, {days['day']}: {expected}")):
        run_montecarlo("buy_and_hold", broken, jobs=1, progress=False)
    assert getattr(paths, field)[PATH, BAR] != value


def test_the_real_histories_id_and_repeated_ids_are_refused(paths):
    with pytest.raises(DataError, match="path real .*kept for the real history"):
        run_montecarlo(
            "buy_and_hold",
            Paths(**{k: getattr(paths, k) for k in FIELDS}, dates=paths.dates, ids=["a", "real", "b", "c"]),
            jobs=1,
            progress=False,
        )
    with pytest.raises(DataError, match="path 7 appears twice"):
        run_montecarlo(
            "buy_and_hold",
            Paths(**{k: getattr(paths, k) for k in FIELDS}, dates=paths.dates, ids=[7, 8, 7, 9]),
            jobs=1,
            progress=False,
        )


# ----------------------------------------------------------------------------------------
# Path ids travel unchanged
# ----------------------------------------------------------------------------------------
FAILS_ON_ONE_PATH = textwrap.dedent(
    """
    from synthmarket_strategies import BuyAndHold


    class FailsOn(BuyAndHold):
        params = (("fail_on", ""),)

        def next(self):
            if self.data._name == self.p.fail_on:
                raise ValueError("boom on " + self.data._name)
            super().next()
    """
)


@pytest.fixture(scope="module")
def by_position(paths):
    """Results of the windows under ids 0..3: what each renamed path must reproduce."""
    return run_montecarlo("sma_cross", paths, jobs=1, progress=False).results.set_index("path")


@pytest.mark.parametrize(
    "ids, order, suffix",
    [
        (["a", "b", "10", "2"], ["2", "10", "a", "b"], "parquet"),  # whole numbers by value, then text
        (["a", "b", "10", "2"], ["2", "10", "a", "b"], "csv"),
        ([250, 100, 107, 5000], ["100", "107", "250", "5000"], "parquet"),
        ([250, 100, 107, 5000], ["100", "107", "250", "5000"], "csv"),
    ],
)
def test_ids_come_back_unchanged_through_the_cli_and_the_api(paths, by_position, sp500, tmp_path, ids, order, suffix):
    frame = paths.to_frame()
    frame["path"] = frame["path"].map(dict(enumerate(ids)))
    file = write(frame, tmp_path / f"scenarios.{suffix}")
    assert Paths.load(file).ids.tolist() == sorted(ids, key=lambda i: order.index(str(i)))  # ids keep their type

    out = tmp_path / "run"
    result = runner.invoke(
        app,
        [
            "backtest",
            "-s",
            "sma_cross",
            "--scenarios",
            str(file),
            "--data",
            "sp500",
            "--jobs",
            "1",
            "--batch-size",
            "1",
            "--out",
            str(out),
        ],
        catch_exceptions=False,
    )
    assert result.exit_code == 0, result.output
    stored = pq.read_table(out / "results.parquet").to_pandas()
    assert list(stored["path"]) == order + ["real"]
    direct = run_montecarlo("sma_cross", file, jobs=1, progress=False).results
    assert list(direct["path"]) == order
    for position, path_id in enumerate(ids):  # each id names the window it was given to
        for results in (stored, direct):
            row = results.set_index("path").loc[str(path_id)]
            assert row["final_value"] == pytest.approx(by_position.loc[str(position), "final_value"], rel=1e-12)


def test_failures_and_the_summary_name_the_files_ids(paths, tmp_path):
    frame = paths.to_frame()
    frame["path"] = frame["path"].map(dict(enumerate([250, 100, 107, 5000])))
    file = write(frame, tmp_path / "sparse.parquet")
    strategy = tmp_path / "fails.py"
    strategy.write_text(FAILS_ON_ONE_PATH)
    out = tmp_path / "run"
    result = runner.invoke(
        app,
        [
            "backtest",
            "-s",
            f"{strategy}:FailsOn",
            "-p",
            "fail_on=path-107",
            "--scenarios",
            str(file),
            "--jobs",
            "1",
            "--out",
            str(out),
        ],
        catch_exceptions=False,
    )
    assert result.exit_code == 2, result.output  # a failed path, and --max-failures 0% by default
    assert "failed paths: 1" in result.output
    assert "1 x ValueError: boom on path-107 (at fails.py:10 in next) (path 107)" in flat(result.output)
    assert json.loads((out / "summary.json").read_text())["n_failed"] == 1
    api = run_montecarlo(f"{strategy}:FailsOn", file, params={"fail_on": "path-107"}, jobs=1, progress=False)
    assert list(api.errors["path"]) == ["107"] and api.summary.n_failed == 1


def test_resume_keeps_the_files_ids(paths, tmp_path):
    sparse = Paths(**{k: getattr(paths, k) for k in FIELDS}, dates=paths.dates, ids=[250, 100, 107, 5000])
    out = tmp_path / "run"
    full = run_montecarlo("sma_cross", sparse, jobs=1, out=out, progress=False).results
    # as if killed after path 107: only its part file is left
    (out / "results.parquet").unlink()
    rows = full[full["path"] == "107"].to_dict("records")
    ResultStore(out).append([{k: None if pd.isna(v) else v for k, v in row.items()} for row in rows])
    resumed = run_montecarlo("sma_cross", sparse, jobs=1, out=out, resume=True, progress=False)
    pd.testing.assert_frame_equal(resumed.results, full)
    assert list(resumed.results["path"]) == ["100", "107", "250", "5000"]
