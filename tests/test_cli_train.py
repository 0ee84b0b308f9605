"""``synthmarket train``: model directories, overwrite protection, resume, hyper-parameters."""

from __future__ import annotations

import json

import pytest
import torch
from typer.testing import CliRunner

from synthmarket.checkpoints import CHECKPOINT_DIR
from synthmarket.cli import app
from synthmarket.cli.train_cmd import parse_hparams
from synthmarket.errors import ConfigError
from synthmarket.generator import Generator
from synthmarket.model_files import CONFIG_FILE, WEIGHTS_FILE
from synthmarket.training_progress import LOG_FILE

torch.set_num_threads(1)
runner = CliRunner()

TINY = "-H hidden=8 -H d_hidden=8 -H dilations=1,2 -H d_dilations=1,2 -H window=32 -H batch_size=8".split()
DATA = ["--data", "sp500", "--start", "2014-01-01", "--end", "2016-12-31"]


def train(*args: str):
    return runner.invoke(app, ["train", *args, "--no-progress"])


def log_rows(directory):
    return [json.loads(line) for line in (directory / LOG_FILE).read_text().splitlines()]


def test_trains_a_deep_generator_into_a_model_directory(tmp_path):
    out = tmp_path / "model"
    result = train(
        "-g",
        "conv1d_cgan",
        *DATA,
        "--regimes",
        "volatility",
        "--steps",
        "6",
        "--validate-every",
        "3",
        "--seed",
        "2",
        *TINY,
        "--out",
        str(out),
    )
    assert result.exit_code == 0, result.output
    assert "6 steps" in result.output and "Saved the model" in result.output
    for name in (CONFIG_FILE, WEIGHTS_FILE, LOG_FILE, CHECKPOINT_DIR):
        assert (out / name).exists(), name
    model = Generator.load(out)
    assert model.name == "conv1d_cgan" and model.hparams["hidden"] == 8 and model.hparams["dilations"] == [1, 2]
    assert model.scheme.names == ("calm", "normal", "turbulent")
    assert model.report.steps == 6
    assert model.sample(2, 20, regime="turbulent", seed=0).shape == (2, 20, 5)
    assert {r["event"] for r in log_rows(out)} >= {"start", "step", "validation", "stop"}


def test_refuses_to_overwrite_then_force_and_resume(tmp_path):
    out = tmp_path / "model"
    assert train("-g", "conv1d_cgan", *DATA, "--steps", "4", *TINY, "--out", str(out)).exit_code == 0
    again = train("-g", "conv1d_cgan", *DATA, "--steps", "4", *TINY, "--out", str(out))
    assert again.exit_code == 2
    assert "already holds" in again.output and "--resume" in again.output and "--force" in again.output

    resumed = train("-g", "conv1d_cgan", *DATA, "--steps", "9", "--resume", "--out", str(out))
    assert resumed.exit_code == 0, resumed.output
    assert Generator.load(out).report.steps == 9
    assert [r["event"] for r in log_rows(out) if r["event"] in ("start", "resume")] == ["start", "resume"]

    clash = train("-g", "conv1d_cgan", *DATA, "--steps", "12", "--resume", "-H", "hidden=4", "--out", str(out))
    assert clash.exit_code == 2 and "other hyper-parameters" in clash.output

    forced = train("-g", "conv1d_cgan", *DATA, "--steps", "3", *TINY, "--force", "--out", str(out))
    assert forced.exit_code == 0, forced.output
    assert Generator.load(out).report.steps == 3
    assert [r["event"] for r in log_rows(out)].count("start") == 1


def test_resume_without_checkpoints_is_an_error(tmp_path):
    result = train("-g", "conv1d_cgan", *DATA, "--resume", "--out", str(tmp_path / "nothing"))
    assert result.exit_code == 2 and "Nothing to resume" in result.output


def test_validation_blocks_spread_the_held_out_bars(tmp_path):
    out = tmp_path / "model"
    result = train(
        "-g",
        "conv1d_cgan",
        *DATA,
        "--validation-blocks",
        "3",
        "--steps",
        "4",
        "--validate-every",
        "2",
        *TINY,
        "--out",
        str(out),
    )
    assert result.exit_code == 0, result.output
    assert "113 held out in 3 blocks" in " ".join(result.output.split())
    assert [r for r in log_rows(out) if r["event"] == "validation"]


def test_trains_a_classical_generator_too(tmp_path):
    out = tmp_path / "gbm"
    result = train("-g", "gbm", *DATA, "--out", str(out))
    assert result.exit_code == 0, result.output
    assert Generator.load(out).name == "gbm"
    assert log_rows(out)[0]["event"] == "fit"


@pytest.mark.parametrize(
    "args, message",
    [
        (["-g", "no_such_model"], "No generator named"),
        (["-g", "conv1d_cgan", "-H", "hiden=3"], "Unknown hyper-parameter 'hiden'"),
        (["-g", "conv1d_cgan", "-H", "hidden=big"], "expected a whole number"),
        (["-g", "conv1d_cgan", "-H", "hidden"], "not key=value"),
        (["-g", "conv1d_cgan", "--time-budget", "soon"], "duration"),
        (["-g", "conv1d_cgan", "--device", "tpu"], "Unknown device"),
        (["-g", "gbm", "--regimes", "volatility"], "does not learn regimes"),
        (["-g", "conv1d_cgan", "--resume", "--force"], "give one of them"),
        (["-g", "conv1d_cgan", "--validation-blocks", "0"], "validation_blocks must be"),
        (["-g", "conv1d_cgan", "--select-after", "-1"], "select_after must be"),
    ],
)
def test_mistakes_give_one_message_and_exit_2(tmp_path, args, message):
    result = train(*args, *DATA, "--steps", "2", "--out", str(tmp_path / "m"))
    assert result.exit_code == 2
    assert message in result.output
    assert "Traceback" not in result.output


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
def test_asking_for_cuda_without_a_gpu_is_an_error(tmp_path):
    result = train("-g", "conv1d_cgan", *DATA, "--steps", "2", "--device", "cuda", *TINY, "--out", str(tmp_path / "m"))
    assert result.exit_code == 2 and "no CUDA" in result.output


def test_parse_hparams_types():
    defaults = {"hidden": 16, "lr": 1e-3, "dilations": "1,2", "flag": False}
    parsed = parse_hparams(["hidden=32", "lr=5e-4", "dilations=1,3,9", "flag=yes"], defaults)
    assert parsed == {"hidden": 32, "lr": 5e-4, "dilations": "1,3,9", "flag": True}
    assert parse_hparams(["hidden=1e2"], defaults) == {"hidden": 100}
    with pytest.raises(ConfigError, match="expected a whole number"):
        parse_hparams(["hidden=2.5"], defaults)
    with pytest.raises(ConfigError, match="expected true or false"):
        parse_hparams(["flag=maybe"], defaults)
