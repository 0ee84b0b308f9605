"""The one parallel seam: run a function over picklable tasks, yield small results as they finish.

Three backends share one call, :func:`map_unordered`:

- ``jobs=1`` (local): in this process, one task after the other;
- local processes (``jobs > 1``): a ``ProcessPoolExecutor`` with an explicit start method
  (``forkserver`` where the platform has it, else ``spawn``; never a silent ``fork`` of a
  process that may hold threads);
- ``backend="ray"``: Ray tasks on the cluster at ``ray_address``, or on a local cluster
  started for the run (and shut down after it) when no address is given and Ray is not
  initialised yet.

Only a bounded number of tasks is in flight at once, so a lazy task iterator is consumed
lazily and memory stays flat however many tasks there are. Results come back in the order
they finish, not the order of the tasks: callers that need an order carry keys in the results.
A worker that dies (killed, out of memory) raises :class:`WorkerDied`; closing the iterator
early (an exception, Ctrl-C) cancels what is queued and stops the workers, and workers whose
parent dies (even by SIGKILL) exit by themselves.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import threading
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from itertools import islice
from typing import TypeVar

from .errors import ConfigError, SynthmarketError
from .outdir import note

T = TypeVar("T")
R = TypeVar("R")

BACKENDS = ("local", "ray")
START_METHODS = ("forkserver", "spawn", "fork")


class WorkerDied(SynthmarketError):
    """A worker process ended without returning its result (killed, out of memory, crashed)."""


def resolve_jobs(jobs: int | None) -> int:
    """The number of workers: ``jobs`` itself when positive; -1 all cores, -2 all but one, ...

    Raises
    ------
    ConfigError
        When ``jobs`` is 0.
    """
    cores = os.cpu_count() or 1
    if jobs is None:
        return cores
    jobs = int(jobs)
    if jobs == 0:
        raise ConfigError("jobs must be a positive number of workers, or -1 for all cores (-2: all but one, ...).")
    return jobs if jobs > 0 else max(1, cores + 1 + jobs)


def cap_workers(workers: int, n_tasks: int) -> int:
    """Local workers worth starting: no more than the CPUs, nor than the tasks (with a note when
    that is fewer than asked for, since each worker costs a process and its memory)."""
    cores = os.cpu_count() or 1
    capped = max(1, min(workers, cores, n_tasks))
    if capped < workers:
        note(
            f"starting {capped} worker process{'es' * (capped > 1)}, not {workers}: there "
            f"{'are' if n_tasks != 1 else 'is'} {n_tasks} batch{'es' * (n_tasks != 1)} of paths and {cores} CPUs."
        )
    return capped


def default_start_method() -> str:
    """``forkserver`` where available (Linux, macOS), else ``spawn`` (Windows)."""
    return "forkserver" if "forkserver" in multiprocessing.get_all_start_methods() else "spawn"


def map_unordered(
    fn: Callable[[T], R],
    tasks: Iterable[T],
    *,
    jobs: int | None = 1,
    backend: str = "local",
    start_method: str | None = None,
    ray_address: str | None = None,
    max_pending: int | None = None,
    preload: tuple[str, ...] = (),
) -> Iterator[R]:
    """Apply ``fn`` to every task in parallel; yield each result as soon as it is ready.

    Parameters
    ----------
    fn : callable
        A module-level function (workers import it by name). It should catch the errors it
        can record itself; an exception it raises ends the whole map.
    tasks : iterable
        Picklable task records (arrays, strings, numbers); consumed lazily.
    jobs : int, optional
        Workers: 1 runs in this process; -1 uses every core (see :func:`resolve_jobs`). With
        Ray, the CPUs of the local cluster started when none is running (-1: every core);
        a running cluster is used as it is.
    backend : {"local", "ray"}
        Local processes, or a Ray cluster.
    start_method : {"forkserver", "spawn", "fork"}, optional
        How local worker processes start (default :func:`default_start_method`).
    ray_address : str, optional
        Address of a running Ray cluster (``ray://host:10001`` or ``host:6379``).
    max_pending : int, optional
        Tasks in flight at once (default: twice the workers).
    preload : tuple of str
        Modules the forkserver imports once (with the main script), so that each worker
        starts warm. It only applies when this process starts its forkserver.

    Yields
    ------
    The results of ``fn``, in the order they finish.

    Raises
    ------
    WorkerDied
        When a worker process died without a result.
    ConfigError
        For an unknown backend or start method, or Ray not installed.
    """
    if backend not in BACKENDS:
        raise ConfigError(f"Unknown backend {backend!r}; use one of {', '.join(BACKENDS)}.")
    if backend == "ray":
        return _ray_map(fn, tasks, jobs=jobs, address=ray_address, max_pending=max_pending)
    n = resolve_jobs(jobs)
    if n == 1:
        return (fn(task) for task in tasks)
    method = start_method or default_start_method()
    if method not in START_METHODS or method not in multiprocessing.get_all_start_methods():
        raise ConfigError(
            f"Start method {method!r} is not available here; use one of "
            f"{', '.join(m for m in START_METHODS if m in multiprocessing.get_all_start_methods())}."
        )
    return _process_map(fn, tasks, workers=n, method=method, max_pending=max_pending or 2 * n, preload=preload)


def _init_worker(parent_alive_r, parent_alive_w) -> None:
    # Ctrl-C is the parent's to handle: it stops the workers itself, so they must not
    # die half-way through printing a traceback each.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    # Only the parent may hold the pipe's writing end: when the parent dies, even by SIGKILL,
    # the pipe closes and the worker exits instead of waiting for tasks forever.
    parent_alive_w.close()
    threading.Thread(target=_exit_when_closed, args=(parent_alive_r,), daemon=True).start()


def _exit_when_closed(parent_alive) -> None:
    try:
        parent_alive.recv_bytes()
    except (EOFError, OSError):
        pass
    os._exit(1)


def start_workers_early(jobs: int | None, backend: str, preload: tuple[str, ...]) -> None:
    """Start the local worker server now, when a later :func:`map_unordered` will use one, so
    that its imports (``preload``: the modules of the function it will run) happen while
    this process does its own work. Nothing happens with Ray, one job or without forkserver."""
    if backend != "local" or resolve_jobs(jobs) < 2 or default_start_method() != "forkserver":
        return
    from multiprocessing import forkserver

    _set_preload(multiprocessing.get_context("forkserver"), preload)
    forkserver.ensure_running()


def _set_preload(context, preload: tuple[str, ...]) -> None:
    # "__main__": the server runs the main script once, so that the workers it forks need not
    # each run it again. Python 3.11's server skips it (it is never given the script's path), so
    # callers also name the modules the script imports. It applies only until the server starts.
    context.set_forkserver_preload(["__main__", *preload])


def _process_map(
    fn: Callable[[T], R], tasks: Iterable[T], *, workers: int, method: str, max_pending: int, preload: tuple[str, ...]
) -> Iterator[R]:
    context = multiprocessing.get_context(method)
    if method == "forkserver":
        _set_preload(context, (*preload, fn.__module__))
    parent_alive_r, parent_alive_w = context.Pipe(duplex=False)
    pool = ProcessPoolExecutor(
        max_workers=workers, mp_context=context, initializer=_init_worker, initargs=(parent_alive_r, parent_alive_w)
    )
    finished = False
    try:
        source = iter(tasks)
        pending: set[Future] = set()
        # A dead worker shows either in a future's result or, when the pool noticed first,
        # in the next submit: both are the same WorkerDied.
        try:
            pending = {pool.submit(fn, task) for task in islice(source, max_pending)}
            while pending:
                done, pending = wait(pending, return_when=FIRST_COMPLETED)
                for future in done:
                    yield future.result()
                pending |= {pool.submit(fn, task) for task in islice(source, max_pending - len(pending))}
        except BrokenProcessPool:
            raise WorkerDied(
                "A worker process died before finishing its task (killed, out of memory or "
                "crashed); the results finished before it are kept."
            ) from None
        finished = True
    finally:
        if finished:
            pool.shutdown(wait=True)
        else:
            _stop_pool(pool)
        parent_alive_r.close()
        parent_alive_w.close()


def _stop_pool(pool: ProcessPoolExecutor) -> None:
    """Cancel what is queued and end the workers now, without waiting for running tasks."""
    terminate = getattr(pool, "terminate_workers", None)  # Python >= 3.14
    if terminate is not None:
        terminate()
        return
    processes = list((getattr(pool, "_processes", None) or {}).values())
    pool.shutdown(wait=False, cancel_futures=True)
    for process in processes:
        if process.is_alive():
            process.terminate()
    for process in processes:
        process.join(timeout=5)


def _ray_map(
    fn: Callable[[T], R], tasks: Iterable[T], *, jobs: int | None, address: str | None, max_pending: int | None
) -> Iterator[R]:
    try:
        import ray
        from ray.exceptions import RayTaskError
    except ImportError:
        raise ConfigError("The Ray backend needs Ray: pip install 'synthmarket[ray]'.") from None
    started_here = False
    pending: list = []
    if not ray.is_initialized():
        local_cpus = resolve_jobs(jobs) if address is None and jobs not in (None, -1) else None
        ray.init(address=address, num_cpus=local_cpus, include_dashboard=False, logging_level="warning")
        started_here = True
    try:
        slots = int(ray.cluster_resources().get("CPU", 1))
        limit = max_pending or 2 * max(1, slots)
        remote = ray.remote(num_cpus=1)(fn)
        source = iter(tasks)
        pending = [remote.remote(task) for task in islice(source, limit)]
        while pending:
            ready, pending = ray.wait(pending, num_returns=1)
            try:
                result = ray.get(ready[0])
            except RayTaskError as exc:
                cause = exc.as_instanceof_cause()
                raise cause from None
            except ray.exceptions.RayError as exc:
                raise WorkerDied(f"A Ray worker failed before finishing its task: {exc}") from None
            yield result
            pending += [remote.remote(task) for task in islice(source, limit - len(pending))]
    finally:
        for ref in pending:
            ray.cancel(ref, force=True)
        if started_here:
            ray.shutdown()


def describe_backend(backend: str, jobs: int | None, start_method: str | None = None) -> str:
    """A short human description, e.g. ``"4 local processes (forkserver)"``."""
    if backend == "ray":
        return "Ray"
    n = resolve_jobs(jobs)
    if n == 1:
        return "1 process (this one)"
    return f"{n} local processes ({start_method or default_start_method()})"


__all__ = ["BACKENDS", "WorkerDied", "default_start_method", "describe_backend", "map_unordered", "resolve_jobs"]
