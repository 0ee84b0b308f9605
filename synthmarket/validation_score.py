"""The validation score that picks a model's best weights: stylized-facts distances to held-out
returns and, for a model that starts from a context, forecasts of held-out days from the real bars
before them."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

import numpy as np

from .errors import ContextUnreadable

if TYPE_CHECKING:
    from .training_data import TrainingData

#: Distances (from :mod:`synthmarket.distances`) averaged into the validation score.
VALIDATION_KEYS = ("w1_1", "w1_5", "w1_20", "acf_abs", "acf_sq", "leverage")
MIN_VALIDATION_BARS = 60
#: Horizons (bars) of the validation forecasts of a context-aware model, and how many held-out
#: days it forecasts from.
FORECAST_HORIZONS = (1, 5, 20)
FORECAST_ORIGINS = 48

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

    For a model that starts from a context (``context_length`` > 0, its ``min_context``), the
    score is the mean of that and a forecast score: from up to ``n_origins`` held-out days
    evenly spread, each with ``context_length`` real bars before it, ``n_paths`` paths are
    sampled from that context, and the CRPS of their 1-, 5- and 20-day log returns against the
    returns that followed is divided by the CRPS of a normal forecast with the training mean
    and volatility. A model that ignores its context, or forecasts the wrong level of
    volatility for the state it is in, scores worse. Here the held-out returns keep their own
    level: a forecast is judged on what happened.
    """

    def __init__(
        self,
        dataset: TrainingData,
        *,
        n_paths: int = 64,
        seed: int = 0,
        keys: Sequence[str] = VALIDATION_KEYS,
        distance_fn: DistanceFn | None = None,
        context_length: int = 0,
        n_origins: int = FORECAST_ORIGINS,
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
        self.forecasts = (
            _Forecasts.of(dataset, int(context_length), int(n_origins), self.mean, self.std)
            if context_length > 0
            else None
        )

    @classmethod
    def usable(cls, dataset: TrainingData) -> bool:
        return len(dataset.validation) >= MIN_VALIDATION_BARS

    def __call__(self, sample: Callable[..., np.ndarray]) -> tuple[float, dict]:
        """(score, distances) of ``sample(n, labels, rng, n_steps)``'s scaled paths; with forecasts,
        also of ``sample(n, None, rng, n_steps, context=contexts)``'s: n paths from each of the
        scaled contexts (B, L, C), context by context."""
        scaled = sample(self.n_paths, self.labels, np.random.default_rng([self.seed, 2]), len(self.real))
        returns = np.asarray(scaled, dtype=np.float64)[..., 0] * self.std + self.mean
        if not np.isfinite(returns).all():
            return math.inf, {}
        distances = {k: float(v) for k, v in self.distance_fn(self.real, returns).items()}
        ratios = [distances[k] / self.baseline[k] for k in self.keys if k in distances and self.baseline.get(k, 0) > 0]
        score = float(np.mean(ratios)) if ratios else math.inf
        if self.forecasts is not None:
            skill = self.forecasts.score(sample, self.n_paths, self.seed)
            distances.update(skill)
            score = (score + float(np.mean(list(skill.values())))) / 2
        return score, distances


class _Forecasts:
    """Held-out days a context-aware model forecasts from the real bars before them, and the
    CRPS of a normal forecast with the training mean and volatility for each."""

    def __init__(self, contexts: np.ndarray, realised: np.ndarray, horizons: tuple[int, ...], mean: float, std: float):
        self.contexts, self.realised, self.horizons = contexts, realised, horizons
        self.mean, self.std = mean, std
        from .calibration.scores import crps_normal

        self.reference = {
            h: float(np.mean(crps_normal(realised[:, i], h * mean, math.sqrt(h) * std))) for i, h in enumerate(horizons)
        }

    @classmethod
    def of(
        cls, dataset: TrainingData, context_length: int, n_origins: int, mean: float, std: float
    ) -> _Forecasts | None:
        """The forecasts of ``dataset``'s held-out days (None when no held-out day has both
        ``context_length`` bars before it and a day after it inside its block)."""
        series, held_out = dataset.series, dataset.held_out
        if series is None or held_out is None:
            return None
        block_left = _run_left(held_out)  # held-out rows from each row to the end of its block
        horizons = tuple(h for h in FORECAST_HORIZONS if h <= max(1, int(block_left.max(initial=0)) // 3)) or (1,)
        rows = np.arange(len(series))
        usable = np.flatnonzero((rows >= context_length) & (block_left >= horizons[-1]))
        if not usable.size:
            return None
        origins = usable[np.unique(np.linspace(0, len(usable) - 1, min(n_origins, len(usable))).round().astype(int))]
        returns = series[:, 0].astype(np.float64) * std + mean
        ends = np.cumsum(np.concatenate([[0.0], returns]))
        realised = np.stack([ends[origins + h] - ends[origins] for h in horizons], axis=1)
        contexts = np.stack([series[o - context_length : o] for o in origins])
        return cls(contexts, realised, horizons, mean, std)

    def score(self, sample: Callable[..., np.ndarray], n_paths: int, seed: int) -> dict[str, float]:
        """``crps_H``: the model's mean CRPS at each horizon over the reference's (1: no better
        than the normal forecast that ignores the state)."""
        from .calibration.scores import crps

        n_steps = self.horizons[-1]
        try:
            scaled = sample(n_paths, None, np.random.default_rng([seed, 3]), n_steps, context=self.contexts)
        except ContextUnreadable:  # weights that cannot read a held-out context are not kept
            return {f"crps_{h}": math.inf for h in self.horizons}
        returns = np.asarray(scaled, dtype=np.float64)[..., 0].reshape(len(self.contexts), n_paths, n_steps)
        paths = np.cumsum(returns * self.std + self.mean, axis=2)
        predicted = paths[:, :, np.asarray(self.horizons) - 1].transpose(0, 2, 1)  # (origins, horizons, paths)
        if not np.isfinite(predicted).all():
            return {f"crps_{h}": math.inf for h in self.horizons}
        return {
            f"crps_{h}": float(np.mean(crps(predicted[:, i], self.realised[:, i]))) / self.reference[h]
            for i, h in enumerate(self.horizons)
        }


def _run_left(mask: np.ndarray) -> np.ndarray:
    """For each row, how many rows from it on are True without a break (0 where it is False)."""
    out = np.zeros(len(mask), dtype=np.int64)
    count = 0
    for i in range(len(mask) - 1, -1, -1):
        count = count + 1 if mask[i] else 0
        out[i] = count
    return out
