"""Sampling speed of the classical baselines, bars included, and how their bars look.

Run: ``python benchmarks/classical_speed.py`` (about half a minute on a 2-core CPU).
Each model is fitted on the bundled S&P 500 bars 2009-05-01..2018-12-31. The first table
times ``sample`` + ``Paths.from_features`` (the whole way to OHLCV arrays), best of
``REPEATS`` runs. The second compares real and generated bars (200 paths x 1,000 bars):
the link between the size of a move and the bar's range and volume, and day-to-day
persistence (lag-1 autocorrelation) of squared returns, ranges and volume.
"""

from __future__ import annotations

import time

import numpy as np

from synthmarket import sample_data
from synthmarket.bars import to_features
from synthmarket.paths import Paths
from synthmarket_plugins.classical import Bootstrap, Garch, Gbm

REPEATS = 3
SHAPES = ((4096, 252), (64, 5000), (100_000, 10))


def bars_per_second(model, n_paths: int, n_steps: int, context="last") -> float:
    best = float("inf")
    for seed in range(REPEATS):
        began = time.perf_counter()
        Paths.from_features(model.sample(n_paths, n_steps, seed=seed, context=context), model.anchor)
        best = min(best, time.perf_counter() - began)
    return n_paths * n_steps / best


def _acf1(x: np.ndarray) -> float:
    x = x - x.mean(axis=-1, keepdims=True)
    return float((x[..., 1:] * x[..., :-1]).sum() / (x * x).sum())


def bar_statistics(features: np.ndarray) -> list[str]:
    """corr(abs r, range), corr(abs r, volume), ACF1 of r^2, range and volume, as strings."""
    r = features[..., 0]
    bar_range = np.abs(features[..., 0] - features[..., 1]) + features[..., 2] + features[..., 3]
    volume = features[..., 4]

    def corr(a: np.ndarray, b: np.ndarray) -> float:
        return float(np.corrcoef(a.ravel(), b.ravel())[0, 1])

    values = [corr(np.abs(r), bar_range), corr(np.abs(r), volume), _acf1(r**2), _acf1(bar_range), _acf1(volume)]
    return [f"{v:.2f}" for v in values]


def print_table(columns: list[str], table: list[list[str]]) -> None:
    widths = [max(len(r[i]) for r in [columns, *table]) for i in range(len(columns))]
    print("| " + " | ".join(c.ljust(w) for c, w in zip(columns, widths)) + " |")
    print("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    for row in table:
        print(
            "| " + " | ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(row, widths))) + " |"
        )


def main() -> None:
    bars = sample_data("sp500").loc["2009-05-01":"2018-12-31"]
    rows = [
        (Gbm(), None),
        (Garch(dist="t"), None),
        (Garch(dist="normal"), None),
        (Bootstrap(), None),
        (Bootstrap(), "volatility"),
    ]
    columns = ["generator", "fit (s)"] + [f"{p:,} x {s:,} (bars/s)" for p, s in SHAPES]
    table = []
    for model, regimes in rows:
        began = time.perf_counter()
        model.fit(bars, regimes=regimes)
        fit = time.perf_counter() - began
        settings = [f"{k}={v}" for k, v in model.hparams.items()] + ([f"regimes={regimes}"] if regimes else [])
        table.append(
            [" ".join([model.name, *settings]), f"{fit:.2f}"]
            + [f"{bars_per_second(model, p, s) / 1e6:.2f} M" for p, s in SHAPES]
        )
    print_table(columns, table)
    print()
    columns = ["bars", "corr(abs r, range)", "corr(abs r, volume)", "ACF1 r^2", "ACF1 range", "ACF1 volume"]
    table = [["real S&P 500"] + bar_statistics(to_features(bars))]
    for model, _ in rows[:4]:
        label = model.name + (f" dist={model.hparams['dist']}" if model.name == "garch" else "")
        table.append([label] + bar_statistics(model.sample(200, 1000, seed=0)))
    print_table(columns, table)


if __name__ == "__main__":
    main()
