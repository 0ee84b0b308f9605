"""A plugin whose generator takes a name that the sample plugin already uses."""

from __future__ import annotations

import numpy as np

from synthmarket import hookimpl
from synthmarket.generator import Generator, TrainReport
from synthmarket.training_data import TrainingData


class WhiteNoise(Generator):
    """Standard normal scaled features: white noise that shares the sample plugin's name."""

    name = "random_walk"

    def _fit(self, dataset: TrainingData, config) -> TrainReport:
        self.channels = np.array([dataset.n_channels])
        return TrainReport(self.name, seconds=0.0, steps=0)

    def _sample(self, n: int, labels, rng: np.random.Generator, n_steps: int) -> np.ndarray:
        return rng.standard_normal((n, n_steps, int(self.channels[0])))

    def _state(self) -> dict[str, np.ndarray]:
        return {"channels": self.channels}

    def _load_state(self, state: dict[str, np.ndarray]) -> None:
        self.channels = state["channels"]


@hookimpl
def register_generators(register):
    register(WhiteNoise)
