"""``synthmarket demo`` end to end with a tiny configuration (classical generator, few paths)."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from synthmarket.cli import app
from synthmarket.paths import Paths

TINY = ["--generator", "bootstrap", "--paths", "30", "--steps", "120", "--jobs", "1", "--no-progress"]
RUN_FILES = (
    "run.json",
    "scenarios.parquet",
    "real.parquet",
    "report.html",
    "facts/scorecard.csv",
    "facts/verdicts.csv",
    "facts/scorecard.png",
    "facts/distances.json",
    "backtest/results.parquet",
    "backtest/summary.json",
    "model/config.json",
    "model/weights.safetensors",
)


@pytest.mark.slow
def test_demo_writes_the_run_directory_and_reuses_its_model(tmp_path):
    out = tmp_path / "demo"
    runner = CliRunner()
    done = runner.invoke(app, ["demo", "--out", str(out), *TINY])
    assert done.exit_code == 0, done.output
    for name in RUN_FILES:
        assert (out / name).is_file(), name
    assert "[1/6]" in done.output and "[6/6]" in done.output and "Training bootstrap" in done.output
    assert str((out / "report.html").resolve()) in done.output.replace("\n", "")

    paths = Paths.load(out / "scenarios.parquet")
    assert (paths.n_paths, paths.n_steps) == (30, 120)
    results = pd.read_parquet(out / "backtest" / "results.parquet")
    assert len(results) == 31 and (results["path"] == "real").sum() == 1 and results["error"].isna().all()
    config = json.loads((out / "run.json").read_text())
    assert config["generator"] == "bootstrap" and config["seed"] == 0 and config["n_paths"] == 30
    assert config["data_range"] == "1999-01-04..2018-12-31" and config["real_backtest_range"].endswith("2018-12-31")
    page = (out / "report.html").read_text()
    assert all(s in page for s in ("Synthetic prices", "Stylized facts", "Backtest outcomes", "Configuration"))

    again = runner.invoke(app, ["demo", "--out", str(out), *TINY])
    assert again.exit_code == 0, again.output
    assert "Reusing the bootstrap model" in again.output
    assert Paths.load(out / "scenarios.parquet").close.tolist() == paths.close.tolist()


@pytest.mark.slow
def test_demo_with_regimes_compares_them_and_retrains_on_new_settings(tmp_path):
    out = tmp_path / "demo"
    runner = CliRunner()
    done = runner.invoke(app, ["demo", "--out", str(out), *TINY, "--regimes", "volatility"])
    assert done.exit_code == 0, done.output
    assert "[7/7]" in done.output
    table = pd.read_csv(out / "regimes.csv")
    assert list(table["regime"]) == ["calm", "normal", "turbulent"]
    assert table["real_volatility"].is_monotonic_increasing
    assert "Per-regime comparison" in (out / "report.html").read_text()
    first = Paths.load(out / "scenarios.parquet").close

    other_seed = runner.invoke(app, ["demo", "--out", str(out), *TINY, "--seed", "1"])
    assert other_seed.exit_code == 0, other_seed.output
    assert "Training bootstrap" in other_seed.output and "Reusing" not in other_seed.output
    assert not (out / "regimes.csv").exists()
    assert Paths.load(out / "scenarios.parquet").close.tolist() != first.tolist()


def test_demo_mistakes_are_one_message_and_status_2(tmp_path):
    runner = CliRunner()
    done = runner.invoke(app, ["demo", "--out", str(tmp_path / "d"), *TINY, "--time-budget", "soon"])
    assert done.exit_code == 2 and "Could not read the duration" in done.output
    done = runner.invoke(app, ["demo", "--out", str(tmp_path / "d"), "--generator", "nope", "--no-progress"])
    assert done.exit_code == 2 and "No generator named 'nope'" in done.output
    (tmp_path / "file").write_text("x")
    done = runner.invoke(app, ["demo", "--out", str(tmp_path / "file"), *TINY])
    assert done.exit_code == 2 and "is a file" in done.output
    assert not (tmp_path / "d").exists()


@pytest.mark.slow
def test_the_notebook_api_runs_the_same_pipeline_quietly(tmp_path, capsys):
    import synthmarket as sm
    from synthmarket.pipeline import Note, StepDone, StepStarted

    events = []
    result = sm.run_pipeline(
        tmp_path / "run", generator="bootstrap", n_paths=30, n_steps=120, jobs=1, on_event=events.append
    )
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err == ""
    assert result.report == tmp_path / "run" / "report.html" and result.report.is_file()
    assert not result.reused_model and result.paths.n_paths == 30 and result.regimes is None
    assert len(result.backtest.results) == 31 and result.config["n_paths"] == 30
    started = [e for e in events if isinstance(e, StepStarted)]
    assert [e.number for e in started] == [1, 2, 3, 4, 5, 6] and {e.total for e in started} == {6}
    assert len([e for e in events if isinstance(e, StepDone)]) == 6 and any(isinstance(e, Note) for e in events)
    assert str(started[0]) == "[1/6] Loading the sp500 bars"

    again = sm.run_pipeline(tmp_path / "run", generator="bootstrap", n_paths=30, n_steps=120, jobs=1)
    assert again.reused_model
    assert again.paths.close.tolist() == result.paths.close.tolist()


def test_pipeline_options_are_checked_before_anything_is_written(tmp_path):
    import synthmarket as sm
    from synthmarket.errors import ConfigError, PluginError

    with pytest.raises(ConfigError, match="Unknown pipeline option 'paths'"):
        sm.run_pipeline(tmp_path / "run", paths=10)
    with pytest.raises(PluginError, match="No strategy named 'nope'"):
        sm.run_pipeline(tmp_path / "run", generator="bootstrap", strategy="nope")
    with pytest.raises(ConfigError, match="lies outside the data"):
        sm.run_pipeline(tmp_path / "run", generator="bootstrap", from_date="1900-01-02")
    with pytest.raises(ConfigError, match="drop --context none"):
        sm.run_pipeline(tmp_path / "run", generator="bootstrap", from_date="2008-10-10", context="none")
    assert not (tmp_path / "run").exists()


@pytest.mark.slow
def test_the_demo_starts_its_paths_from_the_market_of_a_chosen_date(tmp_path):
    """garch from the market of 2008-10-10: the paths start the next trading day, from that
    day's close, and their first days are far more volatile than from the calm end of 2006."""
    done = CliRunner().invoke(
        app,
        ["demo", "--out", str(tmp_path / "d"), *TINY, "--generator", "garch", "--from", "2008-10-10"],
    )
    assert done.exit_code == 0, done.output
    assert "from the market on 2008-10-10" in done.output
    paths = Paths.load(tmp_path / "d" / "scenarios.parquet")
    assert paths.dates[0] == pd.Timestamp("2008-10-13")
    assert json.loads((tmp_path / "d" / "run.json").read_text())["context"] == "2008-10-10"
    calm = CliRunner().invoke(
        app,
        ["demo", "--out", str(tmp_path / "d"), *TINY, "--generator", "garch", "--from", "2006-12-29"],
    )
    assert calm.exit_code == 0, calm.output
    quiet = Paths.load(tmp_path / "d" / "scenarios.parquet")
    first_week = lambda p: np.diff(np.log(p.close[:, :6]), axis=1).std()  # noqa: E731
    assert first_week(paths) > 2 * first_week(quiet)
