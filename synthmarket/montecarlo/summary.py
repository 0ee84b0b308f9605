"""The distribution of the metrics over the paths (:class:`Summary`) and a run's :class:`MonteCarloResult`."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from html import escape
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..errors import ConfigError
from ..paths import REAL
from .failures import SURVIVORS_WARNING, common_errors, error_line
from .metrics import METRICS
from .output import ANALYZERS_DIR, file_name, log_file
from .settings import Settings
from .storage import extra_columns

PERCENTILES = (5, 25, 50, 75, 95)


@dataclass
class Summary:
    """The distribution of each metric over the synthetic paths, and where the real history falls.

    Attributes
    ----------
    metrics : DataFrame
        One row per metric (and per analyzer column); columns ``mean, std, min, p5, p25, p50,
        p75, p95, max`` over the synthetic paths that ran to the end (the survivors), then
        ``real`` (the real history's value) and ``real_rank`` (percent of synthetic paths at or
        below it).
    n_paths, n_failed : int
        Synthetic paths in the results, and how many of them failed.
    prob_loss : float
        Fraction of the survivors that lost money (``total_return < 0``).
    es_return : float
        Expected shortfall of the total return: mean over the worst ``alpha`` share of survivors.
    es_drawdown : float
        Mean ``max_drawdown`` over the ``alpha`` share of survivors with the deepest drawdowns.
    alpha : float
        Tail share of the shortfalls (0.05).
    common_errors : list of (str, int, list of str)
        The most common errors of the failed paths: each error, how many paths, the first ids.
    with_failed : DataFrame or None
        When paths failed: the same table over every synthetic path, each failed path counted at
        its value when it failed (see :data:`~.failures.SURVIVORS_WARNING`).
    prob_loss_with_failed : float
        P(loss) counting the failed paths at their value when they failed.
    """

    metrics: pd.DataFrame
    n_paths: int
    n_failed: int
    prob_loss: float
    es_return: float
    es_drawdown: float
    alpha: float = 0.05
    common_errors: list[tuple[str, int, list[str]]] = field(default_factory=list)
    with_failed: pd.DataFrame | None = None
    prob_loss_with_failed: float = math.nan

    @classmethod
    def of(cls, results: pd.DataFrame, alpha: float = 0.05) -> Summary:
        synthetic = results[results["path"] != REAL]
        ok = synthetic[synthetic["error"].isna()]
        returns = np.sort(ok["total_return"].astype(float).dropna().to_numpy())
        drawdowns = np.sort(ok["max_drawdown"].astype(float).dropna().to_numpy())[::-1]
        tail = lambda n: max(1, math.ceil(alpha * n))  # noqa: E731
        n_failed = int(synthetic["error"].notna().sum())
        all_returns = synthetic["total_return"].astype(float).dropna().to_numpy()
        return cls(
            metrics=_table(results, survivors=True),
            n_paths=len(synthetic),
            n_failed=n_failed,
            prob_loss=_share_below_zero(returns),
            es_return=float(returns[: tail(len(returns))].mean()) if len(returns) else math.nan,
            es_drawdown=float(drawdowns[: tail(len(drawdowns))].mean()) if len(drawdowns) else math.nan,
            alpha=alpha,
            common_errors=common_errors(synthetic),
            with_failed=_table(results, survivors=False) if n_failed else None,
            prob_loss_with_failed=_share_below_zero(all_returns) if n_failed else math.nan,
        )

    def to_dict(self) -> dict[str, Any]:
        """Plain data for ``summary.json`` (NaN becomes null)."""
        table = lambda frame: {m: {k: _clean(float(v)) for k, v in row.items()} for m, row in frame.iterrows()}  # noqa: E731
        out = {
            "n_paths": self.n_paths,
            "n_failed": self.n_failed,
            "prob_loss": _clean(self.prob_loss),
            "es_return": _clean(self.es_return),
            "es_drawdown": _clean(self.es_drawdown),
            "alpha": self.alpha,
            "metrics": table(self.metrics),
        }
        if self.n_failed:
            out["failures"] = {
                "common_errors": [{"error": e, "paths": n, "first": ids} for e, n, ids in self.common_errors],
                "prob_loss_with_failed": _clean(self.prob_loss_with_failed),
                "metrics_with_failed": table(self.with_failed),
                "why": SURVIVORS_WARNING,
            }
        return out

    def _head(self) -> str:
        return (
            f"{self.n_paths} paths ({self.n_failed} failed); P(loss) = {_fmt(self.prob_loss)}; "
            f"ES{self.alpha:.0%} return = {_fmt(self.es_return)}; ES{self.alpha:.0%} drawdown = {_fmt(self.es_drawdown)}"
        )

    def _failures(self) -> str:
        errors = "; ".join(error_line(*item) for item in self.common_errors)
        return (
            f"Failed paths: {self.n_failed}. Most common: {errors}. Counting them at their value when they failed: "
            f"P(loss) = {_fmt(self.prob_loss_with_failed)}. {SURVIVORS_WARNING}"
        )

    def __str__(self) -> str:
        text = self._head() + "\n" + self.metrics.to_string(float_format=lambda x: f"{x:.4g}")
        if self.n_failed:
            text += "\n" + self._failures() + "\n" + self.with_failed.to_string(float_format=lambda x: f"{x:.4g}")
        return text

    def _repr_html_(self) -> str:
        html = f"<p>{escape(self._head())}</p>" + self.metrics.to_html(float_format=lambda x: f"{x:.4g}", na_rep="")
        if self.n_failed:
            html += f"<p>{escape(self._failures())}</p>"
            html += self.with_failed.to_html(float_format=lambda x: f"{x:.4g}", na_rep="")
        return html


def _table(results: pd.DataFrame, *, survivors: bool) -> pd.DataFrame:
    """Percentiles of every metric and analyzer column over the synthetic paths (the survivors,
    or every path with the failed ones at their value when they failed), and the real rank."""
    rows = {}
    for m in (*METRICS, *extra_columns(results)):
        values, real = outcomes(results, m, survivors=survivors)
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
    return pd.DataFrame.from_dict(rows, orient="index")


def _share_below_zero(returns: np.ndarray) -> float:
    return float(np.mean(returns < 0)) if len(returns) else math.nan


def _clean(x):
    return None if x is None or (isinstance(x, float) and math.isnan(x)) else x


def outcomes(results: pd.DataFrame, metric: str, *, survivors: bool = True) -> tuple[np.ndarray, float]:
    """``metric`` on the synthetic paths that ran to the end (or on all of them, the failed at
    their value when they failed), NaN dropped; and on the real history (NaN when it has none
    or it failed)."""
    ran = results["error"].isna()
    is_real = results["path"] == REAL
    kept = ~is_real & ran if survivors else ~is_real
    values = results.loc[kept, metric].astype(float).dropna().to_numpy()
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
        The run settings (cash, commission, sizer, analyzers, ...).
    out : Path or None
        The output directory, when results were written.
    seconds : float
        Wall time of the run.
    worker_cpu_seconds : float
        CPU time the workers spent backtesting in this run (not counting paths resumed).
    logs, analyses : dict
        Without ``out``: each path's output (paths that printed) and the analyzers' results
        that are not scalars, by path id. With ``out`` they are files; read them with
        :meth:`output` and :meth:`analysis`.
    """

    results: pd.DataFrame
    summary: Summary
    strategy: str
    params: dict[str, Any]
    settings: Settings
    out: Path | None = None
    seconds: float = math.nan
    worker_cpu_seconds: float = 0.0
    logs: dict[str, str] = field(default_factory=dict)
    analyses: dict[str, dict[str, Any]] = field(default_factory=dict)

    def output(self, path: str | int) -> str:
        """What the strategy printed on ``path`` (its stdout and stderr; "" when nothing)."""
        if self.out is None:
            return self.logs.get(str(path), "")
        file = log_file(self.out, str(path))
        return file.read_text(encoding="utf-8") if file.exists() else ""

    def analysis(self, path: str | int) -> dict[str, Any]:
        """The analyzers' results on ``path`` that are not columns of :attr:`results` (lists,
        series by date), by flattened name; {} when none."""
        if self.out is None:
            return self.analyses.get(str(path), {})
        file = self.out / ANALYZERS_DIR / file_name(str(path), ".json")
        return json.loads(file.read_text()) if file.exists() else {}

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
