"""``synthmarket calibrate``: the walk-forward calibration test of a model, on a period it never saw.

The work is :func:`synthmarket.calibration.walkforward.calibrate`; this command parses the
options, shows the progress and prints one table per horizon.
"""

from __future__ import annotations

from pathlib import Path

import typer
from rich import box
from rich.markup import escape
from rich.table import Table

from ..errors import ConfigError
from .common import DATA_HELP, DATE_FORMAT_HELP, app, console


@app.command()
def calibrate(
    model: Path = typer.Option(..., "--model", "-m", help="A model directory, as `synthmarket train --out` writes."),
    data: str = typer.Option(..., "--data", help=f"The real history to walk forward over. {DATA_HELP}"),
    start: str = typer.Option(..., "--from", help="First origin (YYYY-MM-DD), after the model's training data."),
    end: str = typer.Option(..., "--to", help="Last origin (YYYY-MM-DD)."),
    horizons: str = typer.Option("1,5,20", "--horizons", help="Bars ahead, comma-separated."),
    paths: int = typer.Option(1000, "--paths", "-n", help="Paths sampled at each origin."),
    stride: int = typer.Option(1, "--stride", help="Use every k-th trading day as an origin."),
    seed: int = typer.Option(0, "--seed", help="Seed of the sampling (with each origin's date)."),
    jobs: int = typer.Option(1, "--jobs", "-j", help="Worker processes (-1: every core)."),
    backend: str = typer.Option("local", "--backend", help="local (processes on this machine) or ray."),
    ray_address: str | None = typer.Option(None, "--ray-address", help="A running Ray cluster."),
    resume: bool = typer.Option(False, "--resume", help="Continue the calibration in --out, skipping origins done."),
    out: Path = typer.Option(..., "--out", "-o", help="Output directory (samples.npz, scores.csv, summary.json)."),
    date_format: str | None = typer.Option(None, "--date-format", help=DATE_FORMAT_HELP),
    progress: bool = typer.Option(True, "--progress/--no-progress", help="Show progress while it runs."),
) -> None:
    """Walk forward over a period the model never saw: sample from each day's market, score the outcome.

    Prints, per horizon, the VaR hit rates at 1% and 5% with Kupiec's and Christoffersen's
    p-values, the expected-shortfall test, the mean CRPS and how predicted volatility follows
    the realised.
    """
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    from ..calibration.walkforward import calibrate as run
    from ..data import load_data

    try:
        steps = [int(h) for h in horizons.split(",") if h.strip()]
    except ValueError:
        raise ConfigError(f"--horizons takes whole numbers separated by commas (1,5,20); got {horizons!r}.") from None
    bars = load_data(data, date_format=date_format)
    bar = Progress(
        TextColumn("calibrating"), BarColumn(), MofNCompleteColumn(), TextColumn("origins"), TimeRemainingColumn(),
        console=console, transient=True, disable=not progress,
    )  # fmt: skip
    with bar:
        task = bar.add_task("origins", total=None)
        result = run(
            model, bars, start=start, end=end, horizons=steps, n_paths=paths, stride=stride, seed=seed, out=out,
            resume=resume, jobs=jobs, backend=backend, ray_address=ray_address,
            progress=lambda n: bar.advance(task, n),
        )  # fmt: skip
    print_summary(result.summary)
    console.print(f"Wrote {escape(str(out))} (samples.npz, scores.csv, summary.json).", highlight=False)


def print_summary(summary: dict) -> None:
    """One table per horizon: VaR backtests at each level, then the distribution scores."""
    console.print(
        f"{summary['generator']}: {summary['n_origins']} origins, {summary['first_origin']}..{summary['last_origin']}",
        highlight=False,
    )
    for horizon, scores in summary["horizons"].items():
        table = Table(
            title=f"horizon {horizon}: {scores['n']} origins {scores['origins_apart']} bars apart",
            title_justify="left",
            box=box.SIMPLE_HEAD,
            show_edge=False,
        )
        for column in ("VaR level", "expected", "hits", "Kupiec p", "Christoffersen p", "ES Z2", "ES p"):
            table.add_column(column, justify="right")
        for level, var in scores["levels"].items():
            table.add_row(
                level, f"{var['expected_hits']:.1f}", str(var["hits"]), _p(var["kupiec_p"]), _p(var["ind_p"]),
                f"{var['es_z2']:.2f}", _p(var["es_p"]),
            )  # fmt: skip
        console.print(table)
        console.print(
            f"  every origin ({scores['n_scored']}): mean PIT {scores['pit_mean']:.3f} | mean CRPS "
            f"{scores['crps_mean']:.5f} | predicted vs realised volatility: Pearson {_p(scores['vol_pearson'])}, "
            f"Spearman {_p(scores['vol_spearman'])}",
            highlight=False,
        )


def _p(value) -> str:
    return "-" if value is None else f"{value:.3f}"
