"""Glue to :mod:`synthmarket.distances` for the scorecard: the distances, the window scores
(memorisation, discriminative, predictive) and the curves the figure draws."""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import pandas as pd

from .. import distances as dist
from ..errors import DataError
from .base import HORIZONS, _band
from .estimators import excess_kurtosis

SCORES = {
    "memorisation": dist.memorisation_score,
    "discriminative": dist.discriminative_score,
    "predictive": dist.predictive_score,
}


def _quantile_curves(curves: np.ndarray) -> np.ndarray:
    return np.percentile(curves, [5, 50, 95], axis=0)


def _distances_and_curves(
    real: pd.DataFrame, real_returns: np.ndarray, returns: np.ndarray, max_lag: int, wanted: set[str], seed: int,
    timings: dict[str, float], notes: list[str], rng: np.random.Generator,
) -> tuple[dict[str, float], dict[str, Any]]:
    """The distances and window scores, and what the figure draws (timings and notes filled in)."""
    start = time.perf_counter()
    lag = max(1, min(max_lag, real_returns.size - 2, returns.shape[1] - 2))
    real_curves = dist.dependence_curves(real_returns, lag)
    synth_curves = dist.dependence_curves(returns, lag)
    timings["curves (ACF, leverage)"] = time.perf_counter() - start

    start = time.perf_counter()
    lags = tuple(k for k in dist.DEFAULT_LAGS if k < min(real_returns.size, returns.shape[1]))
    distances = dist.return_distances(real_returns, returns, lags=lags, max_lag=lag, curves=(real_curves, synth_curves))
    timings["distances (W1, ACF, leverage)"] = time.perf_counter() - start
    start = time.perf_counter()
    distances.update(dist.dy_distances(real_returns, returns, lags=lags))
    timings["distances (DY)"] = time.perf_counter() - start

    for name, score in SCORES.items():
        if name in wanted:
            label = f"{name} score"
            start = time.perf_counter()
            try:
                distances.update(score(real_returns, returns, seed=seed))
            except DataError as exc:
                notes.append(f"{label} skipped: {exc}")
            timings[label] = time.perf_counter() - start
    share = distances.get("memorisation_copy_share")
    if share is not None and share > dist.MEMORISATION_LIMIT:
        notes.append(
            f"Memorisation: {share:.0%} of synthetic {dist.SCORE_WINDOW}-day windows lie closer to a real window "
            f"than the closest {dist.COPY_QUANTILE:.0%} of real windows lie to each other; the generator "
            f"replays its training data."
        )

    pooled = returns.ravel()
    if pooled.size > 200_000:
        pooled = rng.choice(pooled, 200_000, replace=False)
    kurtosis = {h: excess_kurtosis(dist.rolling_sums(returns, h)) for h in HORIZONS if h < returns.shape[1] - 2}
    curves = {
        "real_returns": real_returns,
        "synthetic_sample": pooled,
        "real_curves": real_curves,
        "synthetic_curves": {k: _quantile_curves(v) for k, v in synth_curves.items()},
        "kurtosis_real": {h: float(excess_kurtosis(dist.rolling_sums(real_returns, h))) for h in kurtosis},
        "kurtosis_synthetic": {h: np.array(_band(v))[[1, 0, 2]] for h, v in kurtosis.items()},
        "real_close": real["close"].to_numpy(dtype=float),
        "sample_log_paths": np.cumsum(returns[: min(8, returns.shape[0])], axis=1),
    }
    return distances, curves
