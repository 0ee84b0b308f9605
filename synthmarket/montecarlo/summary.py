"""The distribution of the metrics over the paths (:class:`Summary`) and a run's :class:`MonteCarloResult`."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..errors import ConfigError
from ..paths import REAL
from .metrics import METRICS, Settings

PERCENTILES = (5, 25, 50, 75, 95)


@dataclass
class Summary:
    """The distribution of each metric over the synthetic paths, and where the real history falls.

    Attributes
    ----------
    metrics : DataFrame
        One row per metric; columns ``mean, std, min, p5, p25, p50, p75, p95, max`` over the
        synthetic paths that ran, then ``real`` (the real history's value) and ``real_rank``
        (percent of synthetic paths at or below it).
    n_paths, n_failed : int
        Synthetic paths in the results, and how many of them failed.
    prob_loss : float
        Fraction of paths that lost money (``total_return < 0``).
    es_return : float
        Expected shortfall of the total return: mean over the worst ``alpha`` share of paths.
    es_drawdown : float
        Mean ``max_drawdown`` over the ``alpha`` share of paths with the deepest drawdowns.
    alpha : float
        Tail share of the shortfalls (0.05).
    """

    metrics: pd.DataFrame
    n_paths: int
    n_failed: int
    prob_loss: float
    es_return: float
    es_drawdown: float
    alpha: float = 0.05

    @classmethod
    def of(cls, results: pd.DataFrame, alpha: float = 0.05) -> Summary:
        synthetic = results[results["path"] != REAL]
        ok = synthetic[synthetic["error"].isna()]
        rows = {}
        for m in METRICS:
            values, real = outcomes(results, m)
            stats = dict.fromkeys(("mean", "std", "min", *(f"p{q}" for q in PERCENTILES), "max"), math.nan)
            if len(values):
                stats.update(
                    mean=values.mean(),
                    std=values.std(ddof=1) if len(values) > 1 else math.nan,
                    min=values.min(),
                    max=values.max(),
                )
                stats.update({f"p{q}": v for q, v in zip(PERCENTILES, np.percentile(values, PERCENTILES))})
            stats.update(real=real, real_rank=real_rank(values, real))
            rows[m] = stats
        returns = np.sort(ok["total_return"].astype(float).dropna().to_numpy())
        drawdowns = np.sort(ok["max_drawdown"].astype(float).dropna().to_numpy())[::-1]
        tail = lambda n: max(1, math.ceil(alpha * n))  # noqa: E731
        return cls(
            metrics=pd.DataFrame.from_dict(rows, orient="index"),
            n_paths=len(synthetic),
            n_failed=int(synthetic["error"].notna().sum()),
            prob_loss=float(np.mean(returns < 0)) if len(returns) else math.nan,
            es_return=float(returns[: tail(len(returns))].mean()) if len(returns) else math.nan,
            es_drawdown=float(drawdowns[: tail(len(drawdowns))].mean()) if len(drawdowns) else math.nan,
            alpha=alpha,
        )

    def to_dict(self) -> dict[str, Any]:
        """Plain data for ``summary.json`` (NaN becomes null)."""
        clean = lambda x: None if x is None or (isinstance(x, float) and math.isnan(x)) else x  # noqa: E731
        return {
            "n_paths": self.n_paths,
            "n_failed": self.n_failed,
            "prob_loss": clean(self.prob_loss),
            "es_return": clean(self.es_return),
            "es_drawdown": clean(self.es_drawdown),
            "alpha": self.alpha,
            "metrics": {m: {k: clean(float(v)) for k, v in row.items()} for m, row in self.metrics.iterrows()},
        }

    def __str__(self) -> str:
        head = (
            f"{self.n_paths} paths ({self.n_failed} failed); P(loss) = {_fmt(self.prob_loss)}; "
            f"ES{self.alpha:.0%} return = {_fmt(self.es_return)}; ES{self.alpha:.0%} drawdown = {_fmt(self.es_drawdown)}"
        )
        return head + "\n" + self.metrics.to_string(float_format=lambda x: f"{x:.4g}")

    def _repr_html_(self) -> str:
        head = (
            f"<p>{self.n_paths} paths ({self.n_failed} failed); P(loss) = {_fmt(self.prob_loss)}; "
            f"ES{self.alpha:.0%} of return = {_fmt(self.es_return)}; "
            f"ES{self.alpha:.0%} of max drawdown = {_fmt(self.es_drawdown)}</p>"
        )
        return head + self.metrics.to_html(float_format=lambda x: f"{x:.4g}", na_rep="")


def outcomes(results: pd.DataFrame, metric: str) -> tuple[np.ndarray, float]:
    """``metric`` on the synthetic paths that ran (NaN dropped), and on the real history (NaN when it has none)."""
    ran = results["error"].isna()
    is_real = results["path"] == REAL
    values = results.loc[~is_real & ran, metric].astype(float).dropna().to_numpy()
    real = results.loc[is_real & ran, metric].astype(float)
    return values, float(real.iloc[0]) if len(real) else math.nan


def real_rank(values: np.ndarray, real: float) -> float:
    """The real history's rank: the percent of synthetic ``values`` at or below ``real``.

    NaN when there is no value to rank it among, or ``real`` is NaN.
    """
    values = np.asarray(values, dtype=float)
    values = values[~np.isnan(values)]
    if not len(values) or math.isnan(real):
        return math.nan
    return 100.0 * float(np.mean(values <= real))


def _fmt(x: float) -> str:
    return "n/a" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:.4g}"


@dataclass
class MonteCarloResult:
    """What :func:`run_montecarlo` returns.

    Attributes
    ----------
    results : DataFrame
        One row per path (``path``, the metrics, ``error``); the real history is ``path == "real"``.
    summary : Summary
        The distribution of the metrics over the synthetic paths.
    strategy : str
        The strategy as it was named.
    params : dict
        Its parameters (after type checking).
    settings : Settings
        Cash, commission and slippage.
    out : Path or None
        The output directory, when results were written.
    seconds : float
        Wall time of the run.
    worker_cpu_seconds : float
        CPU time the workers spent backtesting in this run (not counting paths resumed).
    """

    results: pd.DataFrame
    summary: Summary
    strategy: str
    params: dict[str, Any]
    settings: Settings
    out: Path | None = None
    seconds: float = math.nan
    worker_cpu_seconds: float = 0.0

    @property
    def synthetic(self) -> pd.DataFrame:
        """The rows of the synthetic paths."""
        return self.results[self.results["path"] != REAL]

    @property
    def real(self) -> pd.Series | None:
        """The real history's row, or None."""
        rows = self.results[self.results["path"] == REAL]
        return None if rows.empty else rows.iloc[0]

    @property
    def errors(self) -> pd.DataFrame:
        """The rows of paths that failed."""
        return self.results[self.results["error"].notna()]

    def plot(self, metrics: tuple[str, ...] = ("sharpe", "total_return", "max_drawdown"), bins: int = 40):
        """Histograms of ``metrics`` over the synthetic paths, the real history marked in red.

        Returns a ``matplotlib.figure.Figure`` (drawn with the Agg canvas; no display needed).
        """
        from ..figures import outcome_histograms

        unknown = [m for m in metrics if m not in METRICS]
        if unknown:
            raise ConfigError(f"Cannot plot {', '.join(unknown)}; metrics are {', '.join(METRICS)}.")
        n_ok = int(self.synthetic["error"].isna().sum())
        return outcome_histograms(self.results, metrics, bins=bins, title=f"{self.strategy}: {n_ok} synthetic paths")

    def __repr__(self) -> str:
        return (
            f"MonteCarloResult({self.strategy}, {self.summary.n_paths} paths, {self.summary.n_failed} failed, "
            f"median sharpe {_fmt(self.summary.metrics.loc['sharpe', 'p50'])})"
        )

    def _repr_html_(self) -> str:
        params = ", ".join(f"{k}={v!r}" for k, v in self.params.items()) or "defaults"
        return f"<h4>Monte-Carlo backtest of {self.strategy} ({params})</h4>" + self.summary._repr_html_()
