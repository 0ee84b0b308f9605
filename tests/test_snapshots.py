"""`train --snapshots N` saves figures of generated vs real windows; `report --model` shows them."""

from __future__ import annotations

import torch
from typer.testing import CliRunner

from synthmarket.cli import app
from synthmarket.snapshots import snapshot_files

runner = CliRunner()


def test_snapshots_are_saved_every_n_steps_and_shown_in_the_training_report(tmp_path):
    torch.set_num_threads(1)
    out = tmp_path / "model"
    result = runner.invoke(
        app,
        [
            "train",
            "--generator",
            "conv1d_cgan",
            "--start",
            "2012-01-01",
            "--end",
            "2015-12-31",
            "--steps",
            "30",
            "--snapshots",
            "10",
            "--no-progress",
            "--out",
            str(out),
        ],
    )
    assert result.exit_code == 0, result.output
    files = snapshot_files(out)
    assert [f.name for f in files] == ["step_000010.png", "step_000020.png", "step_000030.png"]
    assert all(f.read_bytes()[:4] == b"\x89PNG" for f in files)
    result = runner.invoke(app, ["report", "--model", str(out)])
    assert result.exit_code == 0, result.output
    page = (out / "training.html").read_text()
    assert "Snapshots" in page and page.count("class='snapshot'") == 3


def test_snapshots_of_a_closed_form_generator_are_refused(tmp_path):
    result = runner.invoke(app, ["train", "--generator", "gbm", "--snapshots", "10", "--out", str(tmp_path / "m")])
    assert result.exit_code == 2
    assert "no training to snapshot" in result.output
