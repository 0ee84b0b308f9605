"""What the quality protocol gives where the model is right: a parametric bootstrap.

One path of a saved model, as long as the S&P 500's 2009-05-01..2018-12-31, takes the real
history's place (the real dates, the model's bars). On that "world" the protocol of
``quality.py`` in sample runs unchanged: a fresh generator with its default configuration
is trained (checkpoint chosen on the world's held-out latest 15%), 500 paths are scored as
ratios to a GARCH(1,1)-normal fitted the same way, and so are the bootstrap (a copier of
the world's training bars) and the generating model itself (the world's truth, not fitted
to the world). Where a trained model's ratios on its own worlds match its ratios on the
real data, the real data are no harder for it than its own worlds; where even the truth
misses a target on most worlds, the target asks for more than one history can show.

Examples::

    python benchmarks/quality.py --generators conv1d_cgan --data sp500 --keep models
    python benchmarks/own_world.py --model models/in-sample/sp500_conv1d_cgan_0 --worlds 0,1
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch
from quality import (
    DISTANCES,
    END,
    START,
    baseline_distances,
    console,
    make,
    real_returns,
    sample_paths,
    sample_returns,
    train,
)
from rich.table import Table
from scipy.stats import kurtosis

from synthmarket.data import sample_data
from synthmarket.distances import return_distances
from synthmarket.generator import Generator
from synthmarket.training_data import TrainingData


def world_bars(truth: Generator, real_bars, world: int):
    """Path ``world`` of ``truth`` as bars on the real bars' dates."""
    paths, _ = sample_paths(truth, 1, len(real_bars), seed=5000 + world)
    bars = paths.path(0)
    bars.index = real_bars.index.rename(bars.index.name)
    return bars


def ratios(model: Generator, returns: np.ndarray, baseline: dict, seed: int) -> dict[str, float]:
    synthetic, _ = sample_returns(model, 500, len(returns), seed=seed)
    distances = return_distances(returns, synthetic)
    return {key: distances[key] / baseline[key] for key in DISTANCES}


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", required=True, help="the saved model whose paths are the worlds")
    parser.add_argument("--generator", default=None, help="the generator trained on each world (default: the model's)")
    parser.add_argument("--worlds", default="0", help="comma-separated world numbers (each one path of the model)")
    parser.add_argument("--time-budget", default=None, help="cap on each training, e.g. 2m")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)

    truth = Generator.load(args.model)
    name = args.generator or truth.name
    real_bars = sample_data("sp500").loc[START:END]
    table = Table(title=f"{name} trained on worlds drawn from {args.model}: ratios to each world's GARCH(1,1)-normal")
    for column in ("world", "kurtosis", "who", *DISTANCES, "kept step", "train s"):
        table.add_column(column)
    for world in (int(w) for w in args.worlds.split(",")):
        bars = world_bars(truth, real_bars, world)
        returns = real_returns(bars)
        dataset = TrainingData.from_bars(bars)
        baseline = baseline_distances(dataset, returns, 500)
        model = make(name)
        seconds, report = train(model, dataset, world, {"time_budget": args.time_budget})
        copier = make("bootstrap")
        copier.fit(dataset)
        rows = [
            (
                f"{name}, trained",
                ratios(model, returns, baseline, 1000 + world),
                str(report.best_step),
                f"{seconds:.0f}",
            ),
            ("truth (the model itself)", ratios(truth, returns, baseline, 3000 + world), "", ""),
            ("bootstrap", ratios(copier, returns, baseline, 1000 + world), "", ""),
        ]
        for i, (who, values, step, secs) in enumerate(rows):
            table.add_row(
                str(world) if i == 0 else "",
                f"{kurtosis(returns):.2f}" if i == 0 else "",
                who,
                *(f"{values[k]:.2f}" for k in DISTANCES),
                step,
                secs,
            )
        console.log(f"world {world} done at {time.strftime('%H:%M:%S')}")
    console.print(table)


if __name__ == "__main__":
    main()
