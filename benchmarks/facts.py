"""Speed of the stylized-facts scorecard: 1,000 paths x 2,500 steps, timed per fact.

The paths come from the classical GARCH(1,1)-t baseline fitted on the bundled S&P 500
(1999-2018), the real side is the same S&P 500. The scorecard computes every built-in fact on
the real series and on all 1,000 paths (no subsample), the distances (W1, ACF, leverage, DY)
and the three window scores (memorisation, discriminative, predictive), then draws the figure.
The target is under 30 seconds for the whole scorecard on a 2-core CPU. ``--repeats`` keeps
the fastest run (the machine may be shared). Prints Markdown tables.

Usage::

    nice -n 10 python benchmarks/facts.py [--paths 1000] [--steps 2500] [--repeats 2]
"""

from __future__ import annotations

import argparse
import datetime as dt
import io
import os
import platform
import time

from synthmarket.data import sample_data
from synthmarket.facts import scorecard
from synthmarket.registry import get_registry


def sample(n_paths: int, n_steps: int, seed: int = 0):
    bars = sample_data("sp500")
    model = get_registry().get("generator", "garch")()
    model.fit(bars)
    return bars, model.sample_paths(n_paths, n_steps, seed=seed)


def timed_scorecard(bars, paths) -> tuple[object, dict[str, float], float]:
    start = time.perf_counter()
    card = scorecard(bars, paths, seed=0)
    before_plot = time.perf_counter()
    card.plot().savefig(io.BytesIO(), format="png", dpi=100)
    end = time.perf_counter()
    timings = dict(card.timings)
    timings["figure (drawn to PNG)"] = end - before_plot
    return card, timings, end - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--paths", type=int, default=1000)
    parser.add_argument("--steps", type=int, default=2500)
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()

    t0 = time.perf_counter()
    bars, paths = sample(args.paths, args.steps)
    sampling = time.perf_counter() - t0
    runs = [timed_scorecard(bars, paths) for _ in range(args.repeats)]
    card, timings, total = min(runs, key=lambda run: run[2])

    print(f"# Stylized-facts scorecard: {paths.n_paths} paths x {paths.n_steps} steps")
    print()
    print(
        f"{dt.date.today():%Y-%m-%d}, {os.cpu_count()}-core CPU ({platform.processor() or platform.machine()}), no GPU; "
        f"best of {args.repeats} runs; GARCH(1,1)-t fit + sampling took {sampling:.1f} s (not counted)."
    )
    print()
    print("| step | seconds |")
    print("|---|---:|")
    for name, seconds in timings.items():
        print(f"| {name} | {seconds:.2f} |")
    print(f"| **total (scorecard + figure)** | **{total:.2f}** |")
    print()
    print(f"Verdict: {card.summary()}.")
    print()
    print("| fact | verdict |")
    print("|---|---|")
    for row in card.verdicts.itertuples(index=False):
        print(f"| {row.fact} | {row.verdict} |")


if __name__ == "__main__":
    main()
