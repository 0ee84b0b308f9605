"""No run loses data: an old model outlives a failed `train --force`, one run per output,
no partial files or orphan processes left behind by a killed run."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from synthmarket.cli import app
from synthmarket.data import sample_data
from synthmarket.generator import Generator
from synthmarket.montecarlo import read_results
from synthmarket.montecarlo.storage import ResultStore
from synthmarket.outdir import LOCK_FILE, pid_alive
from synthmarket.paths import FIELDS, Paths

runner = CliRunner()
ENV = {**os.environ, "SYNTHMARKET_LOAD_PLUGINS": ""}
DATA = ["--data", "sp500", "--start", "2014-01-01", "--end", "2016-12-31"]
TINY = "-H hidden=8 -H d_hidden=8 -H dilations=1,2 -H d_dilations=1,2 -H window=32 -H batch_size=8".split()
SLOW_STRATEGY = (
    "import time\nfrom synthmarket_strategies import BuyAndHold\n\n"
    "class Slow(BuyAndHold):\n    def stop(self):\n        time.sleep(1.0)\n"
)


def invoke(*args) -> object:
    return runner.invoke(app, [str(a) for a in args])


def fingerprint(directory: Path) -> dict[str, str]:
    """sha256 of every file under ``directory``, by relative path."""
    return {
        str(p.relative_to(directory)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(directory.rglob("*"))
        if p.is_file()
    }


def dead_pid() -> int:
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


def start_cli(*args, **kwargs) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-c", "from synthmarket.cli import main; main()", *map(str, args)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        env=ENV,
        **kwargs,
    )


def wait_for(condition, process: subprocess.Popen | None = None, seconds: float = 90) -> None:
    """Until ``condition()`` holds; fails when ``process`` ends first or after ``seconds``."""
    deadline = time.time() + seconds
    while not condition():
        if process is not None and process.poll() is not None:
            raise AssertionError(f"the command ended first: {process.stdout.read().decode()}")
        if time.time() > deadline:
            raise AssertionError("timed out")
        time.sleep(0.05)


def descendants(pid: int) -> set[int]:
    """Every process below ``pid``, from /proc."""
    parents = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                parents[int(entry.name)] = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                pass
    found, frontier = set(), {pid}
    while frontier:
        frontier = {child for child, parent in parents.items() if parent in frontier} - found
        found |= frontier
    return found


def windows(bars: pd.DataFrame, n: int, steps: int) -> Paths:
    arrays = {k: np.stack([bars[k].to_numpy()[i * steps : (i + 1) * steps] for i in range(n)]) for k in FIELDS}
    return Paths(**arrays, dates=bars.index[:steps])


@pytest.fixture(scope="module")
def scenario_file(tmp_path_factory):
    return windows(sample_data("sp500"), 8, 200).save(tmp_path_factory.mktemp("scenarios") / "paths.parquet")


@pytest.fixture(scope="module")
def slow_strategy(tmp_path_factory):
    file = tmp_path_factory.mktemp("strategy") / "slow.py"
    file.write_text(SLOW_STRATEGY)
    return f"{file}:Slow"


@pytest.fixture(scope="module")
def garch_model(tmp_path_factory):
    out = tmp_path_factory.mktemp("models") / "garch"
    result = invoke("train", "-g", "garch", *DATA, "--out", out, "--no-progress")
    assert result.exit_code == 0, result.output
    return out


@pytest.fixture
def old_model(garch_model, tmp_path):
    """A copy of a trained model, and the sha256 of each of its files."""
    out = tmp_path / "model"
    shutil.copytree(garch_model, out)
    return out, fingerprint(out)


# -- train --force ---------------------------------------------------------------------------
@pytest.mark.parametrize(
    "args, message",
    [
        (["--steps", "0"], "positive whole number"),
        (["--data", "no/such/bars.csv"], "No such file"),
    ],
)
def test_train_force_with_a_mistake_keeps_the_old_model(old_model, args, message):
    out, before = old_model
    result = invoke("train", "-g", "conv1d_cgan", "--out", out, "--force", *args, "--no-progress")
    assert result.exit_code == 2 and message in result.output, result.output
    assert fingerprint(out) == before
    assert sorted(p.name for p in out.iterdir()) == sorted(before)  # no lock, no temporary directory


def test_train_force_that_diverges_keeps_the_old_model(old_model):
    out, before = old_model
    result = invoke(
        "train",
        "-g",
        "conv1d_cgan",
        *DATA,
        *TINY,
        "-H",
        "lr_g=1e9",
        "-H",
        "lr_d=1e9",
        "--steps",
        "30",
        "--checkpoint-every",
        "1",
        "--force",
        "--out",
        out,
        "--no-progress",
    )
    assert result.exit_code == 2, result.output
    assert "diverged" in result.output and "kept as it was" in result.output
    assert fingerprint(out) == before
    assert sorted(p.name for p in out.iterdir()) == sorted(before)


@pytest.mark.parametrize("failure", [RuntimeError("No space left on device"), KeyboardInterrupt()])
def test_training_that_fails_midway_keeps_the_old_model(old_model, failure):
    from synthmarket.api import fit_and_save
    from synthmarket.registry import get_registry
    from synthmarket.train_config import TrainConfig
    from synthmarket.training_data import TrainingData

    out, before = old_model
    model = get_registry().get("generator", "conv1d_cgan")(
        hidden=8, d_hidden=8, dilations="1,2", d_dilations="1,2", window=32, batch_size=8
    )
    seen = []

    def fail_at_step_3(step, losses):
        seen.append(sorted(p.name for p in out.iterdir()))
        if step == 3:
            raise failure

    model.callbacks.append(fail_at_step_3)
    dataset = TrainingData.from_bars(sample_data("sp500").loc["2014-01-01":"2016-12-31"])
    with pytest.raises(type(failure)):
        fit_and_save(model, dataset, TrainConfig(steps=10, checkpoint_every=1, out_dir=out), out)
    assert any(name.startswith(".training-") for name in seen[-1])  # it was training beside the old model
    assert fingerprint(out) == before
    assert sorted(p.name for p in out.iterdir()) == sorted(before)


def test_train_force_replaces_a_model_once_the_new_one_is_saved(tmp_path):
    out = tmp_path / "model"
    first = invoke("train", "-g", "conv1d_cgan", *DATA, *TINY, "--steps", "2", "--out", out, "--no-progress")
    assert first.exit_code == 0, first.output
    (out / "notes.txt").write_text("mine")
    forced = invoke("train", "-g", "gbm", *DATA, "--force", "--out", out, "--no-progress")
    assert forced.exit_code == 0, forced.output
    assert Generator.load(out).name == "gbm"
    # the deep run's checkpoints went with it; the user's own file stayed
    assert sorted(p.name for p in out.iterdir()) == [
        "config.json",
        "notes.txt",
        "train_log.jsonl",
        "weights.safetensors",
    ]


# -- one run per output ----------------------------------------------------------------------
def test_a_second_backtest_into_the_same_out_is_refused(scenario_file, slow_strategy, tmp_path):
    out = tmp_path / "run"
    first = start_cli(
        "backtest", "-s", slow_strategy, "--scenarios", scenario_file, "--jobs", "1", "--batch-size", "1", "--out", out
    )
    try:
        wait_for(lambda: (out / LOCK_FILE).exists() and (out / "run.json").exists(), first)
        holder = json.loads((out / LOCK_FILE).read_text())
        second = invoke("backtest", "-s", "sma_cross", "--scenarios", scenario_file, "--jobs", "1", "--out", out)
        assert second.exit_code == 2, second.output
        text = " ".join(second.output.split())
        assert "in use by another run" in text and f"pid {first.pid}" in text and holder["started"] in text
        output = first.communicate(timeout=120)[0].decode()
    finally:
        first.kill()
    assert first.returncode == 0, output
    assert json.loads((out / "run.json").read_text())["strategy"].endswith(":Slow")
    assert list(read_results(out)["path"]) == [str(i) for i in range(8)]
    assert not (out / LOCK_FILE).exists()


def test_a_stale_lock_is_taken_over(scenario_file, tmp_path):
    out = tmp_path / "run"
    out.mkdir()
    pid = dead_pid()
    (out / LOCK_FILE).write_text(
        json.dumps(
            {
                "pid": pid,
                "host": socket.gethostname(),
                "started": "2020-01-02 03:04:05",
                "command": "synthmarket backtest",
            }
        )
    )
    result = invoke("backtest", "-s", "buy_and_hold", "--scenarios", scenario_file, "--jobs", "1", "--out", out)
    assert result.exit_code == 0, result.output
    assert f"taking over the lock of a run that is no longer running (pid {pid}" in " ".join(result.output.split())
    assert not (out / LOCK_FILE).exists()


def test_compaction_deletes_only_its_own_parts(tmp_path):
    mine, other = ResultStore(tmp_path), ResultStore(tmp_path)
    mine.prepare({"format": "test"}, resume=False)
    row = {"path": "0", "error": None}
    mine.append([row])
    other.append([{**row, "path": "1"}])  # another writer's part, written before the compaction
    frame = mine.compact()
    assert list(frame["path"]) == ["0"]
    assert len(list((tmp_path / "results").glob("part-*.parquet"))) == 1


def test_a_run_that_fails_before_starting_leaves_no_results_file(scenario_file, tmp_path, monkeypatch):
    import synthmarket.montecarlo.runner as runner_module

    def unreachable(*args, **kwargs):
        raise ConnectionError("Could not reach the Ray cluster at 127.0.0.1:1")

    out = tmp_path / "run"
    monkeypatch.setattr(runner_module, "map_unordered", unreachable)
    with pytest.raises(ConnectionError):
        runner_module.run_montecarlo("buy_and_hold", scenario_file, backend="ray", out=out, progress=False)
    assert not (out / "results.parquet").exists()
    monkeypatch.undo()
    rerun = invoke("backtest", "-s", "buy_and_hold", "--scenarios", scenario_file, "--jobs", "1", "--out", out)
    assert rerun.exit_code == 0, rerun.output


def test_resume_without_run_json_is_refused(scenario_file, tmp_path):
    out = tmp_path / "run"
    assert (
        invoke("backtest", "-s", "buy_and_hold", "--scenarios", scenario_file, "--jobs", "1", "--out", out).exit_code
        == 0
    )
    (out / "run.json").unlink()
    before = fingerprint(out)
    result = invoke(
        "backtest", "-s", "sma_cross", "--scenarios", scenario_file, "--jobs", "1", "--out", out, "--resume"
    )
    assert result.exit_code == 2 and "run.json is missing" in result.output, result.output
    assert fingerprint(out) == before


# -- generate's partial files -------------------------------------------------------------------
@pytest.fixture(scope="module")
def gbm_dir(tmp_path_factory):
    from synthmarket_plugins.classical import Gbm

    model = Gbm()
    model.fit(sample_data("sp500").loc["2009-05-01":"2018-12-31"])
    return model.save(tmp_path_factory.mktemp("models") / "gbm")


def test_generate_removes_the_partial_file_of_a_dead_run(gbm_dir, tmp_path):
    out = tmp_path / "paths.parquet"
    pid = dead_pid()
    stale = tmp_path / f".paths.parquet.partial-{pid}"
    stale.write_bytes(b"half a file")
    result = invoke("generate", "--model", gbm_dir, "--paths", 3, "--steps", 10, "--out", out)
    assert result.exit_code == 0, result.output
    assert f"removed {stale}" in " ".join(result.output.split())
    assert sorted(p.name for p in tmp_path.iterdir()) == ["paths.parquet"]


def test_sigterm_of_generate_removes_its_partial_file(gbm_dir, tmp_path):
    out = tmp_path / "paths.parquet"
    process = start_cli(
        "generate", "--model", gbm_dir, "--paths", 2_000_000, "--steps", 252, "--chunk-size", 500, "--out", out
    )
    try:
        wait_for(lambda: any(p.name.startswith(".paths.parquet.partial-") for p in tmp_path.iterdir()), process)
        process.send_signal(signal.SIGTERM)
        output = process.communicate(timeout=60)[0].decode()
    finally:
        process.kill()
    assert process.returncode != 0, output
    assert list(tmp_path.iterdir()) == []


# -- workers die with their parent ------------------------------------------------------------------
def test_sigkill_of_a_parallel_backtest_leaves_no_processes(scenario_file, slow_strategy, tmp_path):
    out = tmp_path / "run"
    process = start_cli(
        "backtest", "-s", slow_strategy, "--scenarios", scenario_file, "--jobs", "2", "--batch-size", "1", "--out", out
    )
    children: set[int] = set()
    try:
        wait_for(lambda: len(list((out / "results").glob("part-*.parquet"))) >= 1, process)
        children = descendants(process.pid)
        assert len(children) >= 3, children  # forkserver, resource tracker, workers
        process.kill()
        process.wait(timeout=10)
        wait_for(lambda: not any(pid_alive(pid) for pid in children), seconds=10)
    finally:
        process.kill()
        for pid in children:
            if pid_alive(pid):
                os.kill(pid, signal.SIGKILL)
    assert pq.read_table(next((out / "results").glob("part-*.parquet"))).num_rows == 1
