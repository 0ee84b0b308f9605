"""The parallel seam: serial and process backends, lazy task consumption, dead workers."""

from __future__ import annotations

import os
import signal

import pytest

from synthmarket.errors import ConfigError
from synthmarket.executor import WorkerDied, map_unordered, resolve_jobs


def square_and_pid(x: int) -> tuple[int, int]:
    return x * x, os.getpid()


def die_on_three(x: int) -> int:
    if x == 3:
        os.kill(os.getpid(), signal.SIGKILL)
    return x


def test_serial_runs_here_in_order():
    results = list(map_unordered(square_and_pid, range(5), jobs=1))
    assert results == [(x * x, os.getpid()) for x in range(5)]


def test_processes_give_every_result_once():
    results = list(map_unordered(square_and_pid, range(20), jobs=2))
    assert sorted(r[0] for r in results) == [x * x for x in range(20)]
    assert os.getpid() not in {r[1] for r in results}


def test_tasks_are_pulled_lazily():
    pulled = []

    def tasks():
        for x in range(1000):
            pulled.append(x)
            yield x

    results = map_unordered(square_and_pid, tasks(), jobs=2, max_pending=3)
    next(results)
    assert len(pulled) <= 4
    results.close()


def test_a_killed_worker_raises_worker_died():
    with pytest.raises(WorkerDied, match="died before finishing"):
        list(map_unordered(die_on_three, range(8), jobs=2, max_pending=2))


def test_resolve_jobs_and_bad_options():
    cores = os.cpu_count()
    assert resolve_jobs(3) == 3 and resolve_jobs(-1) == cores and resolve_jobs(None) == cores
    assert resolve_jobs(-cores - 5) == 1
    with pytest.raises(ConfigError, match="positive number"):
        resolve_jobs(0)
    with pytest.raises(ConfigError, match="Unknown backend 'dask'"):
        map_unordered(abs, [1], backend="dask")
    with pytest.raises(ConfigError, match="Start method 'thread'"):
        map_unordered(abs, [1], jobs=2, start_method="thread")
