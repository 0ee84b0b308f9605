"""Sampling speed of the deep generators, bars included, at one and at all CPU threads.

Run: ``python benchmarks/deep_speed.py [--generators rgan,vae,conv1d_cgan]`` (a few minutes on
a 2-core CPU; run it on an otherwise idle machine). Each model keeps its default
hyper-parameters and is trained for a few steps only on the bundled S&P 500 bars
2009-05-01..2018-12-31: speed depends on the architecture, not on the weights. Timed is
``sample`` + ``Paths.from_features`` (the whole way to OHLCV arrays), best of ``REPEATS`` runs,
from the market at the end of the training data (the default context, which each call
filters afresh) and, in the "no context" columns, unconditionally. The last column checks
that the paths are the same whatever the number of threads.
"""

from __future__ import annotations

import argparse

import numpy as np
import torch
from classical_speed import bars_per_second, print_table

from synthmarket import sample_data
from synthmarket.registry import get_registry
from synthmarket.training import TrainConfig

SHAPES = ((4096, 1000), (500, 2434))


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--generators", default="conv1d_cgan,rgan,vae")
    args = parser.parse_args(argv)
    bars = sample_data("sp500").loc["2009-05-01":"2018-12-31"]
    all_threads = torch.get_num_threads()
    thread_counts = sorted({1, all_threads})
    columns = ["generator"] + [f"{p:,} x {s:,}, {t} thread{'s' * (t > 1)}" for p, s in SHAPES for t in thread_counts]
    columns += [f"{p:,} x {s:,}, no context, {all_threads} threads" for p, s in SHAPES] + ["same paths"]
    table = []
    for name in args.generators.split(","):
        model = get_registry().get("generator", name)()
        model.fit(bars, TrainConfig(steps=5, validate_every=5, progress=False))
        speeds, samples = {}, []
        for t in thread_counts:
            torch.set_num_threads(t)
            samples.append(model.sample(300, 400, seed=7))
            for shape in SHAPES:
                speeds[shape, t] = bars_per_second(model, *shape)
        torch.set_num_threads(all_threads)
        for shape in SHAPES:
            speeds[shape, None] = bars_per_second(model, *shape, context=None)
        same = all(np.array_equal(samples[0], s) for s in samples[1:])
        table.append(
            [name]
            + [f"{speeds[shape, t] / 1e6:.2f} M" for shape in SHAPES for t in thread_counts]
            + [f"{speeds[shape, None] / 1e6:.2f} M" for shape in SHAPES]
            + ["yes" if same else "NO"]
        )
    print(f"torch {torch.__version__}, {all_threads} threads")
    print_table(columns, table)


if __name__ == "__main__":
    main()
