"""``synthmarket generate``: sample OHLCV paths from a trained model, streamed to a file.

The writing is :func:`synthmarket.scenario_files.generate_file` (``--chunk-size`` paths at a
time, under a temporary name until complete); this command parses the options, shows the
progress and prints what it wrote.
"""

from __future__ import annotations

import time
from pathlib import Path

import typer
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from ..context import chosen_context, describe
from ..errors import ConfigError
from ..generator import DEFAULT_CHUNK, Generator
from ..regimes import parse_schedule
from ..scenario_files import check_output, generate_file
from .common import DATA_HELP, DATE_FORMAT_HELP, app, console


def resolve_steps(model: Generator, steps: int | None, schedule: str | None) -> int:
    """``--steps``, or the length of ``--schedule`` when no steps are given."""
    if steps is not None:
        return steps
    if schedule is None:
        raise ConfigError("Say how long each path is: give --steps N (or a --schedule, whose length is used).")
    if model.scheme is None:
        model.regime_labels(1, schedule=schedule)  # raises the model's own "trained without regimes" error
    return len(parse_schedule(schedule, model.scheme.names))


@app.command()
def generate(
    model: Path = typer.Option(..., "--model", "-m", help="A model directory, as `synthmarket train --out` writes."),
    paths: int = typer.Option(..., "--paths", "-n", min=1, help="Number of paths to sample."),
    steps: int = typer.Option(None, "--steps", "-s", min=1, help="Bars per path; default: the --schedule's length."),
    regime: str = typer.Option(None, "--regime", "-r", help="Sample every step in this regime (conditional models)."),
    schedule: str = typer.Option(
        None, "--schedule", help="A regime per stretch of steps, e.g. 'calm:200,turbulent:40,calm:12'."
    ),
    seed: int = typer.Option(0, "--seed", help="Random seed: the same seed (and chunk size) gives the same file."),
    start_date: str = typer.Option(
        None,
        "--start-date",
        help="Date of the first bar (YYYY-MM-DD); default: the business day after the training data.",
    ),
    context: str = typer.Option(
        "last",
        "--context",
        help="last: start from the market's state at the end of the training data (garch, fhs); none: unconditional.",
    ),
    from_date: str = typer.Option(
        None, "--from", help="Start from the market on this date of --data (YYYY-MM-DD): its state, close and date."
    ),
    data: str = typer.Option(None, "--data", help=f"With --from: the history the scenario stands on. {DATA_HELP}"),
    date_format: str = typer.Option(None, "--date-format", help=DATE_FORMAT_HELP),
    chunk_size: int = typer.Option(
        DEFAULT_CHUNK, "--chunk-size", min=1, help="Paths sampled and written at a time (bounds memory)."
    ),
    out: Path = typer.Option(..., "--out", "-o", help="Output file: .parquet or .csv, long format."),
    force: bool = typer.Option(False, "--force", help="Replace --out if it exists."),
    progress: bool = typer.Option(True, "--progress/--no-progress", help="Show progress while it runs."),
) -> None:
    """Sample synthetic OHLCV paths from a trained model into a Parquet or CSV file.

    The file has one row per bar: path, date, open, high, low, close, volume.
    """
    check_output(out, force)
    generator = Generator.load(model)
    start_from = chosen_context(context, from_date, data, date_format=date_format)
    n_steps = resolve_steps(generator, steps, schedule)
    began = time.perf_counter()
    progress = Progress(
        TextColumn("sampling"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("paths"),
        TimeRemainingColumn(),
        console=console,
        transient=True,
        disable=not progress or paths <= chunk_size,
    )
    with progress:
        task = progress.add_task("sampling", total=paths)
        generate_file(
            generator,
            out,
            paths,
            n_steps,
            regime=regime,
            schedule=schedule,
            seed=seed,
            start=start_date,
            chunk_size=chunk_size,
            force=force,
            on_chunk=lambda n: progress.advance(task, n),
            context=start_from,
        )
    seconds = time.perf_counter() - began
    console.print(
        f"Wrote {paths:,} paths x {n_steps:,} bars ({paths * n_steps:,} rows) from {generator.name} to {escape(str(out))} "
        f"in {seconds:.1f}s, {describe(generator, start_from)}.",
        highlight=False,
    )
