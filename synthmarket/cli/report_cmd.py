"""``synthmarket report``: a self-contained HTML report of a run directory or of a model's training."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.markup import escape

from ..errors import ConfigError
from ..pages import build_report
from ..training_page import build_training_report
from .common import app, console


@app.command()
def report(
    run: Path | None = typer.Option(None, "--run", help="A run directory (as `synthmarket demo --out` writes)."),
    model: Path | None = typer.Option(None, "--model", "-m", help="A model directory: show its training curves."),
    out: Path | None = typer.Option(
        None, "--out", "-o", help="HTML file to write (default: RUN/report.html or MODEL/training.html)."
    ),
) -> None:
    """Write one HTML file (figures embedded) for a run (--run) or a model's training (--model)."""
    if (run is None) == (model is None):
        raise ConfigError("Give exactly one of --run DIR (a run directory) or --model DIR (a model's training).")
    if out is not None and out.is_dir():
        raise ConfigError(f"--out {str(out)!r} is a directory; give a file name such as {out / 'report.html'}.")
    path = build_report(run, out) if run is not None else build_training_report(model, out)
    console.print(f"Wrote {escape(str(path))}", highlight=False, soft_wrap=True)
