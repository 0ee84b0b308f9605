"""The report's calibration section: where the realised outcomes fell among the predicted ones.

A run directory holds a calibration in ``RUN/calibration/`` (``synthmarket calibrate --out
RUN/calibration``). The section shows, for each horizon, the PIT histogram (flat when the
predicted distributions are right), the 1 % and 5 % VaR over time with the days the realised
return fell below it, and the predicted volatility over the horizon against the realised
(square roots of the expected and the realised sums of squared daily returns), then the
table of the tests.
"""

from __future__ import annotations

import html
from pathlib import Path

import numpy as np
import pandas as pd

from .figures import agg_figure
from .page_parts import figure_to_data_uri, html_table, img_tag

CALIBRATION_DIR = "calibration"


def calibration_figure(scores: pd.DataFrame, horizon: int):
    """PIT histogram, VaR and hits over time, predicted volatility against the realised."""
    import matplotlib.dates as mdates

    rows = scores[scores["horizon"] == horizon]
    fig = agg_figure(13, 3.6)
    pit_ax, var_ax, vol_ax = fig.subplots(1, 3, gridspec_kw={"width_ratios": [1, 2, 1]})
    pit_ax.hist(rows["pit"], bins=10, range=(0, 1), color="#4c72b0", edgecolor="white")
    pit_ax.axhline(len(rows) / 10, color="black", linestyle="--", linewidth=1, label="uniform")
    pit_ax.set(title=f"PIT, {horizon}-bar returns", xlabel="PIT of the realised return", ylabel="origins")
    pit_ax.legend(frameon=False, fontsize=8)
    dates = pd.to_datetime(rows["date"])
    var_ax.plot(dates, rows["realised"], color="#999999", linewidth=0.7, label="realised")
    for level, color in (("0.05", "#dd8452"), ("0.01", "#c44e52")):
        var_ax.plot(dates, rows[f"var_{level}"], color=color, linewidth=1, label=f"VaR {float(level):.0%}")
        hits = rows[f"hit_{level}"].astype(bool)
        var_ax.scatter(dates[hits], rows.loc[hits, "realised"], color=color, s=12, zorder=3)
    var_ax.set(title="VaR and the days below it", ylabel=f"{horizon}-bar log return")
    locator = mdates.AutoDateLocator()
    var_ax.xaxis.set_major_locator(locator)
    var_ax.xaxis.set_major_formatter(mdates.ConciseDateFormatter(locator))
    var_ax.legend(frameon=False, fontsize=8, ncol=3)
    if "realised_vol" in rows:
        vol_ax.scatter(rows["predicted_vol"], rows["realised_vol"], s=6, alpha=0.5, color="#4c72b0")
        top = float(max(rows["predicted_vol"].max(), 1e-12))
        vol_ax.plot([0, top], [0, top], color="black", linestyle="--", linewidth=1)
        vol_ax.set(title=f"{horizon}-bar volatility", xlabel="predicted", ylabel="realised")
    else:  # a calibration saved before the volatilities were: the samples' sd against |realised|
        vol_ax.scatter(rows["predicted_vol"], rows["realised"].abs(), s=6, alpha=0.5, color="#4c72b0")
        top = float(max(rows["predicted_vol"].max(), 1e-12))
        vol_ax.plot([0, top], [0, top * np.sqrt(2 / np.pi)], color="black", linestyle="--", linewidth=1)
        vol_ax.set(title="predicted volatility", xlabel="predicted sd", ylabel="|realised|")
    fig.tight_layout()
    return fig


def calibration_section(run_dir: Path) -> str | None:
    """The section's HTML, or None when the run holds no finished calibration."""
    from .calibration.walkforward import SCORES, SUMMARY
    from .runs import read_json

    folder = Path(run_dir) / CALIBRATION_DIR
    if not (folder / SCORES).is_file() or not (folder / SUMMARY).is_file():
        return None
    scores = pd.read_csv(folder / SCORES)
    summary = read_json(folder / SUMMARY)
    body = (
        f"<h2>Calibration</h2><p>{html.escape(str(summary['generator']))} sampled from the market of each of "
        f"{summary['n_origins']} days, {summary['first_origin']}..{summary['last_origin']}, a period it was not "
        "trained on. A flat PIT histogram and VaR hit rates near their level mean the predicted distributions "
        "were right; the tests use origins at least a horizon apart, so that outcomes do not overlap, the CRPS "
        "and the volatility correlation every origin.</p>"
    )
    rows = []
    for horizon, s in summary["horizons"].items():
        body += img_tag(figure_to_data_uri(calibration_figure(scores, int(horizon))), f"calibration at {horizon} bars")
        for level, v in s["levels"].items():
            rows.append(
                {
                    "horizon": int(horizon),
                    "VaR level": f"{float(level):.0%}",
                    "origins tested": s["n"],
                    "hits (expected)": f"{v['hits']} ({v['expected_hits']:.1f})",
                    "Kupiec p": v["kupiec_p"],
                    "Christoffersen p": v["ind_p"],
                    "ES Z2 (p)": f"{v['es_z2']:.2f} ({v['es_p']:.2f})",
                    "mean CRPS": s["crps_mean"],
                    "vol. correlation": s["vol_pearson"],
                }
            )
    return body + html_table(pd.DataFrame(rows))
