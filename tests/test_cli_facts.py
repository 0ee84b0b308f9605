"""``synthmarket facts`` through typer's CliRunner, on scenario files and on a trained model."""

from __future__ import annotations

import json

import numpy as np
import pytest
from typer.testing import CliRunner

from synthmarket.bars import Anchor, to_features
from synthmarket.cli import app
from synthmarket.paths import Paths
from synthmarket.registry import get_registry

runner = CliRunner()


@pytest.fixture(scope="module")
def files(tmp_path_factory, sp500):
    """Scenario files: real 2,000-day windows (parquet) and i.i.d. Gaussian paths (csv)."""
    root = tmp_path_factory.mktemp("facts_cli")
    feats = to_features(sp500)
    windows = np.stack([feats[s : s + 2000] for s in range(0, len(feats) - 2000, 250)])
    real = Paths.from_features(windows, Anchor.after(sp500.iloc[:1])).save(root / "windows.parquet")
    rng = np.random.default_rng(0)
    draws = feats.mean(axis=0) + rng.standard_normal((30, 1000, feats.shape[1])) * feats.std(axis=0)
    gaussian = Paths.from_features(draws, Anchor.after(sp500)).save(root / "gaussian.csv")
    return {"root": root, "real": real, "gaussian": gaussian}


def test_scenarios_of_real_windows_pass_and_write_outputs(files):
    out = files["root"] / "report"
    result = runner.invoke(
        app,
        [
            "facts",
            "--scenarios",
            str(files["real"]),
            "--data",
            "sp500",
            "--out",
            str(out),
            "--strict",
            "--fact",
            "heavy_tails",
            "--fact",
            "leverage_effect",
            "--fact",
            "bar_validity",
            "--no-scores",
        ],
    )
    assert result.exit_code == 0, result.output
    assert "heavy_tails" in result.output and "PASS" in result.output
    assert "Hill index, left tail" in result.output
    assert {p.name for p in out.iterdir()} == {
        "scorecard.md",
        "scorecard.png",
        "distances.json",
        "scorecard.csv",
        "verdicts.csv",
    }
    distances = json.loads((out / "distances.json").read_text())["distances"]
    assert distances["w1_1"] >= 0 and "acf_abs" in distances and "dy_20" in distances
    assert "| heavy_tails | pass |" in (out / "scorecard.md").read_text()
    assert (out / "scorecard.png").read_bytes()[:4] == b"\x89PNG"


def test_failing_facts_exit_0_unless_strict(files):
    args = [
        "facts",
        "--scenarios",
        str(files["gaussian"]),
        "--data",
        "sp500",
        "--no-scores",
        "--fact",
        "volatility_clustering",
        "--fact",
        "no_autocorrelation",
    ]
    relaxed = runner.invoke(app, args)
    assert relaxed.exit_code == 0, relaxed.output
    assert "FAIL" in relaxed.output and "volatility_clustering" in relaxed.output
    strict = runner.invoke(app, args + ["--strict"])
    assert strict.exit_code == 1


def test_memorisation_warning_is_printed(files):
    result = runner.invoke(
        app,
        [
            "facts",
            "--scenarios",
            str(files["real"]),
            "--data",
            "sp500",
            "--start",
            "2009-01-01",
            "--fact",
            "heavy_tails",
            "--score",
            "memorisation",
        ],
    )
    assert result.exit_code == 0, result.output
    assert "memorisation_copy_share" in result.output and "discriminative_score" not in result.output
    assert "Memorisation" in result.output


def test_model_directory_is_sampled(tmp_path, sp500_recent):
    model = get_registry().generators()["gbm"].obj()
    model.fit(sp500_recent)
    model.save(tmp_path / "gbm")
    result = runner.invoke(
        app,
        [
            "facts",
            "--model",
            str(tmp_path / "gbm"),
            "--paths",
            "40",
            "--steps",
            "500",
            "--seed",
            "1",
            "--data",
            "sp500",
            "--no-scores",
            "--strict",
        ],
    )
    assert result.exit_code == 1, result.output  # GBM has no heavy tails nor volatility clustering
    assert "40 paths x 500 steps" in result.output
    assert "heavy_tails  FAIL" in result.output


@pytest.mark.parametrize(
    "args, message",
    [
        ([], "Give exactly one source of paths"),
        (["--scenarios", "nowhere.parquet"], "No such scenario file"),
        (["--fact", "no_such_fact"], "No fact named"),
        (["--model", "no_such_model"], "no_such_model"),
        (["--data", "no_such_set"], "no_such_set"),
        (["--score", "accuracy"], "Unknown score"),
    ],
)
def test_user_errors_exit_2(files, args, message):
    if args and args[0] in ("--fact", "--data", "--score"):
        args = ["--scenarios", str(files["gaussian"])] + args
    result = runner.invoke(app, ["facts", *args])
    assert result.exit_code == 2, result.output
    assert message in result.output


def test_out_must_be_a_directory(files):
    target = files["root"] / "a_file.txt"
    target.write_text("x")
    result = runner.invoke(
        app,
        ["facts", "--scenarios", str(files["gaussian"]), "--fact", "heavy_tails", "--no-scores", "--out", str(target)],
    )
    assert result.exit_code == 2 and "is a file" in result.output
