"""The runner: :func:`run_montecarlo` backtests one strategy over every path of a scenario set."""

from __future__ import annotations

import hashlib
import math
import os
import time
from collections.abc import Iterator, Mapping
from contextlib import nullcontext
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..errors import ConfigError, DataError, SynthmarketError
from ..executor import BACKENDS, cap_workers, describe_backend, map_unordered, resolve_jobs
from ..feeds import FeedArrays
from ..outdir import claim
from ..paths import FIELDS, Paths
from .batch import BatchResult, batch_tasks, run_batch
from .metrics import Settings
from .progress import progress_bar as make_progress_bar
from .scenarios import ScenarioSet, as_scenarios
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
    commission: float = 0.001,
    slippage: float = 0.0,
    jobs: int | None = -1,
    backend: str = "local",
    ray_address: str | None = None,
    real: pd.DataFrame | str | None = None,
    out: str | os.PathLike | None = None,
    resume: bool = False,
    fail_fast: bool = False,
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
        Strategy parameters; strings are converted to the type of each default.
    cash, commission, slippage : float
        Starting cash; commission and slippage as fractions (0.001 = 0.1 %).
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
        recorded in that path's ``error`` and the run goes on.
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
    WorkerDied
        When a worker process is killed; the finished paths are saved, ``resume=True`` finishes.

    Examples
    --------
    >>> result = run_montecarlo("sma_cross", paths, params={"fast": 5}, jobs=2, real=bars)  # doctest: +SKIP
    >>> result.summary.metrics.loc["sharpe", ["p5", "p50", "p95", "real_rank"]]             # doctest: +SKIP
    """
    started = time.perf_counter()
    if backend not in BACKENDS:
        raise ConfigError(f"Unknown backend {backend!r}; use one of {', '.join(BACKENDS)}.")
    label = strategy if isinstance(strategy, str) else strategy.__name__
    cls, ref = resolve_strategy(strategy)
    checked = coerce_params(cls, params, label=label)
    settings = Settings(float(cash), float(commission), float(slippage))
    source = as_scenarios(scenarios)
    real_bars = _real_bars(real)
    workers = resolve_jobs(jobs)
    if ref is None and (backend != "local" or workers > 1):
        raise ConfigError(
            f"{label} cannot be found again by name in a worker process (it is defined in __main__ or a "
            f"notebook). Save it in a file and pass 'path/to/file.py:{label}', or run with jobs=1."
        )
    manifest = {
        "format": FORMAT, "strategy": ref or label, "params": checked, "cash": settings.cash,
        "commission": settings.commission, "slippage": settings.slippage, "scenarios": source.fingerprint,
        "n_paths": source.n_paths, "n_steps": source.n_steps,
        "real": None if real_bars is None else _fingerprint_bars(real_bars),
    }
    with claim(out) if out is not None else nullcontext():  # one run per output directory
        store = ResultStore(out) if out is not None else None
        done = store.prepare(manifest, resume) if store is not None else set()
        memory_rows: list[dict[str, Any]] = []
        total = source.n_paths + (real_bars is not None)
        remaining = total - len(done)
        if batch_size is not None and int(batch_size) < 1:
            raise ConfigError(f"batch_size must be at least 1; got {batch_size}.")
        size = int(batch_size) if batch_size else max(1, min(64, math.ceil(max(remaining, 1) / (4 * workers))))
        if backend == "local" and workers > 1:
            workers = cap_workers(workers, math.ceil(max(remaining, 1) / size))
        in_process = backend == "local" and workers == 1
        tasks = batch_tasks(cls if in_process or ref is None else ref, checked, settings, source, real_bars, done, size, fail_fast)
        failure: BaseException | None = None
        progress_bar = make_progress_bar(progress)
        sink = store.append if store is not None else memory_rows.extend
        cpu_seconds: list[float] = []
        try:
            with progress_bar:
                task_id = progress_bar.add_task(
                    f"{label} on {describe_backend(backend, workers if backend == 'local' else jobs, start_method)}", total=total, completed=len(done)
                )
                results = map_unordered(
                    run_batch, tasks, jobs=workers, backend=backend, start_method=start_method,
                    ray_address=ray_address, preload=("synthmarket.montecarlo",),
                )
                _collect(results, sink, lambda n: progress_bar.advance(task_id, n), cpu_seconds, fail_fast)
        except BaseException as exc:
            failure = exc
        frame = store.compact() if store is not None else tidy_results(memory_rows)
        if isinstance(failure, SynthmarketError):
            raise _explain(failure, frame, total, out) from None
        if failure is not None:
            if isinstance(failure, KeyboardInterrupt) and out is not None:
                progress_bar.console.print(
                    f"Interrupted: {len(frame)} of {total} paths are saved in {Path(out) / RESULTS_FILE}; "
                    f"run again with resume=True (--resume) to finish the rest.",
                    highlight=False,
                )
            raise failure
        summary = Summary.of(frame)
        result = MonteCarloResult(
            results=frame, summary=summary, strategy=label, params=checked, settings=settings,
            out=None if out is None else Path(out), seconds=time.perf_counter() - started,
            worker_cpu_seconds=float(sum(cpu_seconds)),
        )
        if store is not None:
            write_json(store.out / SUMMARY_FILE, {
                "strategy": label, "params": checked, "cash": settings.cash, "commission": settings.commission,
                "slippage": settings.slippage, **summary.to_dict(),
            })
        return result


def _collect(results: Iterator[BatchResult], sink, advance, cpu_seconds: list[float], fail_fast: bool) -> None:
    """Store each finished batch as it comes; stop at the first error when ``fail_fast``."""
    try:
        for batch in results:
            sink(batch.rows)
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
    where = f" in {Path(out) / RESULTS_FILE}; run again with resume=True (--resume) to finish the rest" if out and len(frame) else ""
    return type(failure)(f"{failure} {saved}{where}.")


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
