"""The matplotlib figures of paths, backtest outcomes, regimes and training.

Every figure is drawn on its own Agg canvas: no pyplot state, no display needed. The report
pages (:mod:`synthmarket.pages`) embed them; notebooks get them from ``Paths.plot()``,
``MonteCarloResult.plot()``, ``sm.plot_paths`` and ``sm.plot_training``. The stylized
facts' grid is drawn by :mod:`synthmarket.facts.figure`.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from .errors import DataError
from .runs import read_training_log

if TYPE_CHECKING:
    from .paths import Paths

FAN_QUANTILES = (0.05, 0.25, 0.5, 0.75, 0.95)
REAL_HISTORY_BARS = 504
HISTOGRAM_METRICS = ("sharpe", "total_return", "max_drawdown")
METRIC_TITLES = {"sharpe": "Sharpe ratio", "total_return": "Total return", "max_drawdown": "Max drawdown"}
BLUE, BLACK, RED = "#3b6ea8", "#111111", "#c44e52"


def agg_figure(width: float, height: float, **kwargs):
    """A matplotlib Figure drawn on the Agg canvas."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), **kwargs)
    FigureCanvasAgg(fig)
    return fig


def plot_paths(paths: Paths, real: pd.DataFrame | None = None, *, history: int = REAL_HISTORY_BARS, n_lines: int = 5):
    """Fan chart: quantile bands (5/25/50/75/95%) of the synthetic closes, after the last ``history`` real bars.

    What ``Paths.plot()`` draws.

    Parameters
    ----------
    paths : Paths
        The synthetic paths.
    real : DataFrame, optional
        Real OHLCV bars; their last ``history`` closes are drawn in black before the fan.
    n_lines : int
        A few single paths drawn thinly, to show what one path looks like.

    Returns
    -------
    matplotlib.figure.Figure
    """
    fig = agg_figure(11, 4.6)
    ax = fig.add_subplot(1, 1, 1)
    if real is not None and len(real):
        shown = real.iloc[-history:]
        ax.plot(shown.index, shown["close"], color=BLACK, lw=1.1, label=f"real history (last {len(shown)} bars)")
    q = np.quantile(paths.close, FAN_QUANTILES, axis=0)
    ax.fill_between(paths.dates, q[0], q[4], color=BLUE, alpha=0.18, lw=0, label="synthetic 5-95%")
    ax.fill_between(paths.dates, q[1], q[3], color=BLUE, alpha=0.35, lw=0, label="synthetic 25-75%")
    ax.plot(paths.dates, q[2], color=BLUE, lw=1.6, label="synthetic median")
    for i in range(min(n_lines, paths.n_paths)):
        ax.plot(paths.dates, paths.close[i], color=BLUE, lw=0.5, alpha=0.55)
    ax.set_title(f"{paths.n_paths} synthetic paths of {paths.n_steps} bars")
    ax.set_ylabel("close")
    ax.grid(alpha=0.3)
    ax.legend(loc="upper left", fontsize=8)
    return fig


def outcome_histograms(
    results: pd.DataFrame, metrics: Iterable[str] = HISTOGRAM_METRICS, *, bins: int = 40, title: str | None = None
):
    """Histograms of backtest metrics over the synthetic paths, the real history marked in red.

    ``results`` is one row per path (``run_montecarlo``'s ``results``). Each panel's title
    gives the real history's value and its rank: the percent of synthetic paths at or below
    it, as :func:`synthmarket.montecarlo.summary.real_rank` counts it.
    """
    from .montecarlo.summary import outcomes, real_rank

    metrics = tuple(metrics)
    fig = agg_figure(4.2 * len(metrics), 3.5, layout="constrained")
    for k, metric in enumerate(metrics):
        ax = fig.add_subplot(1, len(metrics), k + 1)
        values, real = outcomes(results, metric)
        shown = values[np.isfinite(values)]
        if len(shown):
            ax.hist(shown, bins=bins, color=BLUE, alpha=0.8)
        panel = METRIC_TITLES.get(metric, metric.replace("_", " "))
        if np.isfinite(real):
            rank = real_rank(values, real)
            ax.axvline(real, color=RED, lw=2)
            panel += f"\nreal history {real:.3g}" + (f", {rank:.0f}% of paths at or below" if np.isfinite(rank) else "")
        ax.set_title(panel, fontsize=10)
        ax.set_ylabel("paths")
        ax.grid(alpha=0.3)
    if title:
        fig.suptitle(title)
    return fig


def regime_figure(table: pd.DataFrame):
    """Bars of volatility, excess kurtosis and ACF of |r| per regime, real against synthetic.

    ``table`` is a run's ``regimes.csv`` (:func:`synthmarket.regime_stats.regime_comparison`).
    """
    fig = agg_figure(11, 3.6, layout="constrained")
    names = table["regime"].astype(str).tolist()
    x = np.arange(len(names))
    for k, (stat, title) in enumerate(
        (("volatility", "Annualised volatility"), ("kurtosis", "Excess kurtosis"), ("acf_abs", "ACF of |r|, lags 1-10"))
    ):
        ax = fig.add_subplot(1, 3, k + 1)
        real = table[f"real_{stat}"].to_numpy(dtype=float)
        med = table[f"synthetic_{stat}"].to_numpy(dtype=float)
        lo = table[f"synthetic_{stat}_p5"].to_numpy(dtype=float)
        hi = table[f"synthetic_{stat}_p95"].to_numpy(dtype=float)
        ax.bar(x - 0.2, real, 0.4, color=BLACK, alpha=0.8, label="real bars in the regime")
        ax.bar(x + 0.2, med, 0.4, color=BLUE, alpha=0.8, label="synthetic (median, 5-95%)")
        ax.errorbar(
            x + 0.2, med, yerr=[np.maximum(med - lo, 0), np.maximum(hi - med, 0)], fmt="none", color="#333", capsize=4
        )
        ax.set_xticks(x, names)
        ax.set_title(title)
        ax.grid(alpha=0.3, axis="y")
        if k == 0:
            ax.legend(fontsize=8)
    return fig


def loss_keys(rows: list[dict]) -> list[str]:
    """The numeric columns of training-log rows that are losses (not step, time or event)."""
    skip = {"event", "step", "elapsed", "time"}
    keys: list[str] = []
    for row in rows:
        for key, value in row.items():
            if key not in skip and key not in keys and isinstance(value, (int, float)) and not isinstance(value, bool):
                keys.append(key)
    return keys


def training_curves(rows: list[dict]):
    """Losses (left) and the validation score (right) against the training step.

    ``rows`` are the training log's rows (:func:`synthmarket.runs.read_training_log`) or a
    :class:`~synthmarket.generator.TrainReport`'s ``history`` (validation rows only).
    Returns a matplotlib Figure, or None when the rows hold no curve.
    """
    steps = [r for r in rows if r.get("event", "step") == "step" and "validation" not in r]
    validations = [r for r in rows if r.get("event") == "validation" or ("validation" in r and "step" in r)]
    losses = loss_keys(steps)
    if not losses and not validations:
        return None
    panels = int(bool(losses)) + int(bool(validations))
    fig = agg_figure(6.2 * panels, 3.8, layout="constrained")
    k = 1
    if losses:
        ax = fig.add_subplot(1, panels, k)
        k += 1
        for key in losses:
            logged = [r for r in steps if isinstance(r.get(key), (int, float))]  # some losses are not logged every step
            x = np.array([r["step"] for r in logged], dtype=float)
            y = np.array([r[key] for r in logged], dtype=float)
            ax.plot(x, y, lw=0.7, alpha=0.35)
            window = max(1, len(y) // 25)
            smooth = pd.Series(y).rolling(window, min_periods=1).mean().to_numpy()
            ax.plot(x, smooth, lw=1.6, color=ax.lines[-1].get_color(), label=key, marker="o" if len(x) < 5 else None)
        ax.set(title="Training losses (thin: logged, thick: moving average)", xlabel="step")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    if validations:
        ax = fig.add_subplot(1, panels, k)
        x = np.array([r["step"] for r in validations], dtype=float)
        y = np.array([np.nan if r.get("validation") is None else r["validation"] for r in validations], dtype=float)
        ax.plot(x, y, "o-", color=BLUE, ms=3, label="validation score")
        finite = np.isfinite(y)
        if finite.any():
            best = int(np.nanargmin(np.where(finite, y, np.inf)))
            ax.plot(x[best], y[best], "*", color=RED, ms=14, label=f"best: {y[best]:.3g} at step {x[best]:.0f}")
        ax.axhline(1.0, color="grey", lw=0.8, ls="--", label="i.i.d. normal returns (1.0)")
        ax.set(title="Validation: stylized-facts distance to held-out data", xlabel="step", ylabel="lower is better")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    return fig


def plot_training(source):
    """Training curves of a model directory, a TrainReport or a fitted Generator.

    Raises
    ------
    DataError
        When there is nothing to draw (a generator fitted in closed form logs no curve).
    """
    if isinstance(source, (str, Path)):
        rows = read_training_log(source)
    else:
        report = getattr(source, "report", source)
        rows = list(getattr(report, "history", None) or [])
    fig = training_curves(rows)
    if fig is None:
        raise DataError(
            "This training logged no losses or validation scores to draw (classical generators fit in one go)."
        )
    return fig
