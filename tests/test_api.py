"""The notebook API end to end on tiny settings, on the real bundled data."""

from __future__ import annotations

import json

import numpy as np
import pytest

import synthmarket as sm
from synthmarket import api
from synthmarket.errors import ConfigError, PluginError


def test_names_load_on_first_use_and_unknown_names_fail():
    assert sm.train is api.train and sm.generate is api.generate
    from synthmarket.facts import scorecard
    from synthmarket.montecarlo import run_montecarlo

    assert sm.scorecard is scorecard and sm.run_montecarlo is run_montecarlo
    assert {"train", "generate", "scorecard", "run_montecarlo", "build_report", "load_data"} <= set(dir(sm))
    with pytest.raises(AttributeError, match="no attribute 'nonsense'"):
        sm.nonsense  # noqa: B018


def test_generators_lists_the_built_ins():
    table = sm.generators()
    assert {"conv1d_cgan", "rgan", "vae", "gbm", "garch", "bootstrap"} <= set(table["name"])
    assert bool(table.set_index("name").loc["conv1d_cgan", "conditional"]) is True
    assert bool(table.set_index("name").loc["gbm", "conditional"]) is False


def test_train_generate_save_load_round_trip(tmp_path):
    out = tmp_path / "model"
    model = sm.train("garch", data="sp500", start="2012-01-01", end="2016-12-31", out=out)
    assert model.is_fitted and model.report is not None
    assert (out / "config.json").is_file() and (out / "train_log.jsonl").is_file()
    assert json.loads((out / "train_log.jsonl").read_text().splitlines()[0])["event"] == "fit"
    paths = sm.generate(model, 12, 60, seed=5)
    again = sm.generate(out, 12, 60, seed=5)
    assert isinstance(paths, sm.Paths) and (paths.n_paths, paths.n_steps) == (12, 60)
    np.testing.assert_allclose(paths.close, again.close)
    assert model.anchor.date == "2016-12-30" and paths.dates[0] > np.datetime64("2016-12-30")
    other = sm.generate(sm.load_model(out), 12, 60, seed=6)
    assert not np.allclose(paths.close, other.close)


def test_training_again_into_a_directory_replaces_the_model(tmp_path, sp500_recent):
    out = tmp_path / "m"
    sm.train(
        "conv1d_cgan",
        sp500_recent,
        steps=6,
        out=out,
        window=32,
        hidden=4,
        d_hidden=4,
        train_options={"validate_every": 3, "checkpoint_every": 3},
    )
    first = (out / "train_log.jsonl").read_text()
    assert '"event": "validation"' in first and (out / "checkpoints").is_dir()
    sm.train("gbm", sp500_recent, out=out)
    assert not (out / "checkpoints").exists()
    assert sm.load_model(out).name == "gbm"
    assert json.loads((out / "train_log.jsonl").read_text())["event"] == "fit"


def test_deep_training_honours_the_seed(sp500_recent):
    kwargs = dict(steps=4, window=32, hidden=4, d_hidden=4, train_options={"validate_every": 100})
    a = sm.generate(sm.train("conv1d_cgan", sp500_recent, seed=1, **kwargs), 3, 40, seed=0)
    b = sm.generate(sm.train("conv1d_cgan", sp500_recent, seed=1, **kwargs), 3, 40, seed=0)
    c = sm.generate(sm.train("conv1d_cgan", sp500_recent, seed=2, **kwargs), 3, 40, seed=0)
    np.testing.assert_array_equal(a.close, b.close)
    assert not np.allclose(a.close, c.close)


def test_user_mistakes_raise_named_errors(sp500_recent):
    with pytest.raises(PluginError, match="No generator named 'nope'"):
        sm.train("nope", sp500_recent)
    with pytest.raises(ConfigError, match="unknown hyper-parameter"):
        sm.train("gbm", sp500_recent, wings=3)
    with pytest.raises(ConfigError, match="not in train_options"):
        sm.train("gbm", sp500_recent, train_options={"seed": 3})
    with pytest.raises(ConfigError, match="Unknown training option"):
        sm.train("gbm", sp500_recent, train_options={"speed": 3})
    model = sm.train("gbm", sp500_recent)
    with pytest.raises(ConfigError, match="trained without regimes"):
        sm.generate(model, 2, 10, regime="calm")
    with pytest.raises(ConfigError, match="trained without regimes"):
        sm.regime_comparison(model, sp500_recent)


def test_regimes_condition_the_paths(sp500_recent):
    model = sm.train("bootstrap", sp500_recent, regimes="volatility")
    calm = sm.generate(model, 20, 120, regime="calm", seed=0)
    turbulent = sm.generate(model, 20, 120, regime="turbulent", seed=0)
    assert turbulent.log_returns().std() > 1.5 * calm.log_returns().std()
    table = sm.regime_comparison(model, sp500_recent, n_paths=20, n_steps=120, seed=0)
    assert list(table["regime"]) == ["calm", "normal", "turbulent"]
    assert table["real_share"].sum() == pytest.approx(1.0)
    assert table["real_volatility"].is_monotonic_increasing
    assert table["synthetic_volatility"].is_monotonic_increasing
    assert (table["synthetic_volatility_p5"] <= table["synthetic_volatility"]).all()
    assert (table["synthetic_volatility"] <= table["synthetic_volatility_p95"]).all()


def test_whole_workflow_in_a_notebook(tmp_path, sp500_recent):
    model = sm.train("bootstrap", sp500_recent, seed=0)
    paths = sm.generate(model, 20, 120, seed=1)
    card = sm.scorecard(sp500_recent, paths, scores=False)
    assert card.n_paths == 20 and "<table" in card._repr_html_()
    result = sm.run_montecarlo(
        "sma_cross", paths, params={"fast": 5, "slow": 20}, real=sp500_recent.iloc[-120:], jobs=1, progress=False
    )
    assert len(result.results) == 21 and result.real is not None
    assert "sma_cross" in result._repr_html_()
    assert len(result.plot().axes) == 3
    assert len(card.plot().axes) > 3
    run = sm.write_run(tmp_path / "run", config={"generator": "bootstrap"}, paths=paths, real=sp500_recent, card=card)
    assert sorted(p.name for p in (run / "facts").iterdir()) == [
        "distances.json",
        "scorecard.csv",
        "scorecard.md",
        "scorecard.png",
        "verdicts.csv",
    ]
    assert json.loads((run / "run.json").read_text())["versions"]["synthmarket"] == sm.__version__
    page = sm.build_report(run).read_text()
    assert "Stylized facts" in page and "Backtest outcomes" not in page
