"""``synthmarket backtest``: one strategy over many paths (and the real history), in parallel.

Paths come from a scenario file (``--scenarios``, as ``synthmarket generate`` writes) or are
sampled from a model directory on the fly (``--model --paths --steps``). Results go to
``OUT/results.parquet`` (appended as batches finish; ``--resume`` continues a killed run)
and ``OUT/summary.json``; the summary table is printed.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich import box
from rich.markup import escape
from rich.table import Table

from ..errors import ConfigError
from .common import DATA_HELP, DATE_FORMAT_HELP, app, console

if TYPE_CHECKING:
    from ..montecarlo import MonteCarloResult

PERCENT_METRICS = ("total_return", "cagr", "volatility", "max_drawdown", "win_rate", "exposure")
SHOWN = ("p5", "p25", "p50", "p75", "p95", "real", "real_rank")


@app.command()
def backtest(
    strategy: str = typer.Option(
        ...,
        "--strategy",
        "-s",
        help="A strategy name (see `synthmarket strategies`), package.module:Class or path/to/file.py:Class.",
    ),
    param: list[str] = typer.Option([], "--param", "-p", help="A strategy parameter, key=value (repeatable)."),
    scenarios: Path | None = typer.Option(None, "--scenarios", help="A scenario file from `synthmarket generate`."),
    model: Path | None = typer.Option(None, "--model", help="A model directory to sample paths from."),
    paths: int | None = typer.Option(None, "--paths", help="With --model: how many paths."),
    steps: int | None = typer.Option(None, "--steps", help="With --model: bars per path."),
    regime: str | None = typer.Option(None, "--regime", help="With --model: sample in this regime."),
    seed: int = typer.Option(0, "--seed", help="With --model: seed of the sampled paths."),
    context: str = typer.Option(
        "last", "--context", help="With --model: last (start from the market at the end of its training data) or none."
    ),
    from_date: str | None = typer.Option(
        None, "--from", help="With --model: start the paths from the market of this date of --data (YYYY-MM-DD)."
    ),
    data: str | None = typer.Option(None, "--data", help=f"The real history to compare with. {DATA_HELP}"),
    start: str | None = typer.Option(None, "--start", help="First date of the real history (YYYY-MM-DD)."),
    end: str | None = typer.Option(None, "--end", help="Last date of the real history (YYYY-MM-DD)."),
    cash: float = typer.Option(100_000.0, "--cash", help="Starting cash of every path."),
    commission: float | None = typer.Option(
        None,
        "--commission",
        help="Commission: a fraction of traded value for the percent scheme (default 0.001), else an amount "
        "per share, order or contract (default 0).",
    ),
    commission_scheme: str = typer.Option(
        "percent",
        "--commission-scheme",
        help="percent, per-share, per-order, futures:margin=M[,mult=K], or your CommInfoBase as file.py:Class[:key=value,...].",
    ),
    slippage: float = typer.Option(0.0, "--slippage", help="Slippage, a fraction of the price."),
    slippage_fixed: float = typer.Option(0.0, "--slippage-fixed", help="Slippage, an amount of price."),
    sizer: str | None = typer.Option(
        None,
        "--sizer",
        help="A backtrader sizer by class name with its parameters (PercentSizer:percents=20), or file.py:Class.",
    ),
    cheat_on_open: bool = typer.Option(
        False, "--cheat-on-open", help="As bt.Cerebro(cheat_on_open=True): next_open runs."
    ),
    cheat_on_close: bool = typer.Option(
        False, "--cheat-on-close", help="As broker.set_coc(True): fill at this bar's close."
    ),
    resample: list[str] = typer.Option(
        [],
        "--resample",
        help="weekly or monthly: adds the path resampled so as data1, data2, ... (repeatable, in order).",
    ),
    analyzer: list[str] = typer.Option(
        [], "--analyzer", help="A backtrader analyzer (SQN, SharpeRatio:timeframe=...) or file.py:Class (repeatable)."
    ),
    setup: str | None = typer.Option(
        None, "--setup", help="file.py:function called as function(cerebro) on each path, for anything else."
    ),
    max_failures: str = typer.Option(
        "0%", "--max-failures", help="Failed paths allowed, a count or a share (5%); more exit with status 2."
    ),
    show_output: bool = typer.Option(
        False, "--show-output", help="Also print what the strategy prints, each line prefixed with its path."
    ),
    jobs: int = typer.Option(-1, "--jobs", "-j", help="Worker processes (-1: every core; 1: no extra process)."),
    backend: str = typer.Option("local", "--backend", help="local (processes on this machine) or ray."),
    ray_address: str | None = typer.Option(
        None, "--ray-address", help="A running Ray cluster (default: start a local one)."
    ),
    batch_size: int | None = typer.Option(None, "--batch-size", help="Paths per task (default: automatic)."),
    resume: bool = typer.Option(False, "--resume", help="Continue the run in --out, skipping the paths done."),
    fail_fast: bool = typer.Option(False, "--fail-fast", help="Stop at the first path that raises."),
    out: Path = typer.Option(..., "--out", "-o", help="Output directory (results.parquet, summary.json)."),
    date_format: str | None = typer.Option(None, "--date-format", help=DATE_FORMAT_HELP),
    progress: bool = typer.Option(True, "--progress/--no-progress", help="Show progress while it runs."),
) -> None:
    """Backtest a strategy on every synthetic path and on the real history; print the distribution."""
    from ..executor import start_workers_early
    from ..montecarlo import WORKER_MODULES

    # Their imports overlap ours; each worker runs the console script again, which then finds
    # synthmarket.cli imported.
    start_workers_early(jobs, backend, ("synthmarket.cli", *WORKER_MODULES))
    from ..data import load_data
    from ..montecarlo import RESULTS_FILE, SUMMARY_FILE, TooManyFailures, parse_param_items, run_montecarlo

    standing = _standing(model, context, from_date, data, date_format)
    source = _scenarios(scenarios, model, paths, steps, regime, seed, standing)
    real = load_data(data, start=start, end=end, date_format=date_format) if data is not None else None
    if data is None and (start or end):
        raise ConfigError("--start and --end cut the real history; give it with --data.")
    try:
        result = run_montecarlo(
            strategy,
            source,
            params=parse_param_items(param),
            cash=cash,
            commission=commission,
            commission_scheme=commission_scheme,
            slippage=slippage,
            slippage_fixed=slippage_fixed,
            sizer=sizer,
            cheat_on_open=cheat_on_open,
            cheat_on_close=cheat_on_close,
            resample=resample,
            analyzers=analyzer,
            setup=setup,
            jobs=jobs,
            backend=backend,
            ray_address=ray_address,
            real=real,
            out=out,
            resume=resume,
            fail_fast=fail_fast,
            max_failures=max_failures,
            show_output=show_output,
            batch_size=batch_size,
            progress=progress,
        )
    except TooManyFailures as failed:
        print_summary(failed.result)
        raise
    print_summary(result)
    logs = " Each path's output is in logs/." if (out / "logs").is_dir() else ""
    console.print(
        f"Wrote {escape(str(out / RESULTS_FILE))} and {escape(str(out / SUMMARY_FILE))} in {result.seconds:.1f} s.{logs}",
        highlight=False,
    )


def _scenarios(scenarios, model, n_paths, steps, regime, seed, context):
    sampling = {"--model": model, "--paths": n_paths, "--steps": steps, "--regime": regime}
    if scenarios is not None:
        given = [name for name, value in sampling.items() if value is not None]
        if given:
            raise ConfigError(f"Give --scenarios, or --model with --paths and --steps; not both ({', '.join(given)}).")
        from ..paths import Paths

        return Paths.load(scenarios)
    if model is None:
        raise ConfigError("Say which paths to test: --scenarios FILE, or --model DIR --paths N --steps S.")
    missing = [name for name in ("--paths", "--steps") if sampling[name] is None]
    if missing:
        raise ConfigError(f"--model needs {' and '.join(missing)} (how many paths, and bars per path).")
    from ..generator import Generator
    from ..montecarlo import GeneratedScenarios

    return GeneratedScenarios(Generator.load(model), n_paths, steps, regime=regime, seed=seed, context=context)


def _standing(model, context: str, from_date: str | None, data: str | None, date_format: str | None):
    """Where sampled paths start: --context, or with --from the bars of --data up to that date."""
    from ..context import chosen_context

    if model is None and (from_date is not None or context != "last"):
        raise ConfigError("--from and --context choose where sampled paths start; they go with --model.")
    return chosen_context(context, from_date, data if from_date is not None else None, date_format=date_format)


def print_summary(result: MonteCarloResult) -> None:
    """The summary as a rich table: percentiles of each metric and the real history's rank."""
    summary = result.summary
    params = ", ".join(f"{k}={v}" for k, v in result.params.items()) or "default parameters"
    table = _table(f"{result.strategy} ({params}) on {summary.n_paths} paths")
    for column in SHOWN:
        table.add_column("rank %" if column == "real_rank" else column, justify="right", no_wrap=True, min_width=6)
    for metric, row in summary.metrics.iterrows():
        table.add_row(metric, *(_cell(metric, column, row[column]) for column in SHOWN))
    console.print(table)
    tail = f"{summary.alpha:.0%}"
    console.print(
        f"P(loss) {_percent(summary.prob_loss)} | expected shortfall ({tail} worst paths): return "
        f"{_percent(summary.es_return)}, max drawdown {_percent(summary.es_drawdown)} | failed paths: "
        f"{summary.n_failed}",
        highlight=False,
    )
    if summary.n_failed:
        _print_failures(summary)


def _print_failures(summary) -> None:
    """The most common errors, and the distribution counting failed paths at their last value."""
    from ..montecarlo.failures import SURVIVORS_WARNING, error_line

    console.print(
        f"[yellow]{summary.n_failed} of {summary.n_paths} paths failed.[/] Most common errors:", highlight=False
    )
    for item in summary.common_errors:
        console.print(f"  {escape(error_line(*item))}", highlight=False)
    table = _table("Counting failed paths at their value when they failed")
    for column in SHOWN[:5]:
        table.add_column(column, justify="right", no_wrap=True, min_width=6)
    for metric in ("final_value", "total_return", "max_drawdown"):
        row = summary.with_failed.loc[metric]
        table.add_row(metric, *(_cell(metric, column, row[column]) for column in SHOWN[:5]))
    console.print(table)
    console.print(
        f"P(loss) counting them: {_percent(summary.prob_loss_with_failed)}. {SURVIVORS_WARNING}", highlight=False
    )


def _table(title: str) -> Table:
    """A summary table with its first column, ``metric``."""
    table = Table(
        title=title, title_justify="left", box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False, padding=(0, 1)
    )
    table.add_column("metric", no_wrap=True)
    return table


def _cell(metric: str, column: str, value: float) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    if column == "real_rank":
        return f"{value:.0f}"
    if metric in PERCENT_METRICS:
        return _percent(value)
    if abs(value) >= 1e6:
        return f"{value / 1e6:.2f}M"
    if abs(value) >= 1e4:
        return f"{value / 1e3:.1f}k"
    if abs(value) < 100:
        return f"{value:.2f}".rstrip("0").rstrip(".")  # at most 6 characters, so that 8 columns fit 80
    return f"{value:,.0f}"


def _percent(value: float) -> str:
    return "-" if value is None or math.isnan(value) else f"{100 * value:.1f}%"
