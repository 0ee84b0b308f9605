"""``synthmarket generate``: files, seeds, regimes, schedules, chunks and refusals."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from synthmarket.cli import app
from synthmarket.generator import Generator
from synthmarket.paths import LONG_COLUMNS, Paths
from synthmarket.scenario_files import generate_file
from synthmarket.testing import assert_valid_paths
from synthmarket_plugins.classical import Bootstrap, Gbm

runner = CliRunner()


@pytest.fixture(scope="module")
def gbm_dir(sp500_recent, tmp_path_factory):
    model = Gbm()
    model.fit(sp500_recent)
    return model.save(tmp_path_factory.mktemp("models") / "gbm")


@pytest.fixture(scope="module")
def regime_dir(sp500_recent, tmp_path_factory):
    model = Bootstrap()
    model.fit(sp500_recent, regimes="volatility")
    return model.save(tmp_path_factory.mktemp("models") / "bootstrap")


def generate(*args: str):
    return runner.invoke(app, ["generate", *map(str, args)])


@pytest.mark.parametrize("suffix", [".parquet", ".csv"])
def test_writes_valid_paths_in_long_format(gbm_dir, tmp_path, suffix):
    out = tmp_path / f"paths{suffix}"
    result = generate("--model", gbm_dir, "--paths", 7, "--steps", 30, "--seed", 3, "--out", out)
    assert result.exit_code == 0, result.output
    assert "Wrote 7 paths x 30 bars (210 rows)" in result.output
    frame = pd.read_parquet(out) if suffix == ".parquet" else pd.read_csv(out)
    assert tuple(frame.columns) == LONG_COLUMNS
    assert len(frame) == 7 * 30
    assert sorted(frame["path"].unique()) == list(range(7))
    paths = Paths.load(out)
    assert (paths.n_paths, paths.n_steps) == (7, 30)
    assert_valid_paths(paths)
    model = Generator.load(gbm_dir)
    assert paths.dates[0] == pd.Timestamp(model.anchor.date) + pd.offsets.BDay(1)
    assert (paths.dates.day_of_week < 5).all()
    expected = model.sample_paths(7, 30, seed=3)
    np.testing.assert_allclose(paths.close, expected.close, rtol=1e-12)
    np.testing.assert_allclose(paths.volume, expected.volume, rtol=1e-12)


@pytest.mark.parametrize("suffix", [".parquet", ".csv"])
def test_same_seed_same_file_other_seed_other_file(gbm_dir, tmp_path, suffix):
    files = {}
    for name, seed in (("a", 5), ("b", 5), ("c", 6)):
        files[name] = tmp_path / f"{name}{suffix}"
        result = generate(
            "--model", gbm_dir, "--paths", 9, "--steps", 12, "--seed", seed, "--chunk-size", 4, "--out", files[name]
        )
        assert result.exit_code == 0, result.output
    assert files["a"].read_bytes() == files["b"].read_bytes()
    assert files["a"].read_bytes() != files["c"].read_bytes()


def test_chunks_are_streamed_as_row_groups_and_match_the_library(gbm_dir, tmp_path):
    out = tmp_path / "chunked.parquet"
    result = generate("--model", gbm_dir, "--paths", 10, "--steps", 20, "--seed", 1, "--chunk-size", 4, "--out", out)
    assert result.exit_code == 0, result.output
    assert pq.ParquetFile(out).num_row_groups == 3
    model = Generator.load(gbm_dir)
    features = np.concatenate(list(model.sample_chunks(10, 20, seed=1, chunk_size=4)))
    expected = Paths.from_features(features, model.anchor)
    paths = Paths.load(out)
    np.testing.assert_allclose(paths.close, expected.close, rtol=1e-12)
    np.testing.assert_allclose(paths.high, expected.high, rtol=1e-12)
    assert paths.anchor_close == pytest.approx(model.anchor.close)
    assert list(pd.read_parquet(out)["path"].unique()) == list(range(10))


def test_start_date(gbm_dir, tmp_path):
    out = tmp_path / "dated.csv"
    result = generate("--model", gbm_dir, "--paths", 2, "--steps", 5, "--start-date", "2030-06-01", "--out", out)
    assert result.exit_code == 0, result.output
    dates = pd.read_csv(out)["date"].unique().tolist()
    assert dates == ["2030-06-03", "2030-06-04", "2030-06-05", "2030-06-06", "2030-06-07"]  # June 1st is a Saturday


def test_bad_start_date(gbm_dir, tmp_path):
    result = generate(
        "--model", gbm_dir, "--paths", 2, "--steps", 5, "--start-date", "someday", "--out", tmp_path / "x.csv"
    )
    assert result.exit_code == 2
    assert "start date 'someday'" in result.output
    assert not (tmp_path / "x.csv").exists()


def test_refuses_to_overwrite_without_force(gbm_dir, tmp_path):
    out = tmp_path / "keep.csv"
    out.write_text("precious data\n")
    result = generate("--model", gbm_dir, "--paths", 2, "--steps", 5, "--out", out)
    assert result.exit_code == 2
    assert "already exists" in result.output and "--force" in result.output
    assert out.read_text() == "precious data\n"
    result = generate("--model", gbm_dir, "--paths", 2, "--steps", 5, "--out", out, "--force")
    assert result.exit_code == 0, result.output
    assert len(pd.read_csv(out)) == 10


def test_a_failed_run_keeps_the_old_file_and_leaves_no_partial(regime_dir, tmp_path):
    out = tmp_path / "keep.parquet"
    out.write_bytes(b"old")
    result = generate("--model", regime_dir, "--paths", 2, "--steps", 5, "--regime", "stormy", "--out", out, "--force")
    assert result.exit_code == 2
    assert "Unknown regime 'stormy'" in result.output
    assert out.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["keep.parquet"]


def test_an_interrupted_run_leaves_no_partial_file(gbm_dir, tmp_path):
    out = tmp_path / "interrupted.parquet"
    model = Generator.load(gbm_dir)

    def interrupt(n_paths):
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        generate_file(model, out, 10, 5, chunk_size=2, on_chunk=interrupt)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("name", ["paths.txt", "paths"])
def test_refuses_an_unknown_suffix(gbm_dir, tmp_path, name):
    result = generate("--model", gbm_dir, "--paths", 2, "--steps", 5, "--out", tmp_path / name)
    assert result.exit_code == 2
    assert ".parquet or .csv" in result.output


def test_refuses_a_directory_as_output(gbm_dir, tmp_path):
    (tmp_path / "dir.csv").mkdir()
    result = generate("--model", gbm_dir, "--paths", 2, "--steps", 5, "--out", tmp_path / "dir.csv", "--force")
    assert result.exit_code == 2
    assert "is a directory" in result.output


def test_a_missing_model_is_a_clear_error(tmp_path):
    result = generate("--model", tmp_path / "nope", "--paths", 2, "--steps", 5, "--out", tmp_path / "x.csv")
    assert result.exit_code == 2
    assert "No such model directory" in result.output
    assert "Traceback" not in result.output


def test_steps_are_required_without_a_schedule(gbm_dir, tmp_path):
    result = generate("--model", gbm_dir, "--paths", 2, "--out", tmp_path / "x.csv")
    assert result.exit_code == 2
    assert "--steps" in result.output


def test_schedule_sets_the_number_of_steps(regime_dir, tmp_path):
    out = tmp_path / "scheduled.parquet"
    result = generate("--model", regime_dir, "--paths", 3, "--schedule", "calm:10,turbulent:5,calm:10", "--out", out)
    assert result.exit_code == 0, result.output
    paths = Paths.load(out)
    assert paths.n_steps == 25
    model = Generator.load(regime_dir)
    expected = model.sample_paths(3, 25, schedule="calm:10,turbulent:5,calm:10", seed=0)
    np.testing.assert_allclose(paths.close, expected.close, rtol=1e-12)


def test_schedule_and_steps_must_agree(regime_dir, tmp_path):
    result = generate(
        "--model", regime_dir, "--paths", 2, "--steps", 20, "--schedule", "calm:10", "--out", tmp_path / "x.csv"
    )
    assert result.exit_code == 2
    assert "covers 10 steps but 20" in result.output


def test_regime_sampling(regime_dir, tmp_path):
    calm, turbulent = tmp_path / "calm.parquet", tmp_path / "turbulent.parquet"
    for regime, out in (("calm", calm), ("turbulent", turbulent)):
        result = generate("--model", regime_dir, "--paths", 50, "--steps", 100, "--regime", regime, "--out", out)
        assert result.exit_code == 0, result.output
    assert Paths.load(turbulent).log_returns().std() > 1.5 * Paths.load(calm).log_returns().std()


@pytest.mark.parametrize("option", [["--regime", "calm"], ["--schedule", "calm:5"]])
def test_regimes_on_an_unconditioned_model(gbm_dir, tmp_path, option):
    result = generate("--model", gbm_dir, "--paths", 2, "--steps", 5, *option, "--out", tmp_path / "x.csv")
    assert result.exit_code == 2
    assert "trained without regimes" in result.output
    assert not (tmp_path / "x.csv").exists()


def test_progress_for_many_chunks(gbm_dir, tmp_path):
    out = tmp_path / "many.parquet"
    result = generate("--model", gbm_dir, "--paths", 500, "--steps", 10, "--chunk-size", 50, "--out", out)
    assert result.exit_code == 0, result.output
    assert pq.ParquetFile(out).metadata.num_rows == 5000
    assert pq.ParquetFile(out).num_row_groups == 10
