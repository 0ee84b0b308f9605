"""``synthmarket facts``: the stylized-facts scorecard of synthetic paths against real data."""

from __future__ import annotations

import math
from contextlib import nullcontext
from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich.markup import escape
from rich.table import Table

from ..data import load_data
from ..errors import ConfigError
from ..outdir import claim, replace_entries, scratch
from ..paths import Paths
from .common import DATA_HELP, DATE_FORMAT_HELP, app, console

if TYPE_CHECKING:
    from ..facts import Scorecard

VERDICT_STYLE = {"pass": "green", "FAIL": "bold red", "n/a": "dim"}


def _number(value) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "-"
    return f"{value:.3g}"


def _synthetic(scenarios: Path | None, model: Path | None, n_paths: int, steps: int, seed: int) -> Paths:
    if (scenarios is None) == (model is None):
        raise ConfigError(
            "Give exactly one source of paths: --scenarios FILE (as `synthmarket generate` writes) "
            "or --model DIR (a trained model to sample from)."
        )
    if scenarios is not None:
        return Paths.load(scenarios)
    from ..generator import Generator

    with console.status(f"Sampling {n_paths} paths x {steps} steps from {model} ..."):
        return Generator.load(model).sample_paths(n_paths, steps, seed=seed)


def _print(card: Scorecard) -> None:
    table = Table(title="Stylized facts: real value; synthetic median and 5-95% band over paths")
    table.add_column("fact / statistic")
    for column in ("real", "median", "5%", "95%"):
        table.add_column(column, justify="right", no_wrap=True, min_width=9)
    previous = None
    for row in card.table.itertuples(index=False):
        if row.fact != previous:
            if previous is not None:
                table.add_section()
            style = VERDICT_STYLE[row.verdict]
            table.add_row(f"[bold]{row.fact}[/]  [{style}]{row.verdict}[/]", "", "", "", "")
            previous = row.fact
        table.add_row(f"  {row.statistic}", *(_number(v) for v in (row.real, row.median, row.p5, row.p95)))
    console.print(table)

    rules = Table(title="Pass rules")
    rules.add_column("fact")
    rules.add_column("verdict")
    rules.add_column("holds on real")
    rules.add_column("on real windows")
    rules.add_column("rule")
    for row in card.verdicts.itertuples(index=False):
        rules.add_row(row.fact, f"[{VERDICT_STYLE[row.verdict]}]{row.verdict}[/]", row[2], row[3], row.rule)
    console.print(rules)

    distances = Table(title="Distances and scores")
    distances.add_column("measure")
    distances.add_column("value", justify="right")
    for key, value in card.distances.items():
        distances.add_row(key, _number(value))
    console.print(distances)
    for note in card.notes:
        console.print(f"[yellow]Note:[/] {escape(note)}", highlight=False)
    colour = "green" if card.passed else "red"
    console.print(f"[bold {colour}]{'PASS' if card.passed else 'FAIL'}[/]: {card.summary()}", highlight=False)


def write_outputs(card: Scorecard, out: Path) -> list[Path]:
    """Write the scorecard files (see :func:`synthmarket.runs.write_facts`) into ``out``: aside
    first, then in place of the old ones once all are written."""
    if out.exists() and not out.is_dir():
        raise ConfigError(f"--out {str(out)!r} is a file; give a directory (it is created if missing).")
    from ..runs import write_facts

    with scratch(out, ".facts") as staging:
        write_facts(card, staging)
        names = sorted(file.name for file in staging.iterdir())
        replace_entries(out, staging, names)
    return [out / name for name in names]


def _enough_steps(steps: int) -> int:
    from ..facts import MIN_STEPS

    if steps < MIN_STEPS:
        raise typer.BadParameter(f"{steps} is too short for the stylized facts; give at least {MIN_STEPS} steps.")
    return steps


@app.command()
def facts(
    scenarios: Path = typer.Option(
        None, "--scenarios", help="Paths to judge: a .parquet/.csv file from `synthmarket generate`."
    ),
    model: Path = typer.Option(None, "--model", "-m", help="Or a trained model directory to sample paths from."),
    n_paths: int = typer.Option(1000, "--paths", "-n", min=1, help="With --model: number of paths to sample."),
    steps: int = typer.Option(
        1000, "--steps", "-s", callback=_enough_steps, help="With --model: bars per sampled path."
    ),
    seed: int = typer.Option(0, "--seed", help="Seed of the sampling, subsamples and classifier scores."),
    data: str = typer.Option("sp500", "--data", "-d", help=DATA_HELP + " The real data to compare with."),
    start: str = typer.Option(None, "--start", help="First real date to keep (YYYY-MM-DD)."),
    end: str = typer.Option(None, "--end", help="Last real date to keep (YYYY-MM-DD)."),
    fact: list[str] = typer.Option(None, "--fact", "-f", help="Only this fact (repeat for several); default all."),
    score: list[str] = typer.Option(
        None, "--score", help="Only this window score: memorisation, discriminative or predictive (repeatable)."
    ),
    no_scores: bool = typer.Option(False, "--no-scores", help="Skip the window scores (classifiers, memorisation)."),
    out: Path = typer.Option(
        None, "--out", "-o", help="Directory for scorecard.md, .csv, .png, verdicts.csv and distances.json."
    ),
    strict: bool = typer.Option(False, "--strict", help="Exit with status 1 when a stylized fact fails."),
    date_format: str = typer.Option(None, "--date-format", help=DATE_FORMAT_HELP),
    progress: bool = typer.Option(True, "--progress/--no-progress", help="Show progress while it runs."),
) -> None:
    """Score synthetic paths on the stylized facts of real returns (statsmodels tests, distances)."""
    from ..facts import scorecard

    with claim(out) if out is not None else nullcontext():
        real = load_data(data, start=start, end=end, date_format=date_format)
        synthetic = _synthetic(scenarios, model, n_paths, steps, seed)
        status = console.status(f"Scoring {synthetic.n_paths} paths x {synthetic.n_steps} steps ...")
        with status if progress else nullcontext():
            card = scorecard(
                real, synthetic, facts=fact or None, scores=False if no_scores else (score or True), seed=seed
            )
        _print(card)
        if out is not None:
            for file in write_outputs(card, out):
                console.print(f"Wrote {escape(str(file))}", highlight=False)
    if strict and not card.passed:
        raise typer.Exit(1)
