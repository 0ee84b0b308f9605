"""``synthmarket demo``: one command from the bundled data to an HTML report.

On the bundled S&P 500 bars it trains a generator (or reuses the model already in
``OUT/model`` when it was trained with the same settings), samples one-year paths, scores
the stylized facts, backtests a strategy on every path and on the last year of real data,
writes a run directory (see :mod:`synthmarket.runs`) and ``OUT/report.html``.
"""

from __future__ import annotations

import json
import time
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Iterator, Optional

import typer
from rich.markup import escape

from .. import __version__
from ..errors import ConfigError
from ..outdir import claim, replace_entries, scratch
from ..pages import build_report
from ..runs import BACKTEST_DIR, FACTS_DIR, REAL_FILE, REGIMES_FILE, REPORT_FILE, RUN_FILE, SCENARIOS_FILE, write_run
from .common import DATA_HELP, app, console

MODEL_DIR = "model"
#: The settings a cached model was trained with (compared before reusing it).
TRAINING_KEY_FILE = "demo-training.json"
#: What a demo writes into OUT besides the model (replaced when the demo runs again).
RUN_PARTS = (RUN_FILE, SCENARIOS_FILE, REAL_FILE, FACTS_DIR, REGIMES_FILE, BACKTEST_DIR, REPORT_FILE)
REAL_BARS = 252
REGIME_PATHS = 100


class _Steps:
    """Numbered, timed progress lines: ``[2/6] Training conv1d_cgan ... done in 12.3 s``."""

    def __init__(self, total: int) -> None:
        self.total, self.number = total, 0

    @contextmanager
    def __call__(self, title: str) -> Iterator[None]:
        self.number += 1
        console.print(f"[bold cyan][{self.number}/{self.total}][/] {title}", highlight=False)
        began = time.perf_counter()
        yield
        console.print(f"      done in {time.perf_counter() - began:.1f} s", style="dim", highlight=False)


def _training_key(generator: str, hparams: dict, fingerprint: str, seed: int, time_budget: str | None,
                  regimes: str | None, steps: int | None) -> dict:
    return {"generator": generator, "hyperparameters": hparams, "data_fingerprint": fingerprint, "seed": seed,
            "time_budget": time_budget, "regimes": regimes, "steps": steps, "synthmarket": __version__}


def _cached_model(model_dir: Path, key: dict):
    """The model in ``model_dir`` when it was trained with exactly ``key``, else None."""
    from ..errors import ModelFileError
    from ..generator import Generator

    file = model_dir / TRAINING_KEY_FILE
    if not file.is_file():
        return None
    try:
        if json.loads(file.read_text()) != json.loads(json.dumps(key)):
            return None
        return Generator.load(model_dir)
    except (json.JSONDecodeError, UnicodeDecodeError, ModelFileError):
        return None


def run_demo(
    out: Path,
    *,
    generator: str = "conv1d_cgan",
    time_budget: str | None = "3m",
    n_paths: int = 500,
    n_steps: int = 252,
    seed: int = 0,
    jobs: int = -1,
    data: str = "sp500",
    regimes: str | None = None,
    strategy: str = "sma_cross",
    steps: int | None = None,
    hparams: dict | None = None,
    retrain: bool = False,
    progress: bool = True,
) -> Path:
    """Run the whole demo into ``out`` and return the report's path (see the module docstring)."""
    from .. import api
    from ..data import fingerprint, load_data
    from ..facts import scorecard
    from ..montecarlo import run_montecarlo
    from ..executor import resolve_jobs
    from ..montecarlo.strategy import resolve_strategy
    from ..training import TrainConfig, parse_duration

    if out.exists() and not out.is_dir():
        raise ConfigError(f"--out {str(out)!r} is a file; give a directory for the demo's run.")
    # every option is checked before minutes of training
    parse_duration(time_budget)
    gen_cls = api.generator_class(generator)
    hparams = dict(hparams or {})
    gen_cls(**hparams)
    TrainConfig(steps=steps, seed=seed)
    resolve_strategy(strategy)
    resolve_jobs(jobs)
    with ExitStack() as stack:
        stack.enter_context(claim(out))  # one demo per --out
        started = time.perf_counter()
        step = _Steps(7 if regimes else 6)

        with step(f"Loading the {data} bars"):
            bars = load_data(data)
            real_last_year = bars.iloc[-REAL_BARS:]
            console.print(f"      {len(bars):,} bars, {bars.index[0]:%Y-%m-%d} to {bars.index[-1]:%Y-%m-%d}", highlight=False)

        model_dir = out / MODEL_DIR
        key = _training_key(gen_cls.name, {**gen_cls.defaults, **hparams}, fingerprint(bars), seed, time_budget, regimes, steps)
        model = None if retrain else _cached_model(model_dir, key)
        if model is not None:
            with step(f"Reusing the {gen_cls.name} model in {model_dir} (same settings; --retrain trains afresh)"):
                pass
        else:
            budget = f"at most {time_budget}" if time_budget else "its default length"
            with step(f"Training {gen_cls.name} on {len(bars):,} bars ({budget}) into {model_dir}"):
                (model_dir / TRAINING_KEY_FILE).unlink(missing_ok=True)
                model = api.train(gen_cls, bars, regimes=regimes, time_budget=time_budget, seed=seed, out=model_dir,
                                  steps=steps, progress=progress, **hparams)
                (model_dir / TRAINING_KEY_FILE).write_text(json.dumps(key, indent=2))
        if model.report is not None:
            console.print(f"      {model.report.summary()}", highlight=False)

        # the new run's parts are written aside and replace the old ones only once all are complete
        staging = stack.enter_context(scratch(out, ".demo"))
        staging.mkdir()
        with step(f"Sampling {n_paths:,} paths of {n_steps} bars"):
            paths = api.generate(model, n_paths, n_steps, seed=seed)

        with step("Scoring the stylized facts against the real returns"):
            card = scorecard(bars, paths, seed=seed)
            console.print(f"      {card.summary()}", highlight=False)

        comparison = None
        if regimes:
            with step(f"Comparing the {', '.join(model.scheme.names)} regimes ({REGIME_PATHS} paths each)"):
                comparison = api.regime_comparison(model, bars, n_paths=REGIME_PATHS, n_steps=n_steps, seed=seed)

        config = {
            "title": "synthmarket demo",
            "subtitle": f"{gen_cls.name} trained on {data} {bars.index[0]:%Y-%m-%d}..{bars.index[-1]:%Y-%m-%d}; "
                        f"{n_paths} paths x {n_steps} bars; {strategy} backtested on every path",
            "generator": gen_cls.name,
            "model": str(model_dir),
            "hyperparameters": model.hparams,
            "data": data,
            "data_range": f"{bars.index[0]:%Y-%m-%d}..{bars.index[-1]:%Y-%m-%d}",
            "real_backtest_range": f"{real_last_year.index[0]:%Y-%m-%d}..{real_last_year.index[-1]:%Y-%m-%d}",
            "regimes": regimes,
            "training": None if model.report is None else model.report.summary(),
            "time_budget": time_budget,
            "n_paths": n_paths,
            "n_steps": n_steps,
            "seed": seed,
            "strategy": strategy,
            "jobs": jobs,
        }
        write_run(staging, config=config, paths=paths, real=bars, card=card, regimes=comparison)

        with step(f"Backtesting {strategy} on {n_paths:,} paths and on the real year "
                  f"{real_last_year.index[0]:%Y-%m-%d}..{real_last_year.index[-1]:%Y-%m-%d}"):
            result = run_montecarlo(strategy, paths, real=real_last_year, jobs=jobs, out=staging / BACKTEST_DIR, progress=progress)
            sharpe = result.summary.metrics.loc["sharpe"]
            console.print(f"      median Sharpe {sharpe['p50']:.2f} (5-95%: {sharpe['p5']:.2f} to {sharpe['p95']:.2f}); "
                          f"real year {sharpe['real']:.2f}", highlight=False)

        with step("Writing the report"):
            config["seconds"] = round(time.perf_counter() - started, 1)
            (staging / RUN_FILE).write_text(json.dumps({**json.loads((staging / RUN_FILE).read_text()), **config}, indent=2))
            build_report(staging, staging / REPORT_FILE)
        replace_entries(out, staging, RUN_PARTS)
        return out / REPORT_FILE


@app.command()
def demo(
    out: Path = typer.Option(Path("synthmarket-demo"), "--out", "-o", help="Run directory to write (model/, report.html, ...)."),
    generator: str = typer.Option("conv1d_cgan", "--generator", "-g", help="Generator to train (see `synthmarket plugins`)."),
    time_budget: Optional[str] = typer.Option("3m", "--time-budget", help="Longest training time, e.g. 90s, 3m."),
    paths: int = typer.Option(500, "--paths", "-n", min=1, help="Synthetic paths to sample."),
    steps: int = typer.Option(252, "--steps", "-s", min=100, help="Bars per path (252: one trading year)."),
    seed: int = typer.Option(0, "--seed", help="Seed of the training, the sampling and the scores."),
    jobs: int = typer.Option(-1, "--jobs", "-j", help="Backtest worker processes (-1: every core)."),
    regimes: Optional[str] = typer.Option(None, "--regimes", help="Train on regimes (volatility, trend) and compare them."),
    strategy: str = typer.Option("sma_cross", "--strategy", help="Strategy to backtest (see `synthmarket strategies`)."),
    data: str = typer.Option("sp500", "--data", "-d", help=DATA_HELP),
    train_steps: Optional[int] = typer.Option(None, "--train-steps", help="Training length in steps (default: the model's)."),
    retrain: bool = typer.Option(False, "--retrain", help="Train afresh even when OUT/model matches these settings."),
    progress: bool = typer.Option(True, "--progress/--no-progress", help="Show progress bars."),
) -> None:
    """Train, sample, score and backtest on the bundled S&P 500 data; write an HTML report."""
    began = time.perf_counter()
    report = run_demo(
        out, generator=generator, time_budget=time_budget, n_paths=paths, n_steps=steps, seed=seed, jobs=jobs,
        data=data, regimes=regimes, strategy=strategy, steps=train_steps, retrain=retrain, progress=progress,
    )
    console.print(f"Demo finished in {time.perf_counter() - began:.0f} s. Report: [bold]{escape(str(report))}[/]", highlight=False)
    console.print(str(report.resolve()), highlight=False, soft_wrap=True)
