"""HTML reports built from real run and model directories (small classical and deep models)."""

from __future__ import annotations

import json
import re

import pandas as pd
import pytest
from typer.testing import CliRunner

import synthmarket as sm
from synthmarket.cli import app
from synthmarket.errors import DataError, ModelFileError
from synthmarket.figures import outcome_histograms
from synthmarket.notebook import generator_html, paths_html
from synthmarket.runs import read_training_log

EXTERNAL = re.compile(r"""(?:src|href)\s*=\s*["'](?!data:|#)|url\(|<script|<link""", re.I)


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory, sp500_recent):
    """A real run: bootstrap with volatility regimes, 50 paths, facts, regimes, a backtest."""
    out = tmp_path_factory.mktemp("run")
    model = sm.train("bootstrap", sp500_recent, regimes="volatility")
    paths = sm.generate(model, 50, 130, seed=3)
    card = sm.scorecard(sp500_recent, paths, scores=False)
    regimes = sm.regime_comparison(model, sp500_recent, n_paths=20, n_steps=130, seed=3)
    sm.write_run(
        out,
        config={"generator": "bootstrap", "seed": 3, "data": "sp500"},
        paths=paths,
        real=sp500_recent,
        card=card,
        regimes=regimes,
    )
    sm.run_montecarlo("sma_cross", paths, real=sp500_recent.iloc[-130:], jobs=1, out=out / "backtest", progress=False)
    return out


@pytest.fixture(scope="module")
def deep_model_dir(tmp_path_factory, sp500_recent):
    """A tiny conv1d_cgan trained for 30 steps with a validation every 10."""
    out = tmp_path_factory.mktemp("cgan")
    sm.train(
        "conv1d_cgan",
        sp500_recent,
        steps=30,
        out=out,
        window=64,
        hidden=8,
        d_hidden=8,
        train_options={"validate_every": 10, "log_every": 5},
    )
    return out


def test_run_report_has_every_section_and_embeds_its_figures(run_dir):
    path = sm.build_report(run_dir)
    page = path.read_text()
    assert path == run_dir / "report.html"
    for section in ("id='summary'", "id='prices'", "id='regimes'", "id='facts'", "id='backtest'", "id='config'"):
        assert section in page
    for text in (
        "Synthetic prices",
        "Per-regime comparison",
        "Stylized facts",
        "Backtest outcomes",
        "Configuration",
        "no_autocorrelation",
        "sharpe",
        "max_drawdown",
        "calm",
        "turbulent",
        "real rank %",
        "They start from the market of",  # the "from today" note: the day before the paths and its volatility
    ):
        assert text in page
    # fan chart, regime figure, facts grid, outcome histograms
    assert page.count("data:image/png;base64,") == 4
    assert not EXTERNAL.search(page)


def test_report_states_the_verdict_count_that_the_scorecard_holds(run_dir):
    verdicts = pd.read_csv(run_dir / "facts" / "verdicts.csv", keep_default_na=False)
    judged = verdicts[verdicts["verdict"] != "n/a"]
    assert len(judged) < len(verdicts)  # 130-step paths: facts the real windows cannot judge read n/a
    page = sm.build_report(run_dir, run_dir / "again.html").read_text()
    assert f"<b>{int((judged['verdict'] == 'pass').sum())} of {len(judged)}</b>" in page


def test_report_sets_the_facts_beside_real_windows_of_the_paths_length(run_dir):
    statistics = pd.read_csv(run_dir / "facts" / "scorecard.csv")
    assert statistics["real_window_percentile"].between(0, 100).all()
    verdicts = pd.read_csv(run_dir / "facts" / "verdicts.csv", keep_default_na=False)
    assert verdicts["holds on real windows"].str.endswith("%").all()  # 130-step paths, 18 real windows
    page = sm.build_report(run_dir, run_dir / "facts.html").read_text()
    assert "<td class='na'>n/a</td>" in page and ">nan<" not in page
    for text in (
        "Synthetic against real windows of the same length",
        "percentile among real windows",
        "real windows median",
        "real, whole series",
        "holds on real windows",
    ):
        assert text in page


def test_the_histograms_rank_the_real_history_as_the_summary_does(run_dir):
    results = pd.read_parquet(run_dir / "backtest" / "results.parquet")
    summary = json.loads((run_dir / "backtest" / "summary.json").read_text())
    titles = [ax.get_title() for ax in outcome_histograms(results).axes]
    assert len(titles) == 3
    for metric, title in zip(("sharpe", "total_return", "max_drawdown"), titles):
        rank = summary["metrics"][metric]["real_rank"]
        assert f", {rank:.0f}% of paths at or below" in title, (metric, title, rank)


def test_report_shows_only_what_the_directory_holds(tmp_path, run_dir):
    partial = tmp_path / "only-backtest"
    (partial / "backtest").mkdir(parents=True)
    for name in ("results.parquet", "summary.json"):
        (partial / "backtest" / name).write_bytes((run_dir / "backtest" / name).read_bytes())
    page = sm.build_report(partial).read_text()
    assert "Backtest outcomes" in page and "Synthetic prices" not in page and "Stylized facts" not in page
    assert page.count("data:image/png;base64,") == 1


def test_report_of_an_empty_or_missing_directory_is_a_data_error(tmp_path):
    with pytest.raises(DataError, match="nothing to report"):
        sm.build_report(tmp_path)
    with pytest.raises(DataError, match="No such run directory"):
        sm.build_report(tmp_path / "missing")


def test_training_report_draws_losses_and_validation(deep_model_dir):
    page = sm.build_training_report(deep_model_dir).read_text()
    assert "Training of conv1d_cgan" in page
    assert page.count("data:image/png;base64,") == 1
    assert "Every validation" in page and "<th>last logged</th>" in page
    assert not EXTERNAL.search(page)
    rows = read_training_log(deep_model_dir)
    assert sum(r.get("event") == "validation" for r in rows) == 3


def test_training_report_of_a_classical_model_says_there_is_no_curve(tmp_path, sp500_recent):
    sm.train("gbm", sp500_recent, out=tmp_path / "gbm")
    page = sm.build_training_report(tmp_path / "gbm").read_text()
    assert "no curve to show" in page and "data:image/png" not in page
    with pytest.raises(DataError, match="no losses"):
        sm.plot_training(tmp_path / "gbm")


def test_training_report_of_a_directory_that_is_no_model(tmp_path):
    with pytest.raises(ModelFileError, match="neither"):
        sm.build_training_report(tmp_path)


def test_notebook_views(run_dir, deep_model_dir):
    paths = sm.Paths.load(run_dir / "scenarios.parquet")
    view = paths_html(paths)
    assert "50 paths x 130 bars" in view and "data:image/png" in view
    model = sm.load_model(deep_model_dir)
    view = generator_html(model)
    assert "Conv1DCGAN" in view and "hidden" in view and "data:image/png" in view
    assert len(sm.plot_training(model).axes) == 1  # a TrainReport keeps the validations, not the losses
    assert len(sm.plot_training(deep_model_dir).axes) == 2  # the training log has both
    fig = sm.plot_paths(paths, sm.Paths.load(run_dir / "scenarios.parquet").path(0))
    assert fig.axes[0].get_title() == "50 synthetic paths of 130 bars"


def test_report_command(run_dir, deep_model_dir, tmp_path):
    runner = CliRunner()
    done = runner.invoke(app, ["report", "--run", str(run_dir), "--out", str(tmp_path / "r.html")])
    assert done.exit_code == 0, done.output
    assert (tmp_path / "r.html").is_file() and "r.html" in done.output
    done = runner.invoke(app, ["report", "--model", str(deep_model_dir)])
    assert done.exit_code == 0, done.output
    assert (deep_model_dir / "training.html").is_file()
    done = runner.invoke(app, ["report"])
    assert done.exit_code == 2 and "exactly one of --run" in done.output
    done = runner.invoke(app, ["report", "--run", str(tmp_path / "missing")])
    assert done.exit_code == 2 and "No such run directory" in done.output
