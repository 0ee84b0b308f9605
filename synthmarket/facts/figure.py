"""The scorecard's figure: return density and QQ, ACF and leverage bands, kurtosis by
horizon and sample paths on one matplotlib grid.

Every synthetic band of a statistic is drawn beside the same statistic on real windows of
the paths' length (median and 5-95% band over the windows); the whole real series' curve is
the dashed reference line, since a statistic of a short path is biased against it."""

from __future__ import annotations

import textwrap
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from .results import Scorecard


def _band_plot(ax, x, synthetic, whole, windows=None, windows_label="", colour="tab:blue") -> None:
    """Quantiles (5, 50, 95% rows) over the synthetic paths and over the real windows; the whole real series."""
    ax.fill_between(x, synthetic[0], synthetic[2], color=colour, alpha=0.25, label="synthetic 5-95%")
    ax.plot(x, synthetic[1], color=colour, label="synthetic median")
    if windows is None:
        ax.plot(x, whole, color="black", lw=1.2, label="real")
    else:
        ax.fill_between(x, windows[0], windows[2], color="grey", alpha=0.3, label=f"{windows_label} 5-95%")
        ax.plot(x, windows[1], color="black", lw=1.2, label=f"{windows_label} median")
        ax.plot(x, whole, color="black", lw=1, ls="--", label="real, whole history")
    ax.axhline(0, color="grey", lw=0.5)


def plot_scorecard(card: Scorecard, n_sample_paths: int = 5):
    """The scorecard's figure (see :meth:`Scorecard.plot`); a matplotlib Figure, Agg backend."""
    from matplotlib.figure import Figure

    c = card.curves
    fig = Figure(figsize=(15, 12), layout="constrained")
    axes = fig.subplots(3, 3)
    real, synth = c["real_returns"], c["synthetic_sample"]
    window_curves, window_kurtosis = c["real_window_curves"], c["kurtosis_real_windows"]
    windows_label = f"real {card.n_steps}-step windows (n={c['real_windows']})"

    ax = axes[0, 0]
    lo, hi = np.percentile(np.r_[real, synth], [0.05, 99.95])
    bins = np.linspace(lo, hi, 121)
    ax.hist(synth, bins=bins, density=True, histtype="stepfilled", alpha=0.4, label="synthetic")
    ax.hist(real, bins=bins, density=True, histtype="step", color="black", label="real")
    ax.set_yscale("log")
    ax.set(title="Return density (log scale)", xlabel="daily log return")
    ax.legend()

    ax = axes[0, 1]
    q = np.linspace(0.001, 0.999, 400)
    qr, qs = np.quantile(real, q), np.quantile(synth, q)
    ax.plot(qr, qs, ".", ms=3)
    ax.plot([qr[0], qr[-1]], [qr[0], qr[-1]], color="black", lw=1)
    ax.set(title="QQ: synthetic against real", xlabel="real quantile", ylabel="synthetic quantile")

    for ax, key, title in (
        (axes[0, 2], "acf_r", "ACF of r"),
        (axes[1, 0], "acf_abs", "ACF of |r|"),
        (axes[1, 1], "acf_sq", "ACF of r$^2$"),
        (axes[1, 2], "leverage", "Leverage corr(r$_t$, r$_{t+k}^2$)"),
    ):
        curve = c["real_curves"][key]
        m = min(50, curve.size - 1) if key in ("acf_r", "leverage") else curve.size - 1
        lags = np.arange(1, m + 1)
        windows = None if window_curves is None else window_curves[key][:, 1 : m + 1]
        _band_plot(ax, lags, c["synthetic_curves"][key][:, 1 : m + 1], curve[1 : m + 1], windows, windows_label)
        ax.set(title=title, xlabel="lag k (days)")
    axes[0, 2].legend(fontsize=8)

    ax = axes[2, 0]
    horizons = sorted(c["kurtosis_synthetic"])
    band = np.array([c["kurtosis_synthetic"][h] for h in horizons]).T
    windows = None if window_kurtosis is None else np.array([window_kurtosis[h] for h in horizons]).T
    _band_plot(ax, horizons, band, [c["kurtosis_real"][h] for h in horizons], windows, windows_label)
    ax.set_xscale("log")
    ax.set_xticks(horizons, [str(h) for h in horizons])
    ax.set(title="Excess kurtosis against horizon", xlabel="horizon (days)")

    ax = fig.add_subplot(3, 3, (8, 9))
    axes[2, 1].remove()
    axes[2, 2].remove()
    sample = c["sample_log_paths"][:n_sample_paths]
    steps = sample.shape[1]
    real_close = c["real_close"][-(steps + 1) :]
    ax.plot(np.log(real_close / real_close[0]), color="black", lw=1.4, label=f"real (last {steps} days)")
    for i, path in enumerate(sample):
        ax.plot(np.r_[0.0, path], lw=0.8, alpha=0.8, label="synthetic" if i == 0 else None)
    ax.set(title="Sample paths (cumulative log return)", xlabel="step")
    ax.legend()
    fig.suptitle("\n".join(textwrap.wrap(f"Stylized facts: {card.summary()}", 170)), fontsize=11)
    return fig
