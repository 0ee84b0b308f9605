"""Batches: what a worker receives (:class:`BatchTask`), what it does (:func:`run_batch`) and returns.

The main process cuts the paths into batches of arrays (:func:`.scenarios.batch_tasks`); a worker
rebuilds a small Cerebro per path and sends back a few numbers per path, never a live Cerebro.
This module, and all it imports, loads no pandas: workers start from it.
"""

from __future__ import annotations

import math
import numbers
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..feeds import FeedArrays
from .failures import describe, user_files
from .metrics import INT_METRICS, METRICS, run_path
from .output import captured
from .settings import Settings
from .strategy import strategy_from_ref


@dataclass(frozen=True)
class BatchTask:
    """Paths for one worker call: arrays only, plus the strategy's string and settings.

    ``bars`` has shape (5, n, S): open, high, low, close, volume of ``n`` paths that share
    ``dates`` (backtrader date numbers).
    """

    strategy: str | type
    params: dict[str, Any]
    settings: Settings
    ids: tuple[str, ...]  # path ids as text (Paths.id_labels)
    dates: np.ndarray
    bars: np.ndarray
    fail_fast: bool = False


@dataclass(frozen=True)
class BatchResult:
    """One metrics row per path that ran (a fail-fast batch stops after its first error), the
    wall and CPU seconds the worker spent on the batch, each path's output (only paths that
    printed) and the analyzers' results that are not scalars (only paths that have some)."""

    rows: list[dict[str, Any]]
    seconds: float
    cpu_seconds: float
    logs: dict[str, str] = field(default_factory=dict)
    analyses: dict[str, dict[str, Any]] = field(default_factory=dict)


def run_batch(task: BatchTask) -> BatchResult:
    """Backtest every path of ``task``; a path's exception becomes its row's ``error``."""
    started, cpu_started = time.perf_counter(), time.process_time()
    elapsed = lambda: (time.perf_counter() - started, time.process_time() - cpu_started)  # noqa: E731
    rows: list[dict[str, Any]] = []
    logs: dict[str, str] = {}
    analyses: dict[str, dict[str, Any]] = {}
    try:
        cls = task.strategy if isinstance(task.strategy, type) else strategy_from_ref(task.strategy)
    except Exception as exc:  # the strategy cannot be loaded here: every path says so
        text = f"{type(exc).__name__}: {exc}"
        ids = task.ids[:1] if task.fail_fast else task.ids
        return BatchResult([_empty_row(i, text) for i in ids], *elapsed())
    files = user_files(cls, task.settings.user_files())
    for k, path_id in enumerate(task.ids):
        bars = FeedArrays(task.dates, *task.bars[:, k])
        with captured() as output:
            run = run_path(cls, bars, task.params, task.settings, name=f"path-{path_id}")
        row: dict[str, Any] = {"path": path_id, **run.metrics, "error": None, "failed_bar": run.failed_bar}
        if run.error is not None:
            row["error"] = describe(run.error, files, task.settings.feeds)
        rest = {}
        for name, analysis in run.analyses.items():
            rest.update(flatten(name, analysis, row))
        if rest:
            analyses[path_id] = rest
        text = output.getvalue()
        if text:
            logs[path_id] = text
        rows.append(row)
        if task.fail_fast and row["error"] is not None:
            break
    return BatchResult(rows, *elapsed(), logs, analyses)


def flatten(prefix: str, value: Any, scalars: dict[str, Any]) -> dict[str, Any]:
    """Put the numbers of an analyzer's result in ``scalars`` as ``prefix.key.subkey`` columns;
    return the rest (lists, dicts keyed by date, text) as plain data."""
    if isinstance(value, Mapping):
        rest: dict[str, Any] = {}
        if all(isinstance(key, str) for key in value):
            for key, item in value.items():
                rest.update(flatten(f"{prefix}.{key}", item, scalars))
            return rest
        return {prefix: {str(key): _plain(item) for key, item in value.items()}}
    if value is None or (isinstance(value, numbers.Real)):
        missing = value is None or (isinstance(value, int) and abs(value) >= sys.maxsize)  # backtrader's "none yet"
        scalars[prefix] = math.nan if missing else float(value)
        return {}
    return {prefix: _plain(value)}


def _plain(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(key): _plain(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(item) for item in value]
    if isinstance(value, numbers.Real) or value is None or isinstance(value, str):
        return value
    return str(value)


def _empty_row(path: str, error: str) -> dict[str, Any]:
    row: dict[str, Any] = {"path": path}
    row.update({m: None if m in INT_METRICS else math.nan for m in METRICS})
    row["error"] = error
    row["failed_bar"] = 0
    return row
