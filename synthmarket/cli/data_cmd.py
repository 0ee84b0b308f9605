"""``synthmarket data``: look at a data set before training on it."""

from __future__ import annotations

from enum import StrEnum

import typer
from rich.markup import escape
from rich.table import Table

from ..data import SAMPLES, load_data, sample_data
from ..data_summary import summarize
from .common import DATA_HELP, DATE_FORMAT_HELP, app, console

data_app = typer.Typer(help="Inspect OHLCV data: bundled sets or your own CSV/Parquet files.", no_args_is_help=True)
app.add_typer(data_app, name="data")


class MissingPolicy(StrEnum):
    error = "error"
    drop = "drop"
    ffill = "ffill"


@data_app.command("info")
def info(
    data: str = typer.Option("sp500", "--data", "-d", help=DATA_HELP),
    start: str = typer.Option(None, "--start", help="First date to keep (YYYY-MM-DD)."),
    end: str = typer.Option(None, "--end", help="Last date to keep (YYYY-MM-DD)."),
    missing: MissingPolicy = typer.Option(
        MissingPolicy.error, "--missing", help="Rows with missing values: stop with an error, drop them, or fill them."
    ),
    date_format: str = typer.Option(None, "--date-format", help=DATE_FORMAT_HELP),
) -> None:
    """Date range, bar count, calendar gaps, volume and daily log-return statistics."""
    bars = load_data(data, start=start, end=end, missing=missing.value, date_format=date_format)
    s = summarize(bars)
    table = Table(title=f"data: {escape(data)}", show_header=False)
    table.add_column("what", style="bold")
    table.add_column("value")
    table.add_row("date range", f"{s.start:%Y-%m-%d} to {s.end:%Y-%m-%d}")
    table.add_row("bars", str(s.n_bars))
    table.add_row("business days in range", str(s.n_business_days))
    table.add_row("business days with no bar", str(s.missing_business_days))
    if s.longest_gap is None:
        table.add_row("longest gap", "none")
    else:
        days, first, last = s.longest_gap
        span = f"{first:%Y-%m-%d}" if days == 1 else f"{first:%Y-%m-%d} to {last:%Y-%m-%d}"
        table.add_row("longest gap", f"{days} business day{'s' if days > 1 else ''} ({span})")
    table.add_row("volume", "yes" if s.has_volume else "no")
    if s.extra_columns:
        table.add_row("other columns", ", ".join(s.extra_columns))
    r = s.returns
    table.add_section()
    table.add_row("daily log returns", "")
    table.add_row("  mean", f"{r['mean']:.6f}")
    table.add_row("  std", f"{r['std']:.6f}")
    table.add_row("  annualised vol", f"{r['annualised_vol']:.2%}")
    table.add_row("  skew", f"{r['skew']:.3f}")
    table.add_row("  excess kurtosis", f"{r['excess_kurtosis']:.3f}")
    table.add_row("  min", f"{r['min']:.4f}")
    table.add_row("  max", f"{r['max']:.4f}")
    console.print(table)


@data_app.command("list")
def list_sets() -> None:
    """The bundled real data sets (use their names with --data)."""
    table = Table(title="bundled data sets")
    for column in ("name", "description", "bars", "volume"):
        table.add_column(column)
    for name, (description, _) in SAMPLES.items():
        bars = sample_data(name)
        table.add_row(name, description, str(len(bars)), "yes" if "volume" in bars.columns else "no")
    console.print(table)
