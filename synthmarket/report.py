"""One self-contained HTML report of a run: figures embedded, nothing fetched.

A *run directory* is what ``synthmarket demo`` (or a user's own script) writes:

- ``run.json``: the configuration (generator, seeds, data range, versions);
- ``scenarios.parquet``: the synthetic paths (long format, see :class:`~synthmarket.paths.Paths`);
- ``real.parquet``: the real bars the paths are compared with;
- ``facts/``: ``scorecard.csv`` (one row per fact) and ``scorecard.png`` (the figure grid);
- ``backtest/``: ``results.parquet`` (one row per path, plus ``real``) and ``summary.json``.

Every part is optional; the report shows what the directory holds.
"""

from __future__ import annotations

import base64
import html
import io
import json
from pathlib import Path

import numpy as np
import pandas as pd

from .errors import DataError
from .paths import Paths

FAN_QUANTILES = (0.05, 0.25, 0.5, 0.75, 0.95)
HISTOGRAM_METRICS = (("sharpe", "Sharpe ratio"), ("total_return", "Total return"), ("max_drawdown", "Max drawdown"))

STYLE = """
body { font-family: -apple-system, Segoe UI, Helvetica, Arial, sans-serif; margin: 2em auto; max-width: 1100px;
       color: #222; line-height: 1.45; padding: 0 1em; }
h1 { margin-bottom: 0.2em; } h2 { border-bottom: 1px solid #ddd; padding-bottom: 0.2em; margin-top: 1.8em; }
table { border-collapse: collapse; margin: 0.8em 0; font-size: 0.9em; }
th, td { border: 1px solid #ddd; padding: 0.3em 0.6em; text-align: right; }
th { background: #f4f4f4; } td:first-child, th:first-child { text-align: left; }
img { max-width: 100%; border: 1px solid #eee; }
.pass { color: #1a7f37; font-weight: bold; } .fail { color: #cf222e; font-weight: bold; }
.muted { color: #666; font-size: 0.9em; }
"""


def figure_to_data_uri(fig) -> str:
    """A matplotlib figure as an embedded PNG (``data:`` URI)."""
    import matplotlib.pyplot as plt

    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110, bbox_inches="tight")
    plt.close(fig)
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()


def file_to_data_uri(path: Path) -> str:
    return "data:image/png;base64," + base64.b64encode(path.read_bytes()).decode()


def fan_chart(paths: Paths, real: pd.DataFrame | None = None):
    """Quantile bands (5/25/50/75/95%) of synthetic closes beside the real history."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(10, 4.5))
    if real is not None and len(real):
        ax.plot(real.index, real["close"], color="black", lw=1.2, label="real history")
    q = np.quantile(paths.close, FAN_QUANTILES, axis=0)
    ax.fill_between(paths.dates, q[0], q[4], color="tab:blue", alpha=0.18, label="5-95%")
    ax.fill_between(paths.dates, q[1], q[3], color="tab:blue", alpha=0.35, label="25-75%")
    ax.plot(paths.dates, q[2], color="tab:blue", lw=1.5, label="median")
    for i in range(min(5, paths.n_paths)):
        ax.plot(paths.dates, paths.close[i], color="tab:blue", lw=0.5, alpha=0.5)
    ax.set_title(f"{paths.n_paths} synthetic paths of {paths.n_steps} bars")
    ax.set_ylabel("close")
    ax.legend(loc="upper left", fontsize=8)
    fig.autofmt_xdate()
    return fig


def outcome_histograms(results: pd.DataFrame):
    """Histograms of Sharpe, total return and max drawdown across paths, real history marked."""
    import matplotlib.pyplot as plt

    synthetic = results[(results["path"].astype(str) != "real") & results["error"].isna()]
    real = results[results["path"].astype(str) == "real"]
    fig, axes = plt.subplots(1, len(HISTOGRAM_METRICS), figsize=(13, 3.6))
    for ax, (column, title) in zip(axes, HISTOGRAM_METRICS):
        values = synthetic[column].replace([np.inf, -np.inf], np.nan).dropna()
        ax.hist(values, bins=40, color="tab:blue", alpha=0.75)
        if len(real) and np.isfinite(real[column].iloc[0]):
            ax.axvline(real[column].iloc[0], color="black", lw=2, label="real history")
            ax.legend(fontsize=8)
        ax.set_title(title)
    fig.tight_layout()
    return fig


def _table(frame: pd.DataFrame, floatfmt: str = "{:.4g}") -> str:
    def cell(value) -> str:
        if isinstance(value, (bool, np.bool_)):
            cls = "pass" if value else "fail"
            return f'<td class="{cls}">{"pass" if value else "FAIL"}</td>'
        if isinstance(value, (float, np.floating)):
            return f"<td>{floatfmt.format(value)}</td>"
        return f"<td>{html.escape(str(value))}</td>"

    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in frame.columns)
    rows = "".join("<tr>" + "".join(cell(v) for v in row) + "</tr>" for row in frame.itertuples(index=False))
    return f"<table><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>"


def _img(uri: str, alt: str) -> str:
    return f'<img src="{uri}" alt="{html.escape(alt)}">'


def build_report(run_dir: str | Path, out: str | Path | None = None) -> Path:
    """Write ``report.html`` for a run directory and return its path.

    Raises
    ------
    DataError
        When ``run_dir`` does not exist or holds nothing to report.
    """
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise DataError(f"No such run directory: {str(run_dir)!r}. Run `synthmarket demo` or give a run's --out directory.")
    sections: list[str] = []
    config = json.loads((run_dir / "run.json").read_text()) if (run_dir / "run.json").is_file() else {}

    real = pd.read_parquet(run_dir / "real.parquet") if (run_dir / "real.parquet").is_file() else None
    if (run_dir / "scenarios.parquet").is_file():
        paths = Paths.load(run_dir / "scenarios.parquet")
        sections.append("<h2>Synthetic prices</h2>" + _img(figure_to_data_uri(fan_chart(paths, real)), "fan chart"))
        regime_figure = run_dir / "regimes.png"
        if regime_figure.is_file():
            sections.append("<h2>Per-regime comparison</h2>" + _img(file_to_data_uri(regime_figure), "regimes"))

    facts = run_dir / "facts"
    if (facts / "scorecard.csv").is_file():
        card = pd.read_csv(facts / "scorecard.csv")
        verdict = ""
        if "passed" in card.columns:
            n_pass = int(card["passed"].astype(bool).sum())
            verdict = f"<p>{n_pass} of {len(card)} stylized facts pass.</p>"
        body = f"<h2>Stylized facts</h2>{verdict}{_table(card)}"
        if (facts / "distances.json").is_file():
            distances = json.loads((facts / "distances.json").read_text())
            frame = pd.DataFrame({"distance": list(distances), "value": list(distances.values())})
            body += "<h3>Distances to the real data</h3>" + _table(frame)
        if (facts / "scorecard.png").is_file():
            body += _img(file_to_data_uri(facts / "scorecard.png"), "stylized facts figure grid")
        sections.append(body)

    backtest = run_dir / "backtest"
    if (backtest / "results.parquet").is_file():
        results = pd.read_parquet(backtest / "results.parquet")
        body = "<h2>Backtest outcomes</h2>"
        if (backtest / "summary.json").is_file():
            summary = json.loads((backtest / "summary.json").read_text())
            body += _summary_html(summary)
        body += _img(figure_to_data_uri(outcome_histograms(results)), "outcome histograms")
        sections.append(body)

    if not sections:
        raise DataError(f"{str(run_dir)!r} holds nothing to report (no scenarios, facts or backtest results).")
    sections.append("<h2>Configuration</h2><pre>" + html.escape(json.dumps(config, indent=2)) + "</pre>")
    title = html.escape(config.get("title", "synthmarket report"))
    page = (
        f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{title}</title><style>{STYLE}</style></head>"
        f"<body><h1>{title}</h1><p class='muted'>{html.escape(config.get('subtitle', ''))}</p>"
        + "".join(sections)
        + "</body></html>"
    )
    out = Path(out) if out is not None else run_dir / "report.html"
    out.write_text(page, encoding="utf-8")
    return out


def _summary_html(summary: dict) -> str:
    """A summary dict of scalars and {metric: {stat: value}} tables, as HTML."""
    scalars = {k: v for k, v in summary.items() if not isinstance(v, (dict, list))}
    tables = {k: v for k, v in summary.items() if isinstance(v, dict)}
    out = ""
    if scalars:
        out += _table(pd.DataFrame({"": list(scalars), "value": list(scalars.values())}))
    for name, table in tables.items():
        try:
            frame = pd.DataFrame(table)
        except ValueError:
            frame = pd.DataFrame({"": list(table), "value": list(table.values())})
        frame = frame.reset_index().rename(columns={"index": ""})
        out += f"<h3>{html.escape(name.replace('_', ' '))}</h3>" + _table(frame)
    return out
