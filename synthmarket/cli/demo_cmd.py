"""``synthmarket demo``: one command from the bundled data to an HTML report.

The work is :func:`synthmarket.pipeline.run_pipeline` (train or reuse the model in
``OUT/model``, sample, score, compare regimes, backtest, write the run directory and
``OUT/report.html``); this command parses the options and prints the pipeline's progress.
"""

from __future__ import annotations

import time
from pathlib import Path

import typer
from rich.markup import escape

from ..pipeline import Event, Note, StepDone, StepStarted, run_pipeline
from .common import DATA_HELP, app, console


def print_event(event: Event) -> None:
    """One progress line: ``[2/6] Training conv1d_cgan ...``, a result, ``done in 12.3 s``."""
    if isinstance(event, StepStarted):
        console.print(f"[bold cyan][{event.number}/{event.total}][/] {escape(event.title)}", highlight=False)
    elif isinstance(event, StepDone):
        console.print(str(event), style="dim", highlight=False)
    elif isinstance(event, Note):
        console.print(escape(str(event)), highlight=False)


@app.command()
def demo(
    out: Path = typer.Option(
        Path("synthmarket-demo"), "--out", "-o", help="Run directory to write (model/, report.html, ...)."
    ),
    generator: str = typer.Option(
        "conv1d_cgan", "--generator", "-g", help="Generator to train (see `synthmarket plugins`)."
    ),
    time_budget: str | None = typer.Option("3m", "--time-budget", help="Longest training time, e.g. 90s, 3m."),
    paths: int = typer.Option(500, "--paths", "-n", min=1, help="Synthetic paths to sample."),
    steps: int = typer.Option(252, "--steps", "-s", min=100, help="Bars per path (252: one trading year)."),
    seed: int = typer.Option(0, "--seed", help="Seed of the training, the sampling and the scores."),
    jobs: int = typer.Option(-1, "--jobs", "-j", help="Backtest worker processes (-1: every core)."),
    regimes: str | None = typer.Option(
        None, "--regimes", help="Train on regimes (volatility, trend) and compare them."
    ),
    strategy: str = typer.Option(
        "sma_cross", "--strategy", help="Strategy to backtest (see `synthmarket strategies`)."
    ),
    data: str = typer.Option("sp500", "--data", "-d", help=DATA_HELP),
    train_steps: int | None = typer.Option(
        None, "--train-steps", help="Training length in steps (default: the model's)."
    ),
    retrain: bool = typer.Option(False, "--retrain", help="Train afresh even when OUT/model matches these settings."),
    progress: bool = typer.Option(True, "--progress/--no-progress", help="Show progress bars."),
    context: str = typer.Option(
        "last", "--context", help="last: start the paths from the market at the end of the data; none: unconditional."
    ),
    from_date: str | None = typer.Option(
        None, "--from", help="Start the paths from the market of this date of --data (YYYY-MM-DD)."
    ),
) -> None:
    """Train, sample, score and backtest on the bundled S&P 500 data; write an HTML report."""
    began = time.perf_counter()
    result = run_pipeline(
        out,
        generator=generator,
        time_budget=time_budget,
        n_paths=paths,
        n_steps=steps,
        seed=seed,
        jobs=jobs,
        data=data,
        regimes=regimes,
        strategy=strategy,
        steps=train_steps,
        retrain=retrain,
        progress=progress,
        context=context,
        from_date=from_date,
        on_event=print_event,
    )
    report = result.report
    console.print(
        f"Demo finished in {time.perf_counter() - began:.0f} s. Report: [bold]{escape(str(report))}[/]", highlight=False
    )
    console.print(str(report.resolve()), highlight=False, soft_wrap=True)
