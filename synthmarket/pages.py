"""The run report: one self-contained HTML page (figures embedded, nothing fetched) of what a
run directory (:mod:`synthmarket.runs`) holds.

:func:`build_report` writes it; the training report of a model directory is
:func:`synthmarket.training_page.build_training_report`, and the parts both pages share (the style
sheet, :func:`~synthmarket.page_parts.html_table`, the embedded figures) are in
:mod:`synthmarket.page_parts`.
"""

from __future__ import annotations

import html
import json
from pathlib import Path

import numpy as np
import pandas as pd

from .calibration_page import calibration_section
from .errors import DataError
from .figures import outcome_histograms, plot_paths, regime_figure
from .outdir import write_text_atomic
from .page_parts import (
    cards_html,
    figure_to_data_uri,
    file_to_data_uri,
    fmt_number,
    html_table,
    img_tag,
    page_html,
    total_return_quantiles,
)
from .paths import Paths
from .runs import (
    BACKTEST_DIR,
    FACTS_DIR,
    REAL_FILE,
    REGIMES_FILE,
    REPORT_FILE,
    RUN_FILE,
    SCENARIOS_FILE,
    read_json,
    read_table,
)

PERCENT_METRICS = ("total_return", "cagr", "volatility", "max_drawdown", "win_rate", "exposure")
SUMMARY_COLUMNS = ("p5", "p25", "p50", "p75", "p95", "real", "real_rank")
#: scorecard.csv's columns, in the order the report shows them, and their headings there
FACT_STATISTIC_COLUMNS = {
    "fact": "fact",
    "statistic": "statistic",
    "median": "synthetic median",
    "real_windows_median": "real windows median",
    "real_window_percentile": "percentile among real windows",
    "p5": "synthetic 5%",
    "p95": "synthetic 95%",
    "real_windows_p5": "real windows 5%",
    "real_windows_p95": "real windows 95%",
    "real": "real, whole series",
    "verdict": "verdict",
}
REGIME_STATISTICS = {
    "volatility": "annualised volatility",
    "mean": "annualised mean return",
    "kurtosis": "excess kurtosis",
    "acf_abs": "mean ACF of |r|, lags 1-10",
}


# -- the run report ------------------------------------------------------------------------------------
def _prices_section(run_dir: Path, real: pd.DataFrame | None) -> tuple[str, Paths] | None:
    if not (run_dir / SCENARIOS_FILE).is_file():
        return None
    paths = Paths.load(run_dir / SCENARIOS_FILE)
    q = total_return_quantiles(paths)
    table = pd.DataFrame([["total return over the path", *q]], columns=["", "5%", "25%", "50%", "75%", "95%"])
    body = (
        "<h2>Synthetic prices</h2>"
        f"<p>{paths.n_paths} paths of {paths.n_steps} bars ({paths.dates[0]:%Y-%m-%d} to {paths.dates[-1]:%Y-%m-%d}), "
        f"starting from the last real close.{_from_today(real, paths)} Bands: 5/25/50/75/95% quantiles of the "
        "close across paths.</p>"
        + img_tag(figure_to_data_uri(plot_paths(paths, real)), "fan chart of synthetic prices beside the real history")
        + html_table(table, percent_rows=["total return over the path"])
    )
    return body, paths


def _from_today(real: pd.DataFrame | None, paths: Paths) -> str:
    """Where the paths start from: the real market's last day before them and its volatility
    then (annualised, over its last 20 returns)."""
    if real is None:
        return ""
    before = real.loc[real.index < paths.dates[0], "close"]
    if len(before) < 21:
        return ""
    vol = float(np.log(before.iloc[-21:]).diff().dropna().std() * np.sqrt(252))
    return (
        f" They start from the market of {before.index[-1]:%Y-%m-%d}, whose 20-day volatility was {vol:.1%} "
        "(a model that uses the market's state starts from it; the others from their long-run mix)."
    )


def _regimes_section(run_dir: Path) -> str | None:
    file = run_dir / REGIMES_FILE
    if not file.is_file():
        return None
    table = read_table(file)
    needed = {"regime", *(f"{p}_{s}" for p in ("real", "synthetic") for s in ("volatility", "kurtosis", "acf_abs"))}
    body = (
        "<h2>Per-regime comparison</h2><p>Paths sampled in one regime throughout, against the real bars "
        "labelled with that regime.</p>"
    )
    if not needed <= set(table.columns):
        return body + html_table(table)
    body += img_tag(figure_to_data_uri(regime_figure(table)), "per-regime comparison")
    if "real_share" in table.columns:
        shares = ", ".join(f"{r} {100 * s:.0f}%" for r, s in zip(table["regime"], table["real_share"]))
        body += f"<p>Share of the real days in each regime: {html.escape(shares)}.</p>"
    rows = []
    for record in table.to_dict(orient="records"):
        for stat, label in REGIME_STATISTICS.items():
            if f"synthetic_{stat}" in record:
                rows.append(
                    {
                        "regime": record["regime"],
                        "statistic": label,
                        "real": record.get(f"real_{stat}"),
                        "synthetic median": record[f"synthetic_{stat}"],
                        "synthetic 5%": record.get(f"synthetic_{stat}_p5"),
                        "synthetic 95%": record.get(f"synthetic_{stat}_p95"),
                    }
                )
    return body + html_table(pd.DataFrame(rows), text_columns=["regime", "statistic"])


def _facts_section(run_dir: Path) -> tuple[str, str | None] | None:
    from .facts.results import MIN_REAL_WINDOW_SHARE

    facts = run_dir / FACTS_DIR
    files = [facts / name for name in ("verdicts.csv", "scorecard.csv", "scorecard.png")]
    if not any(f.is_file() for f in files):
        return None
    body, headline = "<h2>Stylized facts</h2>", None
    meta = read_json(facts / "distances.json") if (facts / "distances.json").is_file() else {}
    if (facts / "verdicts.csv").is_file():
        # pandas reads the verdict "n/a" as a missing value
        verdicts = read_table(facts / "verdicts.csv")
        verdicts = verdicts.fillna({c: "n/a" for c in ("verdict", "holds on real", "holds on real windows")}).fillna("")
        judged = verdicts[verdicts["verdict"] != "n/a"]
        n_pass = int((judged["verdict"] == "pass").sum())
        headline = f"{n_pass} / {len(judged)}"
        body += (
            f"<p><b>{n_pass} of {len(judged)}</b> stylized facts hold on the synthetic paths. "
            "Each rule is judged on the synthetic paths; <i>holds on real</i> applies it to the whole real "
            "series; <i>holds on real windows</i> is how often the non-overlapping real windows as long as "
            f"the paths, resampled as sets of paths, pass it. A rule they pass less than "
            f"{MIN_REAL_WINDOW_SHARE:.0%} of the time cannot tell a model from the market at this length: it "
            "reads <i>n/a</i>, cannot judge at this length.</p>"
        )
        # runs written before the real windows were resampled hold a pass/FAIL there
        columns = [c for c in ("verdict", "holds on real", "holds on real windows") if c in verdicts.columns]
        body += html_table(verdicts, verdict_columns=columns, text_columns=["rule"])
    if meta.get("notes"):
        body += "<ul>" + "".join(f"<li>{html.escape(str(n))}</li>" for n in meta["notes"]) + "</ul>"
    if (facts / "scorecard.png").is_file():
        body += img_tag(file_to_data_uri(facts / "scorecard.png"), "stylized facts figure grid")
    if (facts / "scorecard.csv").is_file():
        statistics = (
            read_table(facts / "scorecard.csv").fillna({"verdict": "n/a"}).rename(columns=FACT_STATISTIC_COLUMNS)
        )
        statistics = statistics[[c for c in FACT_STATISTIC_COLUMNS.values() if c in statistics.columns]]
        body += (
            "<h3>Synthetic against real windows of the same length</h3><p class='muted'>Each statistic's "
            "synthetic median and 5-95% band over paths, beside its median and band over the real windows "
            "as long as the paths; the percentile is where the synthetic median sits among those windows "
            "(50: like a typical real window; near 0 or 100: unlike almost all). The whole real series' "
            "value is the last column: short paths cannot be expected to match it.</p>"
            + html_table(statistics, verdict_columns=["verdict"], text_columns=["fact", "statistic"])
        )
    distances = meta.get("distances", meta if "summary" not in meta else {})
    if distances:
        frame = pd.DataFrame(
            {"distance": list(distances), "value": [np.nan if v is None else v for v in distances.values()]}
        )
        body += (
            "<details><summary>Distances and scores to the real returns</summary>" + html_table(frame) + "</details>"
        )
    return body, headline


def _backtest_section(run_dir: Path) -> tuple[str, list[tuple[str, str]]] | None:
    # the demo's run keeps its backtest in backtest/; `synthmarket backtest --out` is a run of its own
    backtest = next((d for d in (run_dir / BACKTEST_DIR, run_dir) if (d / "results.parquet").is_file()), None)
    if backtest is None:
        return None
    results = read_table(backtest / "results.parquet")
    summary = read_json(backtest / "summary.json") if (backtest / "summary.json").is_file() else {}
    params = ", ".join(f"{k}={v}" for k, v in (summary.get("params") or {}).items()) or "default parameters"
    strategy = summary.get("strategy", "the strategy")
    n_paths = int((results["path"].astype(str) != "real").sum())
    body = (
        f"<h2>Backtest outcomes</h2><p>{html.escape(str(strategy))} ({html.escape(params)}) on {n_paths} synthetic "
        "paths and on the real history (red line). <i>real rank %</i> is the percent of synthetic paths at or "
        "below the real history's value.</p>"
    )
    body += img_tag(
        figure_to_data_uri(outcome_histograms(results)), "histograms of Sharpe, total return and max drawdown"
    )
    cards: list[tuple[str, str]] = []
    metrics = summary.get("metrics") or {}
    if metrics:
        frame = pd.DataFrame(metrics).T
        frame = frame[[c for c in SUMMARY_COLUMNS if c in frame.columns]].astype(float)
        frame = frame.rename(columns={"real_rank": "real rank %"})
        body += html_table(frame, index=True, percent_rows=PERCENT_METRICS)
        sharpe = metrics.get("sharpe", {})
        cards.append(("median Sharpe of synthetic paths", fmt_number(sharpe.get("p50"))))
        cards.append(("Sharpe of the real history", fmt_number(sharpe.get("real"))))
    extra = {
        "paths that lost money": summary.get("prob_loss"),
        f"expected shortfall of return ({summary.get('alpha', 0.05):.0%} worst)": summary.get("es_return"),
        "expected shortfall of max drawdown": summary.get("es_drawdown"),
    }
    shown = {k: v for k, v in extra.items() if v is not None}
    if shown:
        body += html_table(pd.DataFrame({"": list(shown), "value": list(shown.values())}), percent_rows=list(shown))
        if summary.get("prob_loss") is not None:
            cards.append(("paths that lost money", fmt_number(summary["prob_loss"], percent=True)))
    body += _failures(summary.get("failures"), summary.get("n_failed", 0), n_paths)
    return body, cards


def _failures(failures: dict | None, n_failed: int, n_paths: int) -> str:
    """How many paths failed and why, and the outcomes counting them at their value when they failed."""
    if not failures:
        return ""
    errors = "".join(
        f"<li>{item['paths']} x <code>{html.escape(str(item['error']))}</code> (paths "
        f"{html.escape(', '.join(item.get('first', [])))})</li>"
        for item in failures["common_errors"]
    )
    frame = pd.DataFrame(failures["metrics_with_failed"]).T
    frame = frame.loc[["final_value", "total_return", "max_drawdown"], list(SUMMARY_COLUMNS[:5])].astype(float)
    return (
        f"<h3>Failed paths</h3><p class='fail'>{n_failed} of {n_paths} synthetic paths failed. The most common "
        f"errors:</p><ul>{errors}</ul><p>Counting the failed paths at their value when they failed, P(loss) is "
        f"{fmt_number(failures.get('prob_loss_with_failed'), percent=True)}. {html.escape(failures['why'])}</p>"
        + html_table(frame, index=True, percent_rows=PERCENT_METRICS)
    )


def _config_section(config: dict) -> str:
    keys = (
        "generator",
        "model",
        "hyperparameters",
        "data",
        "data_range",
        "regimes",
        "time_budget",
        "training",
        "n_paths",
        "n_steps",
        "seed",
        "strategy",
        "real_backtest_range",
        "jobs",
        "created",
        "seconds",
    )
    rows = []
    for key in keys:
        if key in config and config[key] is not None:
            value = config[key]
            rows.append((key.replace("_", " "), json.dumps(value) if isinstance(value, (dict, list)) else str(value)))
    versions_ = config.get("versions") or {}
    if versions_:
        rows.append(("versions", ", ".join(f"{k} {v}" for k, v in versions_.items())))
    table = html_table(pd.DataFrame(rows, columns=["setting", "value"]), text_columns=["value"]) if rows else ""
    return (
        "<h2>Configuration</h2>"
        + table
        + "<details><summary>run.json</summary><pre>"
        + html.escape(json.dumps(config, indent=2))
        + "</pre></details>"
    )


def build_report(run_dir: str | Path, out: str | Path | None = None) -> Path:
    """Write a self-contained HTML report of a run directory and return its path.

    Parameters
    ----------
    run_dir : str or Path
        A run directory (see the module docstring).
    out : str or Path, optional
        The HTML file; default ``run_dir/report.html``.

    Raises
    ------
    DataError
        When ``run_dir`` does not exist or holds nothing to report.
    """
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise DataError(
            f"No such run directory: {str(run_dir)!r}. Run `synthmarket demo` or give a run's --out directory."
        )
    config = read_json(run_dir / RUN_FILE) if (run_dir / RUN_FILE).is_file() else {}
    real = read_table(run_dir / REAL_FILE) if (run_dir / REAL_FILE).is_file() else None
    sections: list[tuple[str, str, str]] = []
    cards: list[tuple[str, str]] = []

    prices = _prices_section(run_dir, real)
    if prices is not None:
        sections.append(("prices", "Prices", prices[0]))
    regimes = _regimes_section(run_dir)
    if regimes is not None:
        sections.append(("regimes", "Regimes", regimes))
    facts = _facts_section(run_dir)
    if facts is not None:
        sections.append(("facts", "Stylized facts", facts[0]))
        if facts[1] is not None:
            cards.append(("stylized facts that hold", facts[1]))
    backtest = _backtest_section(run_dir)
    if backtest is not None:
        sections.append(("backtest", "Backtest", backtest[0]))
        cards += backtest[1]
    calibration = calibration_section(run_dir)
    if calibration is not None:
        sections.append(("calibration", "Calibration", calibration))
    if not sections:
        raise DataError(
            f"{str(run_dir)!r} holds nothing to report (no scenarios, facts, backtest results or calibration)."
        )
    if cards:
        sections.insert(0, ("summary", "Summary", "<h2>At a glance</h2>" + cards_html(cards)))
    sections.append(("config", "Configuration", _config_section(config)))

    title = str(config.get("title") or "synthmarket report")
    subtitle = str(config.get("subtitle") or _default_subtitle(config))
    out = Path(out) if out is not None else run_dir / REPORT_FILE
    out.parent.mkdir(parents=True, exist_ok=True)
    write_text_atomic(out, page_html(title, subtitle, sections))
    return out


def _default_subtitle(config: dict) -> str:
    parts = []
    if config.get("generator"):
        parts.append(f"generator {config['generator']}")
    if config.get("data"):
        parts.append(f"data {config['data']}")
    if config.get("created"):
        parts.append(f"created {config['created']}")
    return "; ".join(parts)
