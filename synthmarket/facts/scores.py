"""Glue to :mod:`synthmarket.distances` and :mod:`synthmarket.window_scores` for the scorecard: the
distances, the window scores (memorisation, discriminative, predictive) and the curves the figure draws."""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import pandas as pd

from .. import distances as dist
from .. import window_scores
from ..errors import DataError
from .base import HORIZONS, _band, real_windows
from .estimators import excess_kurtosis

SCORES = {
    "memorisation": window_scores.memorisation_score,
    "discriminative": window_scores.discriminative_score,
    "predictive": window_scores.predictive_score,
}


def _quantile_curves(curves: np.ndarray) -> np.ndarray:
    return np.percentile(curves, [5, 50, 95], axis=0)


def _kurtosis_bands(returns: np.ndarray) -> dict[int, np.ndarray]:
    """Per horizon, the 5%, 50% and 95% quantiles over rows of the excess kurtosis of overlapping sums."""
    bands = {}
    for h in HORIZONS:
        if h < returns.shape[-1] - 2:
            med, p5, p95 = _band(excess_kurtosis(dist.rolling_sums(returns, h)))
            bands[h] = np.array([p5, med, p95])
    return bands


def _distances_and_curves(
    real: pd.DataFrame,
    real_returns: np.ndarray,
    returns: np.ndarray,
    max_lag: int,
    wanted: set[str],
    seed: int,
    timings: dict[str, float],
    notes: list[str],
    rng: np.random.Generator,
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
    if share is not None and share > window_scores.MEMORISATION_LIMIT:
        notes.append(
            f"Memorisation: {share:.0%} of synthetic {window_scores.SCORE_WINDOW}-day windows lie closer to a real window "
            f"than the closest {window_scores.COPY_QUANTILE:.0%} of real windows lie to each other; the generator "
            f"replays its training data."
        )

    pooled = returns.ravel()
    if pooled.size > 200_000:
        pooled = rng.choice(pooled, 200_000, replace=False)
    kurtosis = _kurtosis_bands(returns)
    # the real curves the figure sets beside the synthetic bands: over real windows of the paths' length
    windows = real_windows(real_returns, returns.shape[1])
    curves = {
        "real_returns": real_returns,
        "synthetic_sample": pooled,
        "real_curves": real_curves,
        "synthetic_curves": {k: _quantile_curves(v) for k, v in synth_curves.items()},
        "real_windows": 0 if windows is None else len(windows),
        "real_window_curves": (
            None
            if windows is None
            else {k: _quantile_curves(v) for k, v in dist.dependence_curves(windows, lag).items()}
        ),
        "kurtosis_real": {h: float(excess_kurtosis(dist.rolling_sums(real_returns, h))) for h in kurtosis},
        "kurtosis_synthetic": kurtosis,
        "kurtosis_real_windows": None if windows is None else _kurtosis_bands(windows),
        "real_close": real["close"].to_numpy(dtype=float),
        "sample_log_paths": np.cumsum(returns[: min(8, returns.shape[0])], axis=1),
    }
    return distances, curves
