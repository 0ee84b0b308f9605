"""Every mistake a user can make ends in one message and exit status 2, and changes nothing.

One row per class of bad input (data, options, filesystem): the command exits 2, prints no
traceback, names the problem, and leaves every file that existed before byte for byte.
"""

from __future__ import annotations

import errno
import hashlib
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

import synthmarket as sm
from synthmarket.cli import app
from synthmarket.cli.common import filesystem_message
from synthmarket.data import load_ohlcv
from synthmarket.errors import ConfigError, DataError
from synthmarket.gaps import find_gaps
from synthmarket.training_data import TrainingData

runner = CliRunner()


@pytest.fixture(scope="module")
def workspace(tmp_path_factory, sp500):
    """A trained gbm model, a scenario file sampled from it, and data files written three ways."""
    root = tmp_path_factory.mktemp("bad-inputs")
    model = sm.train("gbm", sp500.loc["2015-01-01":"2016-12-31"], out=root / "model")
    sm.generate(model, 4, 120, seed=0).save(root / "paths.parquet")
    january = sp500.loc["2009-01-01":"2009-01-12"]  # every day <= 12: day-first or month-first?
    write_csv(january, "%d/%m/%Y", root / "ambiguous.csv")
    write_csv(sp500.loc["2009-01-01":"2009-12-31"], "%d/%m/%Y", root / "day_first.csv")
    (root / "a_file").write_text("not a directory")
    (root / "loop").symlink_to(root / "loop")
    return root


def write_csv(bars: pd.DataFrame, date_format: str, path: Path) -> Path:
    frame = bars.copy()
    frame.index = frame.index.strftime(date_format)
    frame.index.name = "Date"
    frame.to_csv(path)
    return path


def snapshot(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


#: A deep training run that fails before its first step.
DEEP_TRAIN = "train -g conv1d_cgan --data sp500 --start 2015-01-01 --steps 2 --no-progress --out {root}/deep"

#: What the user types (split on spaces; {root} is the workspace), and what the message must say.
ROWS = {
    "ambiguous day/month order": ("data info --data {root}/ambiguous.csv", "--date-format"),
    "ambiguous dates in train": (
        "train -g gbm --data {root}/ambiguous.csv --out {root}/new",
        "day-first or month-first",
    ),
    "dates that miss --date-format": (
        "data info --data {root}/day_first.csv --date-format %Y-%m-%d",
        "do not match --date-format",
    ),
    "negative seed in generate": (
        "generate --model {root}/model --paths 2 --steps 5 --seed -1 --out {root}/x.parquet",
        "seed must be a whole number from 0",
    ),
    "huge seed in facts": (
        "facts --scenarios {root}/paths.parquet --data sp500 --seed " + str(2**70) + " --out {root}/facts",
        "seed must be a whole number from 0",
    ),
    "huge seed in a deep train": (DEEP_TRAIN + " --seed " + str(2**70), "seed must be a whole number from 0"),
    "negative seed in backtest": (
        "backtest -s buy_and_hold --model {root}/model --paths 2 --steps 20 --seed -1 -j 1 --out {root}/bt",
        "seed must be a whole number",
    ),
    "negative width": (DEEP_TRAIN + " -H hidden=-4", "hidden=-4"),
    "zero batch": (DEEP_TRAIN + " -H batch_size=0", "batch_size must be a whole number"),
    "start date past pandas' range": (
        "generate --model {root}/model --paths 2 --steps 20 --start-date 2262-06-01 --out {root}/x.parquet",
        "2262-04-11",
    ),
    "demo with an unknown strategy": (
        "demo --out {root}/demo --strategy nope",
        "No strategy named 'nope'. Known strategies:",
    ),
    "demo with a bad seed": ("demo --out {root}/demo --seed -1", "seed must be a whole number"),
    "a symbolic link loop as the model": (
        "generate --model {root}/loop --paths 2 --steps 5 --out {root}/x.parquet",
        "symbolic link",
    ),
    "a symbolic link loop as the data": ("data info --data {root}/loop", "leads nowhere"),
    "output under a file": (
        "generate --model {root}/model --paths 2 --steps 5 --out {root}/a_file/x.parquet",
        "a_file",
    ),
}


@pytest.mark.parametrize("argv, expected", ROWS.values(), ids=ROWS.keys())
def test_one_message_exit_2_and_nothing_changed(workspace, argv, expected):
    before = snapshot(workspace)
    result = runner.invoke(app, argv.format(root=workspace).split())
    assert result.exit_code == 2, (result.output, result.exception)
    assert "Traceback" not in result.output and expected in result.output, result.output
    assert result.output.count("Error:") == 1
    assert snapshot(workspace) == before


def test_help_is_h_everywhere():
    for command in (["train"], ["generate"], ["backtest"], ["facts"], ["data", "info"], ["report"], ["demo"]):
        result = runner.invoke(app, [*command, "-h"])
        assert result.exit_code == 0 and "Usage" in result.output, command


def test_user_text_is_not_read_as_markup(tmp_path):
    missing = tmp_path / "my[ray].csv"
    result = runner.invoke(app, ["data", "info", "--data", str(missing)])
    assert result.exit_code == 2 and "my[ray].csv" in result.output.replace("\n", "")


@pytest.mark.parametrize(
    "code, words",
    [(errno.ENOSPC, "No space left"), (errno.EACCES, "Permission denied"), (errno.ENOTDIR, "Not a directory")],
)
def test_a_refused_file_becomes_one_sentence(code, words):
    import os

    message = filesystem_message(OSError(code, os.strerror(code), "/data/out.parquet"))
    assert words in message and "/data/out.parquet" in message


def test_a_full_disk_during_generate_is_one_message_and_leaves_no_file(workspace, tmp_path, monkeypatch):
    """A write the system refuses half-way (here: the disk fills) gives exit 2 and no partial file."""
    import pyarrow.parquet as pq

    def full_disk(self, table, *args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device", str(tmp_path / "x.parquet"))

    monkeypatch.setattr(pq.ParquetWriter, "write_table", full_disk)
    result = runner.invoke(
        app,
        [
            "generate",
            "--model",
            str(workspace / "model"),
            "--paths",
            "2",
            "--steps",
            "5",
            "--out",
            str(tmp_path / "x.parquet"),
        ],
    )
    assert result.exit_code == 2 and "No space left" in result.output and "Traceback" not in result.output
    assert list(tmp_path.iterdir()) == []


# -- dates ---------------------------------------------------------------------------------------
def test_day_first_dates_are_read_day_first_when_the_data_say_so(workspace, sp500):
    bars = load_ohlcv(workspace / "day_first.csv")
    assert bars.index.equals(sp500.loc["2009-01-01":"2009-12-31"].index)


def test_the_order_in_which_dates_increase_decides(tmp_path, sp500):
    """Days and months all <= 12, but only month-first reads the dates in increasing order."""
    bars = sp500.loc["2009-01-01":"2009-12-31"]
    bars = bars[bars.index.day <= 12]
    path = write_csv(bars, "%m/%d/%Y", tmp_path / "us.csv")
    assert load_ohlcv(path).index.equals(bars.index)


def test_an_explicit_date_format_reads_ambiguous_dates(workspace, sp500):
    bars = load_ohlcv(workspace / "ambiguous.csv", date_format="%d/%m/%Y")
    assert bars.index.equals(sp500.loc["2009-01-01":"2009-01-12"].index)
    with pytest.raises(DataError, match="--date-format"):
        load_ohlcv(workspace / "ambiguous.csv")


# -- gaps ------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def with_a_gap(sp500):
    """The S&P 500 with 2011-2015 removed: five years without a bar."""
    return sp500.drop(sp500.loc["2011-01-01":"2015-12-31"].index)


def test_gaps_are_found_and_closures_are_not(sp500, with_a_gap):
    assert find_gaps(sp500) == []  # the longest closure, 2001-09-11..14, is 4 business days
    (gap,) = find_gaps(with_a_gap)
    assert gap.first == pd.Timestamp("2011-01-03") and with_a_gap.index[gap.after] == pd.Timestamp("2016-01-04")


def test_training_never_learns_a_gap_as_one_day(with_a_gap):
    split = TrainingData.from_bars(with_a_gap)
    kept = TrainingData.from_bars(with_a_gap, gaps="keep")
    assert len(split.train_segments) == len(kept.train_segments) + 1
    assert len(kept.train) == len(split.train) + 1
    # the five-year jump is the one return "keep" learns and "split" does not
    assert np.abs(kept.train[:, 0]).max() > 5 * np.abs(split.train[:, 0]).max() / 2
    assert "no training window spans it" in split.gap_note() and "--gaps keep" in kept.gap_note()
    with pytest.raises(ConfigError, match="gaps must be one of"):
        TrainingData.from_bars(with_a_gap, gaps="ignore")


def test_gbm_learns_the_volatility_of_the_days_not_of_the_gap(with_a_gap):
    returns = np.log(with_a_gap["close"]).diff().dropna()
    daily = returns.drop(with_a_gap.index[find_gaps(with_a_gap)[0].after])
    with pytest.warns(UserWarning, match="one gap of more than 5 business days"):
        model = sm.train("gbm", with_a_gap, validation_fraction=0)
    learned = model.sample(2000, 252, seed=0)[..., 0].std()
    assert learned == pytest.approx(daily.std(), rel=0.02)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        kept = sm.train("gbm", with_a_gap, gaps="keep", validation_fraction=0).sample(2000, 252, seed=0)[..., 0].std()
    assert kept > learned * 1.1


# -- run directories and model files ----------------------------------------------------------------
def backtest_into(workspace, out) -> list[str]:
    """A backtest of the workspace's scenario file into ``out``, run to the end; its command line."""
    argv = f"backtest -s buy_and_hold --scenarios {workspace / 'paths.parquet'} -j 1 --out {out}".split()
    ran = runner.invoke(app, argv)
    assert ran.exit_code == 0, ran.output
    return argv


def test_report_reads_a_backtest_output_and_refuses_a_truncated_one(workspace, tmp_path):
    out = tmp_path / "bt"
    backtest_into(workspace, out)
    report = runner.invoke(app, ["report", "--run", str(out)])
    assert report.exit_code == 0, report.output
    assert "Backtest outcomes" in (out / "report.html").read_text()
    results = out / "results.parquet"
    results.write_bytes(results.read_bytes()[:200])
    damaged = runner.invoke(app, ["report", "--run", str(out), "--out", str(tmp_path / "again.html")])
    assert damaged.exit_code == 2 and "damaged or truncated" in damaged.output and "Traceback" not in damaged.output


def test_model_files_follow_the_umask(workspace, tmp_path):
    import os

    previous = os.umask(0o022)
    try:
        directory = sm.load_model(workspace / "model").save(tmp_path / "copy")
    finally:
        os.umask(previous)
    assert {oct(p.stat().st_mode & 0o777) for p in directory.iterdir()} == {"0o644"}


def test_facts_leave_out_the_return_across_a_gap(with_a_gap):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        paths = sm.generate(sm.train("gbm", with_a_gap), 20, 252, seed=0)
    card = sm.scorecard(with_a_gap, paths, scores=False)
    assert any("gap(s) of more than 5 business days" in note and "left out" in note for note in card.notes)
    whole = sm.scorecard(with_a_gap.loc["2016-01-01":], paths, scores=False)
    assert not any("gap" in note for note in whole.notes)


def test_train_names_the_gap_it_leaves_out(with_a_gap, tmp_path):
    data = tmp_path / "gappy.csv"
    with_a_gap.to_csv(data)
    result = runner.invoke(app, ["train", "-g", "gbm", "--data", str(data), "--out", str(tmp_path / "model")])
    assert result.exit_code == 0, result.output
    assert "one gap of more than 5 business days" in result.output and "no training window spans it" in result.output


def test_workers_are_capped_at_the_cpus_and_the_batches(capsys):
    import os

    from synthmarket.executor import cap_workers

    cores = os.cpu_count() or 1
    assert cap_workers(1000, 20) == min(cores, 20)
    assert "not 1000" in capsys.readouterr().err
    assert cap_workers(4, 1) == 1
    assert "not 4: there is 1 batch" in capsys.readouterr().err
    assert cap_workers(1, 50) == 1 and capsys.readouterr().err == ""  # as many as asked for: no note


@pytest.mark.parametrize("damage", ['{"format": "synthm', "[1, 2]"])
def test_resume_refuses_a_damaged_run_json(workspace, tmp_path, damage):
    out = tmp_path / "bt"
    argv = backtest_into(workspace, out)
    (out / "run.json").write_text(damage)
    before = snapshot(out)
    result = runner.invoke(app, [*argv, "--resume"])
    assert result.exit_code == 2 and "run.json is missing or damaged" in result.output
    assert snapshot(out) == before
