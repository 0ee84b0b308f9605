"""The validation score that picks a model's best weights: stylized-facts distances to held-out returns."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from .training_data import TrainingData

#: Distances (from :mod:`synthmarket.distances`) averaged into the validation score.
VALIDATION_KEYS = ("w1_1", "w1_5", "w1_20", "acf_abs", "acf_sq", "leverage")
MIN_VALIDATION_BARS = 60

DistanceFn = Callable[[np.ndarray, np.ndarray], dict]


def _default_distances(lags: tuple[int, ...]) -> DistanceFn:
    from .distances import return_distances

    return lambda real, synthetic: return_distances(real, synthetic, lags=lags)


class ValidationScore:
    """Stylized-facts distance of sampled paths to the held-out real returns (lower is better).

    The held-out returns are first brought to the training data's mean and volatility: a
    model learns its level from the training data, and a few held-out months are one draw
    of a persistent volatility, so the score judges the shape of the returns (tails,
    clustering, leverage, how sums grow with the horizon), not whether a checkpoint happens
    to match the held-out period's level (with the raw S&P 500 2017-18 returns, selection
    preferred models 7% calmer than the training years). Paths as long as the validation period are sampled (under the validation period's own
    regime labels when the data have regimes) with the same seed every time, and scored with
    ``distance_fn(real_returns, synthetic_returns) -> dict`` (by default
    :func:`synthmarket.distances.return_distances`). The score is the mean, over ``keys``,
    of each distance divided by the same distance for i.i.d. normal returns with the
    training mean and volatility — so 1 means "no better than a random walk".
    """

    def __init__(
        self,
        dataset: TrainingData,
        *,
        n_paths: int = 64,
        seed: int = 0,
        keys: Sequence[str] = VALIDATION_KEYS,
        distance_fn: DistanceFn | None = None,
    ) -> None:
        mean, std = dataset.scaler.mean[0], dataset.scaler.std[0]
        self.mean, self.std = float(mean), float(std)
        held_out = dataset.validation[:, 0].astype(np.float64)  # scaled: the training mean 0, volatility 1
        spread = held_out.std()
        standardized = (held_out - held_out.mean()) / spread if spread > 0 else held_out
        self.real = standardized * self.std + self.mean
        self.labels = dataset.validation_labels
        self.n_paths, self.seed, self.keys = int(n_paths), int(seed), tuple(keys)
        lags = tuple(k for k in (1, 5, 20, 100) if k < len(self.real) // 3) or (1,)
        self.distance_fn = distance_fn or _default_distances(lags)
        noise = np.random.default_rng([self.seed, 1]).standard_normal((self.n_paths, len(self.real)))
        self.baseline = self.distance_fn(self.real, self.mean + self.std * noise)

    @classmethod
    def usable(cls, dataset: TrainingData) -> bool:
        return len(dataset.validation) >= MIN_VALIDATION_BARS

    def __call__(
        self, sample: Callable[[int, np.ndarray | None, np.random.Generator, int], np.ndarray]
    ) -> tuple[float, dict]:
        """(score, distances) of ``sample(n, labels, rng, n_steps)``'s scaled paths."""
        scaled = sample(self.n_paths, self.labels, np.random.default_rng([self.seed, 2]), len(self.real))
        returns = np.asarray(scaled, dtype=np.float64)[..., 0] * self.std + self.mean
        if not np.isfinite(returns).all():
            return math.inf, {}
        distances = {k: float(v) for k, v in self.distance_fn(self.real, returns).items()}
        ratios = [distances[k] / self.baseline[k] for k in self.keys if k in distances and self.baseline.get(k, 0) > 0]
        return (float(np.mean(ratios)) if ratios else math.inf), distances
