"""Monte-Carlo backtest throughput: plain backtrader against the runner, and its scaling.

Paths are 252-bar windows of the real S&P 500 (overlapping, every 4th start), placed on one
business-day index, and the strategy is the built-in SMA crossover (10/30) with 0.1 %
commission. Measured:

- plain backtrader, one ``cerebro.run`` per path in a loop, as a user would write it
  (``bt.feeds.PandasData``, default observers), and the same loop with synthmarket's
  ``PathData`` feed and no observers (the per-core floor the runner is held to);
- ``run_montecarlo`` in this process (``jobs=1``), with 2 local processes, and on a local
  Ray cluster of 2 CPUs (cluster start-up timed separately);
- peak memory (resident set of the main process and of the largest worker) for growing
  numbers of paths, fed lazily chunk by chunk as a model would sample them;
- the command a user runs, ``synthmarket backtest --scenarios FILE`` on 300 windows saved as a
  scenario file, with ``--jobs 1`` and ``--jobs 2`` in alternating pairs (wall time of the
  whole command, interpreter start and imports included: ``--parts cli``); after each pair,
  the machine's own ceiling at that moment: a pure-Python loop run once alone, then twice at
  once (speed-up ``2 x alone / both``; 2.00x on two free cores).

The per-core comparisons run plain and runner batches alternately in this process, count
CPU seconds of this process (not wall time, so that other jobs on a shared machine matter
less) and keep the best of ``--repeats``. Prints Markdown tables.

Usage::

    nice -n 10 python benchmarks/backtest.py [--paths 1000] [--repeats 3] [--no-ray]
    python benchmarks/backtest.py --parts cli [--pairs 8]
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import backtrader as bt
import numpy as np

from synthmarket.data import sample_data
from synthmarket.feeds import path_feed
from synthmarket.montecarlo import ScenarioSet, resolve_strategy, run_montecarlo
from synthmarket.paths import FIELDS, Paths

STEPS = 252
STRATEGY = "sma_cross"


def real_windows(n_paths: int, start: int = 0, stride: int = 4) -> Paths:
    """``n_paths`` overlapping 252-bar windows of the S&P 500 (wrapping around)."""
    bars = sample_data("sp500")
    starts = (start + stride * np.arange(n_paths)) % (len(bars) - STEPS)
    columns = {k: bars[k].to_numpy() for k in FIELDS}
    index = starts[:, None] + np.arange(STEPS)
    return Paths(**{k: columns[k][index] for k in FIELDS}, dates=bars.index[:STEPS])


class LazyWindows(ScenarioSet):
    """Windows produced chunk by chunk, as a generator model samples them (nothing held)."""

    def __init__(self, n_paths: int, chunk: int = 256) -> None:
        self.n_paths, self.n_steps, self.chunk = n_paths, STEPS, chunk
        self.fingerprint = f"windows-{n_paths}"

    def chunks(self) -> Iterator[Paths]:
        for first in range(0, self.n_paths, self.chunk):
            yield real_windows(min(self.chunk, self.n_paths - first), start=4 * first)


def plain_loop(paths: Paths, *, lean: bool) -> float:
    """CPU seconds of this process for one cerebro.run per path, the way a user writes it."""
    cls, _ = resolve_strategy(STRATEGY)
    started = time.process_time()
    for i in range(paths.n_paths):
        cerebro = bt.Cerebro(stdstats=not lean)
        feed = path_feed(paths, i) if lean else bt.feeds.PandasData(dataname=paths.path(i))
        cerebro.adddata(feed)
        cerebro.addstrategy(cls)
        cerebro.broker.setcash(100_000)
        cerebro.broker.setcommission(commission=0.001)
        cerebro.run()
    return time.process_time() - started


def runner(paths, jobs: int, *, clock=time.perf_counter, **kwargs) -> float:
    return timed_runner(paths, jobs, clock=clock, **kwargs)[0]


def timed_runner(paths, jobs: int, *, clock=time.perf_counter, **kwargs) -> tuple[float, float]:
    """(seconds by ``clock``, CPU seconds the workers spent backtesting)."""
    started = clock()
    result = run_montecarlo(STRATEGY, paths, jobs=jobs, progress=False, **kwargs)
    return clock() - started, result.worker_cpu_seconds


def per_core(n_paths: int, repeats: int) -> list[tuple[str, float]]:
    paths = real_windows(n_paths)
    runner(paths.subset(slice(0, 8)), 1)  # warm imports and the registry
    plain_loop(paths.subset(slice(0, 8)), lean=True)
    best = {"pandas": np.inf, "lean": np.inf, "runner": np.inf, "analyzer": np.inf}
    for _ in range(repeats):
        best["pandas"] = min(best["pandas"], plain_loop(paths, lean=False))
        best["lean"] = min(best["lean"], plain_loop(paths, lean=True))
        best["runner"] = min(best["runner"], runner(paths, 1, clock=time.process_time))
        best["analyzer"] = min(best["analyzer"], runner(paths, 1, clock=time.process_time, analyzers=("SQN",)))
    bars = n_paths * STEPS
    return [
        ("plain backtrader: PandasData, default observers", bars / best["pandas"]),
        ("plain backtrader: PathData, no observers (the floor)", bars / best["lean"]),
        ("run_montecarlo, jobs=1 (in process; output captured, default settings)", bars / best["runner"]),
        ("run_montecarlo, jobs=1, one added analyzer (SQN)", bars / best["analyzer"]),
    ]


def scaling(n_paths: int, use_ray: bool) -> list[tuple[str, int, float, float, float]]:
    """Rows of (backend, workers, wall seconds, worker CPU seconds, cluster start-up seconds)."""
    paths = real_windows(n_paths)
    runner(paths.subset(slice(0, 4)), 1)  # the registry and imports, once, outside the timings
    rows = []
    for jobs in (1, 2):
        seconds, cpu = timed_runner(paths, jobs)
        rows.append((f"local, {jobs} process{'es' if jobs > 1 else ''}", jobs, seconds, cpu, 0.0))
    if use_ray:
        import ray

        started = time.perf_counter()
        ray.init(num_cpus=2, include_dashboard=False, logging_level="error")
        startup = time.perf_counter() - started
        try:
            runner(paths.subset(slice(0, 8)), 2, backend="ray")  # workers import synthmarket once
            seconds, cpu = timed_runner(paths, 2, backend="ray")
            rows.append(("Ray, local cluster of 2 CPUs", 2, seconds, cpu, startup))
        finally:
            ray.shutdown()
    return rows


def _descendants_peak_rss(root: int) -> float:
    """Largest VmHWM (MiB) among the live descendants of ``root`` (Linux /proc)."""
    parents: dict[int, int] = {}
    peaks: dict[int, float] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/status") as status:
                fields = dict(line.split(":", 1) for line in status if ":" in line)
        except OSError:
            continue
        parents[int(entry)] = int(fields["PPid"])
        if "VmHWM" in fields:
            peaks[int(entry)] = int(fields["VmHWM"].split()[0]) / 1024
    best = 0.0
    for pid, peak in peaks.items():
        ancestor = parents.get(pid)
        while ancestor and ancestor != root:
            ancestor = parents.get(ancestor)
        if ancestor == root:
            best = max(best, peak)
    return best


def memory_child(n_paths: int) -> None:
    """Run once and print: paths, seconds, main peak RSS MiB, largest worker peak RSS MiB."""
    import threading

    worker_peak = [0.0]
    done = threading.Event()

    def watch() -> None:
        while not done.wait(0.2):
            worker_peak[0] = max(worker_peak[0], _descendants_peak_rss(os.getpid()))

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    with tempfile.TemporaryDirectory() as out:
        started = time.perf_counter()
        run_montecarlo(STRATEGY, LazyWindows(n_paths), jobs=2, out=out, progress=False)
        seconds = time.perf_counter() - started
    done.set()
    watcher.join()
    main = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"{n_paths} {seconds:.2f} {main:.0f} {worker_peak[0]:.0f}")


def memory(sizes: list[int]) -> list[tuple[int, float, float, float]]:
    rows = []
    for n in sizes:
        line = subprocess.run(
            [sys.executable, __file__, "--memory-child", str(n)], capture_output=True, text=True, check=True
        ).stdout.split()
        rows.append((int(line[0]), float(line[1]), float(line[2]), float(line[3])))
    return rows


SPIN = "x = 0\nfor i in range(15_000_000):\n    x += i"


def spin_seconds(copies: int) -> float:
    """Wall seconds of ``copies`` processes each running the same CPU-bound loop at once."""
    started = time.perf_counter()
    running = [subprocess.Popen([sys.executable, "-c", SPIN]) for _ in range(copies)]
    for process in running:
        process.wait()
    return time.perf_counter() - started


def command_pairs(n_paths: int, pairs: int) -> list[tuple[float, float, float]]:
    """Wall seconds of ``synthmarket backtest`` with ``--jobs 1`` and ``--jobs 2`` on the same
    scenario file, in alternating pairs, and the machine's two-process ceiling after each."""
    command = shutil.which("synthmarket", path=str(Path(sys.executable).parent)) or "synthmarket"
    out = []
    with tempfile.TemporaryDirectory() as tmp:
        scenarios = real_windows(n_paths).save(Path(tmp) / "scenarios.parquet")
        for pair in range(pairs):
            seconds = []
            for jobs in (1, 2):
                run_dir = Path(tmp) / f"run-{pair}-{jobs}"
                started = time.perf_counter()
                subprocess.run(
                    [command, "backtest", "--strategy", STRATEGY, "--scenarios", str(scenarios), "--jobs", str(jobs)]
                    + ["--out", str(run_dir), "--no-progress"],
                    check=True,
                    stdout=subprocess.DEVNULL,
                )
                seconds.append(time.perf_counter() - started)
            ceiling = 2 * spin_seconds(1) / spin_seconds(2)
            out.append((seconds[0], seconds[1], ceiling))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--paths", type=int, default=1000, help="paths in the scaling runs")
    parser.add_argument("--core-paths", type=int, default=200, help="paths in each per-core batch")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--memory-sizes", default="250,1000,2000")
    parser.add_argument("--no-ray", action="store_true")
    parser.add_argument("--parts", default="core,scaling,memory", help="which tables to measure")
    parser.add_argument("--pairs", type=int, default=8, help="alternating --jobs 1 / --jobs 2 pairs (--parts cli)")
    parser.add_argument("--memory-child", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.memory_child:
        memory_child(args.memory_child)
        return

    load_before = os.getloadavg()
    print(f"# Monte-Carlo backtest benchmark, {dt.datetime.now():%Y-%m-%d %H:%M}")
    print(
        f"{os.cpu_count()} CPU cores; load average before: {load_before[0]:.2f}; "
        f"strategy {STRATEGY} (10/30), {STEPS}-bar paths of real S&P 500 windows\n"
    )

    parts = set(args.parts.split(","))
    if "core" in parts:
        rows = per_core(args.core_paths, args.repeats)
        floor = rows[1][1]
        print(f"## Per core (best of {args.repeats} alternating runs of {args.core_paths} paths, CPU time)\n")
        print("| what | bars per CPU second | vs floor |\n|---|---:|---:|")
        for name, rate in rows:
            print(f"| {name} | {rate:,.0f} | {rate / floor:.2f} |")

    if "scaling" in parts:
        print(f"\n## Scaling, {args.paths} paths x {STEPS} bars (start-up included)\n")
        print(
            "| backend | wall s | bars/s | speed-up vs 1 process (wall) | bars per worker CPU second | "
            "worker efficiency vs 1 process |\n|---|---:|---:|---:|---:|---:|"
        )
        scale = scaling(args.paths, not args.no_ray)
        one_wall, one_rate = scale[0][2], args.paths * STEPS / scale[0][3]
        for name, _workers, seconds, cpu, startup in scale:
            note = f" (+{startup:.1f} s cluster start)" if startup else ""
            rate = args.paths * STEPS / cpu
            print(
                f"| {name}{note} | {seconds:.1f} | {args.paths * STEPS / seconds:,.0f} | {one_wall / seconds:.2f}x | "
                f"{rate:,.0f} | {rate / one_rate:.2f} |"
            )

    if "memory" in parts:
        sizes = [int(s) for s in args.memory_sizes.split(",") if s]
        print("\n## Peak memory, 2 local processes, paths fed lazily in chunks of 256\n")
        print(
            "| paths | seconds | main process peak RSS (MiB) | largest worker peak RSS (MiB) |\n|---:|---:|---:|---:|"
        )
        for n, seconds, main_rss, worker_rss in memory(sizes):
            print(f"| {n:,} | {seconds:.1f} | {main_rss:.0f} | {worker_rss:.0f} |")
    if "cli" in parts:
        n_cli = 300
        print(f"\n## The command, {n_cli} paths x {STEPS} bars: synthmarket backtest --jobs 1 and --jobs 2\n")
        print(
            "| pair | --jobs 1 (s) | --jobs 2 (s) | speed-up | machine ceiling (2 CPU-bound processes) |\n"
            "|---:|---:|---:|---:|---:|"
        )
        pairs = command_pairs(n_cli, args.pairs)
        for i, (one, two, ceiling) in enumerate(pairs, 1):
            print(f"| {i} | {one:.2f} | {two:.2f} | {one / two:.2f}x | {ceiling:.2f}x |")
        ones, twos, ceilings = (np.median([p[k] for p in pairs]) for k in range(3))
        ratios = np.median([p[0] / p[1] for p in pairs])
        print(
            f"| median | {ones:.2f} | {twos:.2f} | {ones / twos:.2f}x (pair by pair {ratios:.2f}x) | {ceilings:.2f}x |"
        )
    load_after = os.getloadavg()
    print(f"\nLoad average after: {load_after[0]:.2f} (1 min), {load_after[1]:.2f} (5 min).")


if __name__ == "__main__":
    main()
