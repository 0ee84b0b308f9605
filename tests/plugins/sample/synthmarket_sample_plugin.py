"""A sample third-party synthmarket plugin: it implements every hook of synthmarket.hookspecs.

It is a complete, installable package (see ``pyproject.toml`` beside it) and the shortest
example of each contribution:

- ``random_walk``: a generator drawing i.i.d. Gaussian features with the training data's
  per-channel mean and spread (per regime when trained with regimes);
- ``sample_hold``: a backtrader strategy that buys on the first bar and holds;
- ``sample_max_drawdown``: a stylized fact, the deepest fall from a running peak.
"""

from __future__ import annotations

import backtrader as bt
import numpy as np
import pandas as pd

from synthmarket import hookimpl
from synthmarket.facts import StylizedFact
from synthmarket.generator import Generator, TrainReport
from synthmarket.training_data import TrainingData


class RandomWalk(Generator):
    """I.i.d. Gaussian features with the data's mean and spread per channel (and regime)."""

    name = "random_walk"
    conditional = True
    defaults = {"scale": 1.0}

    def _fit(self, dataset: TrainingData, config) -> TrainReport:
        x = dataset.train.astype(np.float64)
        if dataset.train_labels is None:
            groups = [x]
        else:
            groups = [x[dataset.train_labels == k] for k in range(len(dataset.scheme.names))]
            groups = [g if len(g) > 1 else x for g in groups]
        self.mean = np.stack([g.mean(axis=0) for g in groups])
        self.std = np.stack([g.std(axis=0) for g in groups])
        return TrainReport(self.name, seconds=0.0, steps=1)

    def _sample(self, n: int, labels, rng: np.random.Generator, n_steps: int) -> np.ndarray:
        regime = np.zeros(n_steps, dtype=np.int64) if labels is None else labels
        noise = rng.standard_normal((n, n_steps, self.mean.shape[1]))
        return self.mean[regime] + noise * self.std[regime] * float(self.hparams["scale"])

    def _state(self) -> dict[str, np.ndarray]:
        return {"mean": self.mean, "std": self.std}

    def _load_state(self, state: dict[str, np.ndarray]) -> None:
        self.mean, self.std = state["mean"], state["std"]


class HoldFromStart(bt.Strategy):
    """Buy ``size`` units on the first bar and hold them to the end."""

    params = (("size", 1),)

    def next(self) -> None:
        if not self.position:
            self.buy(size=self.p.size)


class MaxDrawdown(StylizedFact):
    """Deep drawdowns: the synthetic paths fall from their peaks about as far as the market did.

    Statistics: the largest fall of the cumulative log return from its running peak.

    Pass rule: the median path's deepest drawdown is between half and twice the real one.
    """

    name = "sample_max_drawdown"
    statistics = {"max_drawdown": "largest fall from a running peak (log)"}
    reference = "synthmarket sample plugin"

    def compute(self, returns: np.ndarray, bars: pd.DataFrame | None = None) -> dict[str, float]:
        level = np.concatenate([[0.0], np.cumsum(returns)])
        return {"max_drawdown": float(np.max(np.maximum.accumulate(level) - level))}

    def passes(self, real: dict[str, float], synthetic: dict[str, np.ndarray]) -> bool:
        median = float(np.median(synthetic["max_drawdown"]))
        return 0.5 * real["max_drawdown"] <= median <= 2.0 * real["max_drawdown"]


@hookimpl
def register_generators(register):
    register(RandomWalk)


@hookimpl
def register_strategies(register):
    register(HoldFromStart, name="sample_hold")


@hookimpl
def register_facts(register):
    register(MaxDrawdown)
