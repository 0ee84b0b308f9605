"""The runner: :func:`run_montecarlo` backtests one strategy over every path of a scenario set.

A run is a few named steps: :func:`_resolve` (the strategy, its parameters and every setting,
checked before anything is written), :func:`_manifest` (what ``run.json`` records, so that a
resumed run is the same run), the :class:`~.storage.ResultStore` (``out``, or rows in memory),
:func:`_plan` (batches and workers), :func:`_run_batches` (the workers, collected by
:func:`_collect`; the finished rows are kept whatever happens) and :func:`_summarise`.
"""

from __future__ import annotations

import hashlib
import math
import os
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..errors import ConfigError, DataError, SynthmarketError
from ..executor import BACKENDS, cap_workers, describe_backend, map_unordered, resolve_jobs
from ..feeds import FeedArrays
from ..outdir import claim
from ..paths import FIELDS, Paths
from . import WORKER_MODULES
from .batch import BatchResult, BatchTask, run_batch
from .failures import allowed_failures, check_builds, check_failures, user_files
from .output import prefixed
from .progress import progress_bar as make_progress_bar
from .scenarios import ScenarioSet, as_scenarios, batch_tasks
from .settings import Settings
from .storage import FORMAT, RESULTS_FILE, SUMMARY_FILE, ResultStore, tidy_results, write_json
from .strategy import coerce_params, resolve_strategy
from .summary import MonteCarloResult, Summary


class PathFailed(SynthmarketError):
    """A path raised an error and the run was asked to stop at the first one (``fail_fast``)."""


def run_montecarlo(
    strategy: str | type,
    scenarios: ScenarioSet | Paths | str | os.PathLike,
    *,
    params: Mapping[str, Any] | None = None,
    cash: float = 100_000.0,
    commission: float | None = None,
    commission_scheme: str = "percent",
    slippage: float = 0.0,
    slippage_fixed: float = 0.0,
    sizer: str | type | None = None,
    cheat_on_open: bool = False,
    cheat_on_close: bool = False,
    resample: Sequence[str] = (),
    analyzers: Sequence[str | type] = (),
    setup: str | Callable | None = None,
    jobs: int | None = -1,
    backend: str = "local",
    ray_address: str | None = None,
    real: pd.DataFrame | str | None = None,
    out: str | os.PathLike | None = None,
    resume: bool = False,
    fail_fast: bool = False,
    max_failures: int | float | str | None = None,
    show_output: bool = False,
    batch_size: int | None = None,
    start_method: str | None = None,
    progress: bool = True,
) -> MonteCarloResult:
    """Backtest ``strategy`` on every path of ``scenarios`` (and on ``real``), in parallel.

    Parameters
    ----------
    strategy : str or type
        A registered strategy name (``synthmarket strategies`` lists them),
        ``package.module:Class``, ``path/to/file.py:Class``, or a ``backtrader.Strategy``
        subclass.
    scenarios : Paths, ScenarioSet, str or PathLike
        The paths: a :class:`~synthmarket.paths.Paths`, a scenario file written by
        ``synthmarket generate``, or a :class:`GeneratedScenarios` (sampled lazily).
    params : mapping, optional
        Strategy parameters. Text is read as backtrader would take the value: a Python literal
        of the default's type; a number or a literal where the default is False (off, or a
        value), a literal or the text itself where it is None; a dotted name (``bt.ind.EMA``,
        ``file.py:Name``) where the default is a class or a function.
    cash, commission, slippage : float
        Starting cash; commission (a fraction for the ``percent`` scheme, default 0.001 = 0.1 %;
        an amount for the others, default 0) and slippage as a fraction of the price.
    commission_scheme, slippage_fixed, sizer, cheat_on_open, cheat_on_close, resample, analyzers, setup
        What a backtrader user sets on Cerebro: see :class:`~.settings.Settings` (e.g.
        ``sizer="PercentSizer:percents=20"``, ``resample=("monthly",)`` for a ``data1``,
        ``analyzers=("SQN", "SharpeRatio")``, ``setup="file.py:configure"``). Analyzers' scalar
        results become columns of ``results``.
    jobs : int, optional
        Worker processes: 1 runs here; -1 (default) uses every core. With Ray, the local
        cluster's CPUs (when none is running yet).
    backend : {"local", "ray"}
        Local processes, or Ray (``ray_address`` or a local cluster).
    ray_address : str, optional
        Address of a running Ray cluster.
    real : DataFrame or str, optional
        The real history (OHLCV bars, or a data name/file for :func:`synthmarket.data.load_data`);
        its row has ``path == "real"`` and the summary ranks it among the synthetic paths.
    out : path, optional
        Directory for ``results.parquet``, ``summary.json`` and ``run.json``; results are
        appended as batches finish. Without it, results stay in memory.
    resume : bool
        Skip the paths already stored in ``out`` (after a kill or Ctrl-C).
    fail_fast : bool
        Stop at the first path that raises (:class:`PathFailed`); by default the error is
        recorded in that path's ``error`` (with the bar it failed on) and the run goes on.
    max_failures : int, float or str, optional
        Once the run is complete and saved, raise :class:`~.failures.TooManyFailures` (with the
        result) when more paths failed than this count or share (``3``, ``"5%"``), or when every
        path failed. None: never (inspect ``result.summary.n_failed``).
    show_output : bool
        Also print what the strategy prints, each line prefixed with its path, as batches
        finish. Either way each path's output is kept apart (:meth:`MonteCarloResult.output`).
    batch_size : int, optional
        Paths per task (default: enough batches to keep every worker busy, at most 64 paths).
    start_method : str, optional
        ``forkserver`` (default where available), ``spawn`` or ``fork`` for local processes.
    progress : bool
        Show a progress bar (paths per second, ETA) on stderr.

    Returns
    -------
    MonteCarloResult

    Raises
    ------
    PluginError, ConfigError, DataError
        Unknown strategy, bad parameters or settings, unreadable scenarios.
    PathFailed
        With ``fail_fast``, when a path raises.
    TooManyFailures
        With ``max_failures``, when more paths failed.
    WorkerDied
        When a worker process is killed; the finished paths are saved, ``resume=True`` finishes.

    Examples
    --------
    >>> result = run_montecarlo("sma_cross", paths, params={"fast": 5}, jobs=2, real=bars)  # doctest: +SKIP
    >>> result.summary.metrics.loc["sharpe", ["p5", "p50", "p95", "real_rank"]]             # doctest: +SKIP
    """
    started = time.perf_counter()
    if max_failures is not None:
        allowed_failures(max_failures, 1)  # a bad value is an error now, not after the run
    settings = Settings(
        cash=float(cash),
        commission=commission,
        slippage=float(slippage),
        commission_scheme=commission_scheme,
        slippage_fixed=float(slippage_fixed),
        sizer=sizer,
        cheat_on_open=bool(cheat_on_open),
        cheat_on_close=bool(cheat_on_close),
        resample=resample,
        analyzers=analyzers,
        setup=setup,
    )
    job = _resolve(
        strategy,
        scenarios,
        params=params,
        settings=settings,
        jobs=jobs,
        backend=backend,
        real=real,
        batch_size=batch_size,
    )
    manifest = _manifest(job)
    with claim(out) if out is not None else nullcontext():  # one run per output directory
        store = ResultStore(out) if out is not None else None
        done = store.prepare(manifest, resume) if store is not None else set()
        plan = _plan(job, done, batch_size, fail_fast)
        outputs = _Outputs(show_output)
        frame, cpu_seconds = _run_batches(
            job,
            plan,
            store,
            outputs,
            fail_fast=fail_fast,
            start_method=start_method,
            ray_address=ray_address,
            progress=progress,
        )
        result = _summarise(job, frame, store, outputs, seconds=time.perf_counter() - started, cpu_seconds=cpu_seconds)
    if max_failures is not None:
        check_failures(result, max_failures)
    return result


# -- the steps of a run ----------------------------------------------------------------------------
@dataclass(frozen=True)
class _Job:
    """What a run does, resolved and checked: the strategy, its parameters, the broker settings,
    the paths and the real history, and where it runs."""

    label: str
    cls: type
    #: How a worker process finds the strategy again (None: only in this process).
    ref: str | None
    params: dict[str, Any]
    settings: Settings
    source: ScenarioSet
    real: FeedArrays | None
    jobs: int | None
    workers: int
    backend: str

    @property
    def total(self) -> int:
        """Rows of a complete run: every path, and the real history."""
        return self.source.n_paths + (self.real is not None)


@dataclass(frozen=True)
class _Plan:
    """The batches of the paths still to run, and the workers that run them."""

    tasks: Iterator[BatchTask]
    workers: int
    done: int


def _resolve(strategy, scenarios, *, params, settings, jobs, backend, real, batch_size) -> _Job:
    """Resolve the strategy, check every setting and build the strategy once on the paths'
    dates, before anything is written."""
    if backend not in BACKENDS:
        raise ConfigError(f"Unknown backend {backend!r}; use one of {', '.join(BACKENDS)}.")
    if batch_size is not None and int(batch_size) < 1:
        raise ConfigError(f"batch_size must be at least 1; got {batch_size}.")
    label = strategy if isinstance(strategy, str) else strategy.__name__
    cls, ref = resolve_strategy(strategy)
    checked = coerce_params(cls, params, label=label)
    settings.check()
    source = as_scenarios(scenarios)
    check_builds(cls, label, checked, settings, pd.DatetimeIndex(source.dates))
    real_bars = _real_bars(real)
    workers = resolve_jobs(jobs)
    if ref is None and (backend != "local" or workers > 1):
        raise ConfigError(
            f"{label} cannot be found again by name in a worker process (it is defined in __main__ or a "
            f"notebook). Save it in a file and pass 'path/to/file.py:{label}', or run with jobs=1."
        )
    return _Job(label, cls, ref, checked, settings, source, real_bars, jobs, workers, backend)


def _manifest(job: _Job) -> dict[str, Any]:
    """What ``run.json`` records: a resumed run must have been started with the same inputs."""
    return {
        "format": FORMAT,
        "strategy": job.ref or job.label,
        "strategy_source": _source_digest(job.cls, job.settings),
        "params": job.params,
        "settings": job.settings.to_dict(),
        "scenarios": job.source.fingerprint,
        "n_paths": job.source.n_paths,
        "n_steps": job.source.n_steps,
        "real": None if job.real is None else _fingerprint_bars(job.real),
    }


def _plan(job: _Job, done: set[str], batch_size: int | None, fail_fast: bool) -> _Plan:
    """Batches of the paths not yet ``done``: by default enough to keep every worker busy (at most
    64 paths each); no more local workers than batches."""
    remaining = max(job.total - len(done), 1)
    workers = job.workers
    size = int(batch_size) if batch_size else max(1, min(64, math.ceil(remaining / (4 * workers))))
    if job.backend == "local" and workers > 1:
        workers = cap_workers(workers, math.ceil(remaining / size))
    in_process = job.backend == "local" and workers == 1
    strategy = job.cls if in_process or job.ref is None else job.ref
    tasks = batch_tasks(strategy, job.params, job.settings, job.source, job.real, done, size, fail_fast)
    return _Plan(tasks, workers, len(done))


class _Outputs:
    """Where each batch's rows, logs and analyses go besides the store: kept in memory when the
    run has no output directory, and printed line by line with ``show_output``."""

    def __init__(self, show: bool) -> None:
        self.show, self.rows, self.logs, self.analyses = show, [], {}, {}

    def take(self, batch: BatchResult, store: ResultStore | None, console) -> None:
        if store is not None:
            store.append(batch.rows, batch.logs, batch.analyses)
        else:
            self.rows.extend(batch.rows)
            self.logs.update(batch.logs)
            self.analyses.update(batch.analyses)
        if self.show:
            for path_id, text in batch.logs.items():
                console.print(prefixed(path_id, text), markup=False, highlight=False)


def _run_batches(
    job: _Job,
    plan: _Plan,
    store: ResultStore | None,
    outputs: _Outputs,
    *,
    fail_fast: bool,
    start_method: str | None,
    ray_address: str | None,
    progress: bool,
) -> tuple[pd.DataFrame, float]:
    """Run the batches on the workers and collect their rows (into ``store``, or in memory); the
    rows and the workers' CPU seconds. The rows finished are kept whatever happens; a failure is
    raised again once they are, saying what was saved."""
    cpu_seconds: list[float] = []
    failure: BaseException | None = None
    progress_bar = make_progress_bar(progress)
    try:
        with progress_bar:
            where = describe_backend(job.backend, plan.workers if job.backend == "local" else job.jobs, start_method)
            task_id = progress_bar.add_task(f"{job.label} on {where}", total=job.total, completed=plan.done)
            results = map_unordered(
                run_batch,
                plan.tasks,
                jobs=plan.workers,
                backend=job.backend,
                start_method=start_method,
                ray_address=ray_address,
                preload=WORKER_MODULES,
            )
            sink = lambda batch: outputs.take(batch, store, progress_bar.console)  # noqa: E731
            _collect(results, sink, lambda n: progress_bar.advance(task_id, n), cpu_seconds, fail_fast)
    except BaseException as exc:
        failure = exc
    frame = store.compact() if store is not None else tidy_results(outputs.rows)
    out = None if store is None else store.out
    if isinstance(failure, SynthmarketError):
        raise _explain(failure, frame, job.total, out) from None
    if failure is not None:
        if isinstance(failure, KeyboardInterrupt) and out is not None:
            progress_bar.console.print(
                f"Interrupted: {len(frame)} of {job.total} paths are saved in {out / RESULTS_FILE}; "
                f"run again with resume=True (--resume) to finish the rest.",
                highlight=False,
            )
        raise failure
    return frame, float(sum(cpu_seconds))


def _summarise(
    job: _Job, frame: pd.DataFrame, store: ResultStore | None, outputs: _Outputs, *, seconds: float, cpu_seconds: float
) -> MonteCarloResult:
    """The distribution of the metrics, written to ``summary.json`` when the run has a store."""
    summary = Summary.of(frame)
    if store is not None:
        write_json(
            store.out / SUMMARY_FILE,
            {
                "strategy": job.label,
                "params": job.params,
                "settings": job.settings.to_dict(),
                **summary.to_dict(),
            },
        )
    return MonteCarloResult(
        results=frame,
        summary=summary,
        strategy=job.label,
        params=job.params,
        settings=job.settings,
        out=None if store is None else store.out,
        seconds=seconds,
        worker_cpu_seconds=cpu_seconds,
        logs=outputs.logs,
        analyses=outputs.analyses,
    )


def _collect(results: Iterator[BatchResult], sink, advance, cpu_seconds: list[float], fail_fast: bool) -> None:
    """Store each finished batch as it comes; stop at the first error when ``fail_fast``."""
    try:
        for batch in results:
            sink(batch)
            advance(len(batch.rows))
            cpu_seconds.append(batch.cpu_seconds)
            if fail_fast:
                failed = next((r for r in batch.rows if r["error"] is not None), None)
                if failed is not None:
                    raise PathFailed(f"Path {failed['path']} failed: {failed['error']}.")
    finally:
        close = getattr(results, "close", None)
        if close is not None:
            close()  # stops the workers when leaving early


def _explain(failure: SynthmarketError, frame: pd.DataFrame, total: int, out) -> SynthmarketError:
    """The same kind of error, saying what was saved and how to finish the run."""
    saved = f"{len(frame)} of {total} paths are saved"
    where = (
        f" in {Path(out) / RESULTS_FILE}; run again with resume=True (--resume) to finish the rest"
        if out and len(frame)
        else ""
    )
    return type(failure)(f"{failure} {saved}{where}.")


def _source_digest(cls: type, settings: Settings) -> str:
    """A digest of the user's code the run depends on: the strategy's file(s) and the files the
    settings name, so that ``--resume`` refuses an edited strategy."""
    digest = hashlib.sha256(f"{cls.__module__}:{cls.__qualname__}".encode())
    for file in sorted(user_files(cls, settings.user_files())):
        try:
            digest.update(Path(file).read_bytes())
        except OSError:
            digest.update(file.encode())
    return digest.hexdigest()[:16]


def _real_bars(real: pd.DataFrame | str | None) -> FeedArrays | None:
    if real is None:
        return None
    if isinstance(real, str):
        from ..data import load_data

        real = load_data(real)
    if not isinstance(real, pd.DataFrame):
        raise DataError(f"real must be an OHLCV DataFrame or a data name/file; got {type(real).__name__}.")
    return FeedArrays.from_frame(real)


def _fingerprint_bars(bars: FeedArrays) -> str:
    digest = hashlib.sha256()
    for k in ("dates", *FIELDS):
        digest.update(np.ascontiguousarray(getattr(bars, k)).tobytes())
    return digest.hexdigest()[:16]
