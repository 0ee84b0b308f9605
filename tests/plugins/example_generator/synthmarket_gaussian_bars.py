"""An example synthmarket generator plugin: independent multivariate-normal bars.

Every bar's channels (close return, gap, wicks, volume) are drawn jointly from one
Gaussian fitted to the training bars, with no memory from one bar to the next. It is a
weak market model, and a complete plugin: a Generator subclass, its weights as named
arrays, and the ``register_generators`` hook that the entry point in pyproject.toml exposes.
"""

from __future__ import annotations

import time

import numpy as np

from synthmarket import hookimpl
from synthmarket.errors import ConfigError
from synthmarket.generator import Generator, HyperParameter, TrainReport
from synthmarket.training_data import TrainingData


class GaussianBars(Generator):
    """Independent bars drawn from one multivariate normal fitted to the training bars."""

    name = "gaussian_bars"
    hyperparameters = (
        HyperParameter("shrinkage", float, 0.0, "shrink the covariance towards its diagonal, 0 (none) to 1 (all)"),
    )

    def __init__(self, **hparams) -> None:
        super().__init__(**hparams)
        if not 0.0 <= float(self.hparams["shrinkage"]) <= 1.0:
            raise ConfigError(f"gaussian_bars: shrinkage must be between 0 and 1; got {self.hparams['shrinkage']!r}.")

    def _fit(self, dataset: TrainingData, config) -> TrainReport:
        began = time.perf_counter()
        x = dataset.train.astype(np.float64)  # scaled features, shape (T, C)
        covariance = np.cov(x, rowvar=False)
        s = float(self.hparams["shrinkage"])
        covariance = (1.0 - s) * covariance + s * np.diag(np.diag(covariance))
        self.mean = x.mean(axis=0)
        self.chol = np.linalg.cholesky(covariance)
        return TrainReport(self.name, seconds=time.perf_counter() - began, steps=1)

    def _sample_scaled(self, n: int, labels, rng: np.random.Generator, n_steps: int) -> np.ndarray:
        noise = rng.standard_normal((n, n_steps, len(self.mean)))
        return self.mean + noise @ self.chol.T  # scaled features, shape (n, n_steps, C)

    def _state(self) -> dict[str, np.ndarray]:
        return {"mean": self.mean, "chol": self.chol}

    def _load_state(self, state: dict[str, np.ndarray]) -> None:
        mean, chol = state["mean"], state["chol"]
        channels = len(self.scaler.channels)
        if mean.shape != (channels,) or chol.shape != (channels, channels):
            raise ValueError(f"expected a mean of {channels} channels and a {channels}x{channels} factor")
        self.mean, self.chol = mean, chol


@hookimpl
def register_generators(register) -> None:
    register(GaussianBars)
