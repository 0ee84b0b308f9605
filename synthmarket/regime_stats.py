"""Per regime: how paths sampled in one regime compare with the real bars labelled with it
(:func:`regime_comparison`, ``sm.regime_comparison``; a run's ``regimes.csv``).
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import pandas as pd

from .api import generate
from .distances import acf
from .errors import ConfigError
from .generator import Generator

__all__ = ["regime_comparison"]

ACF_LAGS = 10


def _abs_acf(returns: np.ndarray, mask: np.ndarray | None = None, lags: int = ACF_LAGS) -> np.ndarray:
    """Mean ACF of |r| over lags 1..``lags`` per row; with ``mask``, only pairs where both days are in it."""
    x = np.abs(np.atleast_2d(returns))
    inside = np.ones_like(x, dtype=bool) if mask is None else np.atleast_2d(mask)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # a row with no lag of enough pairs
        return np.nanmean(acf(x, lags, inside, min_pairs=11)[:, 1:], axis=1)


def _row_stats(returns: np.ndarray) -> dict[str, np.ndarray]:
    from scipy import stats

    returns = np.atleast_2d(returns)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return {
            "volatility": returns.std(axis=1) * np.sqrt(252),
            "mean": returns.mean(axis=1) * 252,
            "kurtosis": stats.kurtosis(returns, axis=1),
        }


def regime_comparison(
    model: Generator, real: pd.DataFrame, *, n_paths: int = 100, n_steps: int = 252, seed: int | None = 0
) -> pd.DataFrame:
    """Per regime: statistics of paths sampled in that regime against the real bars labelled with it.

    The paths are sampled unconditionally (``context=None``): a regime's own statistics, not
    those of a start from the market of one day.

    Statistics: annualised volatility and mean return, excess kurtosis, and the mean ACF of
    ``|r|`` over lags 1-10 (volatility clustering; on the real data, over pairs of days that
    are both in the regime). Synthetic values are the median and 5-95% band across paths.

    Raises
    ------
    ConfigError
        When the model was trained without regimes.
    """
    if model.scheme is None:
        raise ConfigError(
            f"This {model.name} model was trained without regimes; train it with regimes= to compare them."
        )
    labels = model.scheme.label(real)[1:]
    returns = np.diff(np.log(real["close"].to_numpy(dtype=float)))
    rows = []
    for k, name in enumerate(model.scheme.names):
        mask = labels == k
        synthetic = generate(
            model, n_paths, n_steps, regime=name, seed=None if seed is None else seed + k, context=None
        )
        synth_returns = synthetic.log_returns()
        real_stats = (
            {key: float(v[0]) for key, v in _row_stats(returns[mask][None, :]).items()} if mask.sum() > 2 else {}
        )
        synth_stats = _row_stats(synth_returns)
        synth_stats["acf_abs"] = _abs_acf(synth_returns)
        row: dict[str, Any] = {"regime": name, "real_share": float(mask.mean())}
        for stat in ("volatility", "mean", "kurtosis", "acf_abs"):
            if stat == "acf_abs":
                row["real_acf_abs"] = float(_abs_acf(returns[None, :], mask[None, :])[0]) if mask.sum() > 20 else np.nan
            else:
                row[f"real_{stat}"] = real_stats.get(stat, np.nan)
            values = synth_stats[stat][np.isfinite(synth_stats[stat])]
            p5, p50, p95 = np.percentile(values, [5, 50, 95]) if values.size else (np.nan,) * 3
            row[f"synthetic_{stat}"], row[f"synthetic_{stat}_p5"], row[f"synthetic_{stat}_p95"] = p50, p5, p95
        rows.append(row)
    return pd.DataFrame(rows)
