"""The end-to-end pipeline: data -> model -> paths -> scorecard -> backtest -> run directory and report.

:func:`run_pipeline` is what ``synthmarket demo`` runs and what ``sm.run_pipeline`` exposes. On
a data set it trains a generator (or reuses the model already in ``OUT/model`` when it was
trained with the same settings), samples paths, scores the stylized facts, compares the
regimes (when trained on regimes), backtests a strategy on every path and on the last year of
real data, writes a run directory (see :mod:`synthmarket.runs`) and ``OUT/report.html``.

Each step is a named function below. The run's parts are written aside, in a scratch
directory of ``OUT``, and replace the previous run's parts only once all are complete, so a
failed or interrupted run never destroys the last good one; one run at a time writes an
``OUT`` (:func:`synthmarket.outdir.claim`).

The pipeline prints nothing: it reports its progress as :class:`StepStarted`,
:class:`StepDone` and :class:`Note` events to ``on_event`` (``str(event)`` is a readable line,
so ``on_event=print`` shows the same lines as the command).
"""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from . import __version__
from .errors import ConfigError
from .outdir import claim, replace_entries, scratch
from .runs import BACKTEST_DIR, FACTS_DIR, REAL_FILE, REGIMES_FILE, REPORT_FILE, RUN_FILE, SCENARIOS_FILE, write_run

if TYPE_CHECKING:
    import pandas as pd

    from .facts import Scorecard
    from .generator import Generator
    from .montecarlo import MonteCarloResult
    from .paths import Paths

MODEL_DIR = "model"
#: The settings a cached model was trained with (compared before reusing it).
TRAINING_KEY_FILE = "demo-training.json"
#: What a run writes into OUT besides the model (replaced when it runs again).
RUN_PARTS = (RUN_FILE, SCENARIOS_FILE, REAL_FILE, FACTS_DIR, REGIMES_FILE, BACKTEST_DIR, REPORT_FILE)
#: Bars of real history the strategy is also backtested on (one trading year).
REAL_BARS = 252
#: Paths sampled per regime for the regime comparison.
REGIME_PATHS = 100


# -- settings, result and events -----------------------------------------------------------------
@dataclass(frozen=True)
class PipelineSettings:
    """What a pipeline run is asked to do (the options of ``synthmarket demo``)."""

    generator: str = "conv1d_cgan"
    time_budget: str | None = "3m"
    n_paths: int = 500
    n_steps: int = 252
    seed: int = 0
    jobs: int = -1
    data: str = "sp500"
    regimes: str | None = None
    strategy: str = "sma_cross"
    #: Training length in optimiser steps (None: the model's default).
    steps: int | None = None
    hparams: dict = field(default_factory=dict)
    #: Train afresh even when ``OUT/model`` was trained with the same settings.
    retrain: bool = False
    #: Progress bars of the training and the backtest (on stderr).
    progress: bool = True
    #: Where the paths start: "last" (the market at the end of the data) or "none" (unconditional).
    context: str = "last"
    #: Start the paths from the market of this date of ``data`` instead (YYYY-MM-DD).
    from_date: str | None = None

    @classmethod
    def of(cls, settings: PipelineSettings | None = None, **options: Any) -> PipelineSettings:
        """``settings`` (default: the defaults) with ``options`` replacing fields by name."""
        names = [f.name for f in dataclasses.fields(cls)]
        unknown = sorted(set(options) - set(names))
        if unknown:
            raise ConfigError(f"Unknown pipeline option {', '.join(map(repr, unknown))}; known: {', '.join(names)}.")
        if "hparams" in options:
            options["hparams"] = dict(options["hparams"] or {})
        return dataclasses.replace(settings or cls(), **options)


@dataclass
class PipelineResult:
    """What :func:`run_pipeline` made; the files are in ``out``."""

    out: Path
    report: Path
    model: Generator
    #: Whether the model in ``out/model`` was reused rather than trained.
    reused_model: bool
    paths: Paths
    card: Scorecard
    regimes: pd.DataFrame | None
    backtest: MonteCarloResult
    #: The configuration written to ``run.json``.
    config: dict
    seconds: float


@dataclass(frozen=True)
class StepStarted:
    number: int
    total: int
    title: str

    def __str__(self) -> str:
        return f"[{self.number}/{self.total}] {self.title}"


@dataclass(frozen=True)
class StepDone:
    number: int
    total: int
    title: str
    seconds: float

    def __str__(self) -> str:
        return f"      done in {self.seconds:.1f} s"


@dataclass(frozen=True)
class Note:
    """A result worth a line, within the current step."""

    text: str

    def __str__(self) -> str:
        return f"      {self.text}"


#: What ``on_event`` receives.
Event = StepStarted | StepDone | Note


class _Steps:
    """Numbers and times the steps, and sends their events to ``on_event``."""

    def __init__(self, total: int, on_event: Callable[[Event], None] | None) -> None:
        self.total, self.number = total, 0
        self._send = on_event or (lambda event: None)

    @contextmanager
    def __call__(self, title: str) -> Iterator[None]:
        self.number += 1
        number = self.number
        self._send(StepStarted(number, self.total, title))
        began = time.perf_counter()
        yield
        self._send(StepDone(number, self.total, title, time.perf_counter() - began))

    def note(self, text: str) -> None:
        self._send(Note(text))


# -- the pipeline ----------------------------------------------------------------------------------
def run_pipeline(
    out: str | Path,
    settings: PipelineSettings | None = None,
    *,
    on_event: Callable[[Event], None] | None = None,
    **options: Any,
) -> PipelineResult:
    """Run the whole pipeline into the directory ``out`` (see the module docstring).

    ``settings`` (a :class:`PipelineSettings`) and/or its fields by name as keyword arguments
    (``n_paths=200, generator="garch"``) say what to run; ``on_event`` receives the progress.
    Every option is checked before the (possibly long) training starts.

    Raises
    ------
    ConfigError, PluginError, DataError
        A bad option, unknown generator or strategy, unreadable data; ``out`` is left as it was.
    """
    out = Path(out)
    settings = PipelineSettings.of(settings, **options)
    gen_cls = check_settings(out, settings)
    steps = _Steps(7 if settings.regimes else 6, on_event)
    with ExitStack() as stack:
        stack.enter_context(claim(out))  # one run per out
        started = time.perf_counter()
        bars = load_bars(settings, steps)
        model, reused = train_or_reuse(out / MODEL_DIR, gen_cls, bars, settings, steps)
        # the new run's parts are written aside and replace the old ones only once all are complete
        staging = stack.enter_context(scratch(out, ".demo"))
        staging.mkdir()
        paths = sample(model, settings, steps)
        card = score(bars, paths, settings, steps)
        comparison = compare_regimes(model, bars, settings, steps) if settings.regimes else None
        config = run_config(settings, gen_cls.name, out / MODEL_DIR, model, bars)
        write_run(staging, config=config, paths=paths, real=bars, card=card, regimes=comparison)
        backtest = run_backtest(paths, bars.iloc[-REAL_BARS:], staging / BACKTEST_DIR, settings, steps)
        config["seconds"] = round(time.perf_counter() - started, 1)
        write_report(staging, config, steps)
        replace_entries(out, staging, RUN_PARTS)
    return PipelineResult(
        out=out,
        report=out / REPORT_FILE,
        model=model,
        reused_model=reused,
        paths=paths,
        card=card,
        regimes=comparison,
        backtest=backtest,
        config=config,
        seconds=time.perf_counter() - started,
    )


# -- its steps -------------------------------------------------------------------------------------
def check_settings(out: Path, settings: PipelineSettings) -> type[Generator]:
    """Check every option before minutes of training; the generator class."""
    from . import api
    from .executor import resolve_jobs
    from .montecarlo.strategy import resolve_strategy
    from .train_config import TrainConfig, parse_duration

    if out.exists() and not out.is_dir():
        raise ConfigError(f"--out {str(out)!r} is a file; give a directory for the demo's run.")
    parse_duration(settings.time_budget)
    gen_cls = api.generator_class(settings.generator)
    gen_cls(**settings.hparams)
    TrainConfig(steps=settings.steps, seed=settings.seed)
    resolve_strategy(settings.strategy)
    resolve_jobs(settings.jobs)
    starting_context(settings)
    return gen_cls


def starting_context(settings: PipelineSettings):
    """The context the paths start from (:func:`synthmarket.context.chosen_context`)."""
    from .context import chosen_context

    return chosen_context(settings.context, settings.from_date, settings.data if settings.from_date else None)


def load_bars(settings: PipelineSettings, steps: _Steps) -> pd.DataFrame:
    """The real bars the model is trained on and the paths are compared with."""
    from .data import load_data

    with steps(f"Loading the {settings.data} bars"):
        bars = load_data(settings.data)
        steps.note(f"{len(bars):,} bars, {bars.index[0]:%Y-%m-%d} to {bars.index[-1]:%Y-%m-%d}")
    return bars


def training_key(generator: type[Generator], settings: PipelineSettings, bars: pd.DataFrame) -> dict:
    """Everything a trained model depends on: a cached model is reused only when its key is equal."""
    from .data import fingerprint

    return {
        "generator": generator.name,
        "hyperparameters": {**generator.defaults, **settings.hparams},
        "data_fingerprint": fingerprint(bars),
        "seed": settings.seed,
        "time_budget": settings.time_budget,
        "regimes": settings.regimes,
        "steps": settings.steps,
        "synthmarket": __version__,
    }


def cached_model(model_dir: Path, key: dict) -> Generator | None:
    """The model in ``model_dir`` when it was trained with exactly ``key``, else None."""
    from .errors import ModelFileError
    from .generator import Generator

    file = model_dir / TRAINING_KEY_FILE
    if not file.is_file():
        return None
    try:
        if json.loads(file.read_text()) != json.loads(json.dumps(key)):
            return None
        return Generator.load(model_dir)
    except (json.JSONDecodeError, UnicodeDecodeError, ModelFileError):
        return None


def train_or_reuse(
    model_dir: Path, gen_cls: type[Generator], bars: pd.DataFrame, settings: PipelineSettings, steps: _Steps
) -> tuple[Generator, bool]:
    """The model in ``model_dir`` when trained with the same settings, else a new one trained
    into it; and whether it was reused."""
    from . import api

    key = training_key(gen_cls, settings, bars)
    model = None if settings.retrain else cached_model(model_dir, key)
    reused = model is not None
    if reused:
        with steps(f"Reusing the {gen_cls.name} model in {model_dir} (same settings; --retrain trains afresh)"):
            pass
    else:
        budget = f"at most {settings.time_budget}" if settings.time_budget else "its default length"
        with steps(f"Training {gen_cls.name} on {len(bars):,} bars ({budget}) into {model_dir}"):
            (model_dir / TRAINING_KEY_FILE).unlink(missing_ok=True)
            model = api.train(
                gen_cls,
                bars,
                regimes=settings.regimes,
                time_budget=settings.time_budget,
                seed=settings.seed,
                out=model_dir,
                steps=settings.steps,
                progress=settings.progress,
                **settings.hparams,
            )
            (model_dir / TRAINING_KEY_FILE).write_text(json.dumps(key, indent=2))
    if model.report is not None:
        steps.note(model.report.summary())
    return model, reused


def sample(model: Generator, settings: PipelineSettings, steps: _Steps) -> Paths:
    from . import api
    from .context import describe

    context = starting_context(settings)
    with steps(f"Sampling {settings.n_paths:,} paths of {settings.n_steps} bars"):
        paths = api.generate(model, settings.n_paths, settings.n_steps, seed=settings.seed, context=context)
        steps.note(describe(model, context))
    return paths


def score(bars: pd.DataFrame, paths: Paths, settings: PipelineSettings, steps: _Steps) -> Scorecard:
    from .facts import scorecard

    with steps("Scoring the stylized facts against the real returns"):
        card = scorecard(bars, paths, seed=settings.seed)
        steps.note(card.summary())
    return card


def compare_regimes(model: Generator, bars: pd.DataFrame, settings: PipelineSettings, steps: _Steps) -> pd.DataFrame:
    from .regime_stats import regime_comparison

    with steps(f"Comparing the {', '.join(model.scheme.names)} regimes ({REGIME_PATHS} paths each)"):
        return regime_comparison(model, bars, n_paths=REGIME_PATHS, n_steps=settings.n_steps, seed=settings.seed)


def run_config(
    settings: PipelineSettings, generator: str, model_dir: Path, model: Generator, bars: pd.DataFrame
) -> dict:
    """The configuration written to ``run.json`` (and shown on the report)."""
    real = bars.iloc[-REAL_BARS:]
    data_range = f"{bars.index[0]:%Y-%m-%d}..{bars.index[-1]:%Y-%m-%d}"
    return {
        "title": "synthmarket demo",
        "subtitle": f"{generator} trained on {settings.data} {data_range}; {settings.n_paths} paths x "
        f"{settings.n_steps} bars; {settings.strategy} backtested on every path",
        "generator": generator,
        "model": str(model_dir),
        "hyperparameters": model.hparams,
        "data": settings.data,
        "data_range": data_range,
        "real_backtest_range": f"{real.index[0]:%Y-%m-%d}..{real.index[-1]:%Y-%m-%d}",
        "regimes": settings.regimes,
        "training": None if model.report is None else model.report.summary(),
        "time_budget": settings.time_budget,
        "n_paths": settings.n_paths,
        "n_steps": settings.n_steps,
        "seed": settings.seed,
        "strategy": settings.strategy,
        "jobs": settings.jobs,
        "context": settings.from_date or settings.context,
    }


def run_backtest(
    paths: Paths, real: pd.DataFrame, out: Path, settings: PipelineSettings, steps: _Steps
) -> MonteCarloResult:
    """The strategy on every path and on ``real``, written to ``out``."""
    from .montecarlo import run_montecarlo

    with steps(
        f"Backtesting {settings.strategy} on {settings.n_paths:,} paths and on the real year "
        f"{real.index[0]:%Y-%m-%d}..{real.index[-1]:%Y-%m-%d}"
    ):
        result = run_montecarlo(
            settings.strategy, paths, real=real, jobs=settings.jobs, out=out, progress=settings.progress
        )
        sharpe = result.summary.metrics.loc["sharpe"]
        steps.note(
            f"median Sharpe {sharpe['p50']:.2f} (5-95%: {sharpe['p5']:.2f} to {sharpe['p95']:.2f}); "
            f"real year {sharpe['real']:.2f}"
        )
    return result


def write_report(run_dir: Path, config: dict, steps: _Steps) -> Path:
    """Add ``config`` to the run's ``run.json`` and build its ``report.html``."""
    from .pages import build_report

    with steps("Writing the report"):
        run_file = run_dir / RUN_FILE
        run_file.write_text(json.dumps({**json.loads(run_file.read_text()), **config}, indent=2))
        return build_report(run_dir, run_dir / REPORT_FILE)


__all__ = ["Event", "Note", "PipelineResult", "PipelineSettings", "StepDone", "StepStarted", "run_pipeline"]
