"""The HTML report pages: one self-contained file (figures embedded, nothing fetched) each.

:func:`build_report` shows what a run directory (:mod:`synthmarket.runs`) holds;
:func:`build_training_report` shows a model directory's training: the losses and validation
scores of ``train_log.jsonl``, how it stopped, and the snapshots. The pieces (:func:`html_table`,
the embedded figures) serve the notebook views in :mod:`synthmarket.notebook` too.
"""

from __future__ import annotations

import base64
import html
import io
import json
import math
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .errors import DataError, ModelFileError
from .figures import loss_keys, outcome_histograms, plot_paths, regime_figure, training_curves
from .outdir import write_text_atomic
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
    read_training_log,
)
from .snapshots import snapshot_files

TRAINING_REPORT_FILE = "training.html"
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

STYLE = """
.strip { display: flex; overflow-x: auto; gap: 0.5em; } .snapshot { margin: 0; flex: 0 0 auto; }
body { font-family: -apple-system, "Segoe UI", Helvetica, Arial, sans-serif; margin: 2em auto; max-width: 1120px;
       color: #222; line-height: 1.45; padding: 0 1.2em; }
h1 { margin-bottom: 0.1em; } h2 { border-bottom: 1px solid #ddd; padding-bottom: 0.2em; margin-top: 1.8em; }
h3 { margin-top: 1.2em; }
table { border-collapse: collapse; margin: 0.6em 0 1em; font-size: 0.86em; }
th, td { border: 1px solid #ddd; padding: 0.25em 0.6em; text-align: right; vertical-align: top; }
th { background: #f4f4f4; } td:first-child, th:first-child { text-align: left; }
td.text, th.text { text-align: left; max-width: 36em; }
img { max-width: 100%; border: 1px solid #eee; margin: 0.4em 0; }
.pass { color: #1a7f37; font-weight: bold; } .fail { color: #cf222e; font-weight: bold; } .na { color: #888; }
.muted { color: #666; font-size: 0.9em; }
.cards { display: flex; flex-wrap: wrap; gap: 0.8em; margin: 1em 0; }
.card { border: 1px solid #ddd; border-radius: 6px; padding: 0.6em 1em; min-width: 11em; background: #fafafa; }
.card .value { font-size: 1.5em; font-weight: bold; } .card .label { color: #555; font-size: 0.85em; }
details { margin: 0.6em 0; } summary { cursor: pointer; color: #3b6ea8; }
pre { background: #f6f8fa; padding: 0.8em; overflow-x: auto; font-size: 0.85em; }
nav a { margin-right: 1em; }
"""


# -- HTML pieces ----------------------------------------------------------------------------------
def figure_to_data_uri(fig, dpi: int = 100) -> str:
    """A matplotlib figure as an embedded PNG (``data:`` URI)."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi, bbox_inches="tight")
    if getattr(fig, "number", None) is not None:  # a pyplot figure: free it
        import matplotlib.pyplot as plt

        plt.close(fig)
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()


def file_to_data_uri(path: Path) -> str:
    """A PNG file as an embedded ``data:`` URI."""
    return "data:image/png;base64," + base64.b64encode(Path(path).read_bytes()).decode()


def _fmt_number(value: Any, percent: bool = False) -> str:
    if value is None:
        return "-"
    if isinstance(value, (bool, np.bool_)):
        return "yes" if value else "no"
    if isinstance(value, (int, np.integer)):
        return f"{value:,}"
    if isinstance(value, (float, np.floating)):
        if not math.isfinite(value):
            return "-"
        if percent:
            return f"{100 * value:.1f}%"
        if abs(value) >= 1000:
            return f"{value:,.0f}"
        return f"{value:.3g}"
    return str(value)


def _verdict_cell(value: Any) -> str:
    text = str(value)
    cls = {"pass": "pass", "FAIL": "fail", "n/a": "na"}.get(text)
    if cls is None:
        return f"<td class='text'>{html.escape(text)}</td>"
    return f"<td class='{cls}'>{html.escape(text)}</td>"


def html_table(
    frame: pd.DataFrame,
    *,
    verdict_columns: Iterable[str] = (),
    text_columns: Iterable[str] = (),
    percent_rows: Iterable[str] = (),
    index: bool = False,
) -> str:
    """A DataFrame as a small HTML table (numbers to 4 significant digits, verdicts coloured)."""
    verdict_columns, text_columns, percent_rows = set(verdict_columns), set(text_columns), set(percent_rows)
    if index:
        frame = frame.reset_index()
        frame = frame.rename(columns={frame.columns[0]: ""})
    head = "".join(
        f"<th class='text'>{html.escape(str(c))}</th>" if c in text_columns else f"<th>{html.escape(str(c))}</th>"
        for c in frame.columns
    )
    body = []
    for row in frame.itertuples(index=False):
        first = str(row[0])
        cells = []
        for column, value in zip(frame.columns, row):
            if column in verdict_columns:
                cells.append(_verdict_cell(value))
            elif column in text_columns or isinstance(value, str):
                cells.append(f"<td class='text'>{html.escape(str(value))}</td>")
            else:
                percent = first in percent_rows and column not in ("real_rank", "real rank %")
                cells.append(f"<td>{_fmt_number(value, percent)}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def img_tag(uri: str, alt: str) -> str:
    return f'<img src="{uri}" alt="{html.escape(alt)}">'


def _cards(items: list[tuple[str, str]]) -> str:
    cards = "".join(
        f"<div class='card'><div class='value'>{html.escape(v)}</div><div class='label'>{html.escape(k)}</div></div>"
        for k, v in items
    )
    return f"<div class='cards'>{cards}</div>"


def _page(title: str, subtitle: str, sections: list[tuple[str, str, str]]) -> str:
    nav = "".join(f"<a href='#{anchor}'>{html.escape(name)}</a>" for anchor, name, _ in sections)
    body = "".join(f"<section id='{anchor}'>{content}</section>" for anchor, _, content in sections)
    return (
        f"<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
        f"<style>{STYLE}</style></head><body><h1>{html.escape(title)}</h1>"
        f"<p class='muted'>{html.escape(subtitle)}</p><nav>{nav}</nav>{body}</body></html>"
    )


def total_return_quantiles(paths: Paths) -> np.ndarray:
    """The 5/25/50/75/95% quantiles across paths of the total return over the path."""
    total = paths.close[:, -1] / (paths.anchor_close or paths.close[:, 0]) - 1
    return np.quantile(total, [0.05, 0.25, 0.5, 0.75, 0.95])


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
        "starting from the last real close. Bands: 5/25/50/75/95% quantiles of the close across paths.</p>"
        + img_tag(figure_to_data_uri(plot_paths(paths, real)), "fan chart of synthetic prices beside the real history")
        + html_table(table, percent_rows=["total return over the path"])
    )
    return body, paths


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
        cards.append(("median Sharpe of synthetic paths", _fmt_number(sharpe.get("p50"))))
        cards.append(("Sharpe of the real history", _fmt_number(sharpe.get("real"))))
    extra = {
        "paths that lost money": summary.get("prob_loss"),
        f"expected shortfall of return ({summary.get('alpha', 0.05):.0%} worst)": summary.get("es_return"),
        "expected shortfall of max drawdown": summary.get("es_drawdown"),
    }
    shown = {k: v for k, v in extra.items() if v is not None}
    if shown:
        body += html_table(pd.DataFrame({"": list(shown), "value": list(shown.values())}), percent_rows=list(shown))
        if summary.get("prob_loss") is not None:
            cards.append(("paths that lost money", _fmt_number(summary["prob_loss"], percent=True)))
    failed = results[results["error"].notna()] if "error" in results else results.iloc[:0]
    if len(failed):
        body += (
            f"<p class='fail'>{len(failed)} path(s) failed; the first: path {html.escape(str(failed['path'].iloc[0]))}: "
            f"{html.escape(str(failed['error'].iloc[0]))}</p>"
        )
    return body, cards


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
    if not sections:
        raise DataError(f"{str(run_dir)!r} holds nothing to report (no scenarios, facts or backtest results).")
    if cards:
        sections.insert(0, ("summary", "Summary", "<h2>At a glance</h2>" + _cards(cards)))
    sections.append(("config", "Configuration", _config_section(config)))

    title = str(config.get("title") or "synthmarket report")
    subtitle = str(config.get("subtitle") or _default_subtitle(config))
    out = Path(out) if out is not None else run_dir / REPORT_FILE
    out.parent.mkdir(parents=True, exist_ok=True)
    write_text_atomic(out, _page(title, subtitle, sections))
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


# -- the training report -------------------------------------------------------------------------------
def build_training_report(model_dir: str | Path, out: str | Path | None = None) -> Path:
    """Write an HTML view of a model directory's training and return its path.

    Shows the losses and validation scores of ``train_log.jsonl`` against the step, how the
    training stopped, the hyper-parameters and the training data's fingerprint.

    Parameters
    ----------
    model_dir : str or Path
        A model directory (``synthmarket train --out``).
    out : str or Path, optional
        The HTML file; default ``model_dir/training.html``.

    Raises
    ------
    ModelFileError
        When ``model_dir`` is not a model directory and holds no training log either.
    """
    from .model_files import CONFIG_FILE, read_config
    from .training_progress import LOG_FILE

    model_dir = Path(model_dir)
    rows = read_training_log(model_dir)
    config: dict = {}
    if (model_dir / CONFIG_FILE).is_file():
        config = read_config(model_dir)
    elif not rows:
        raise ModelFileError(
            f"{str(model_dir)!r} holds neither {CONFIG_FILE} nor {LOG_FILE}: give a model directory "
            f"(`synthmarket train --out DIR`)."
        )
    generator = config.get("generator") or next(
        (r.get("model", {}).get("generator") for r in rows if "model" in r), "model"
    )
    sections: list[tuple[str, str, str]] = []
    report = config.get("train_report") or {}
    stop = next((r for r in reversed(rows) if r.get("event") == "stop"), {})
    start = next((r for r in rows if r.get("event") in ("start", "resume")), {})
    cards = [
        ("steps", _fmt_number(report.get("steps", stop.get("step")))),
        ("seconds", _fmt_number(report.get("seconds", stop.get("elapsed")))),
        ("stopped by", str(report.get("stopped", stop.get("reason", "-")))),
        ("best validation score", _fmt_number(report.get("best_score", stop.get("best_score")))),
    ]
    sections.append(
        (
            "summary",
            "Summary",
            "<h2>At a glance</h2>"
            + _cards(cards)
            + f"<p class='muted'>Device: {html.escape(str(report.get('device', start.get('device', '-'))))}. "
            "The validation score is the stylized-facts distance of sampled paths to the held-out real "
            "returns, relative to i.i.d. normal returns (1.0); the best-scoring weights are kept.</p>",
        )
    )
    fig = training_curves(rows)
    if fig is not None:
        body = "<h2>Training curves</h2>" + img_tag(figure_to_data_uri(fig), "training losses and validation score")
        logged = [r for r in rows if r.get("event") == "step"]
        losses = loss_keys(logged)
        if losses:
            values = {key: [r[key] for r in logged if isinstance(r.get(key), (int, float))] for key in losses}
            frame = pd.DataFrame(
                [
                    {"loss": key, "times logged": len(v), "first logged": v[0], "last logged": v[-1], "minimum": min(v)}
                    for key, v in values.items()
                    if v
                ]
            )
            body += html_table(frame)
        validations = [r for r in rows if r.get("event") == "validation"]
        if validations:
            frame = pd.DataFrame(validations).drop(columns=["event", "time"], errors="ignore")
            body += (
                "<details><summary>Every validation</summary>"
                + html_table(frame.astype({c: float for c in frame.columns if c not in ("best",)}, errors="ignore"))
                + "</details>"
            )
    else:
        body = (
            "<h2>Training curves</h2><p>This generator logged no losses or validation scores: it fits in one "
            "go (a classical model), so there is no curve to show.</p>"
        )
    sections.append(("curves", "Curves", body))
    snapshots = snapshot_files(model_dir)
    if snapshots:
        strip = "".join(f"<figure class='snapshot'>{img_tag(file_to_data_uri(p), p.stem)}</figure>" for p in snapshots)
        sections.append(
            (
                "snapshots",
                "Snapshots",
                "<h2>Snapshots</h2><p>Generated paths (colour) over real windows "
                "(grey), the same noise at every step: how the model learned the shape of the market.</p>"
                f"<div class='strip'>{strip}</div>",
            )
        )
    hparams = config.get("hyperparameters") or {}
    settings = [
        ("generator", generator),
        ("package version", config.get("package_version")),
        ("training data fingerprint", config.get("data_fingerprint")),
        ("regimes", None if not config.get("regimes") else ", ".join(config["regimes"].get("names", []))),
    ]
    settings += [(f"train: {k}", v) for k, v in (start.get("config") or {}).items() if v is not None]
    frame = pd.DataFrame([(k, str(v)) for k, v in settings if v is not None], columns=["setting", "value"])
    hp = pd.DataFrame({"hyper-parameter": list(hparams), "value": [str(v) for v in hparams.values()]})
    sections.append(
        (
            "config",
            "Configuration",
            "<h2>Configuration</h2>"
            + html_table(frame, text_columns=["value"])
            + "<h3>Hyper-parameters</h3>"
            + html_table(hp, text_columns=["value"]),
        )
    )
    out = Path(out) if out is not None else model_dir / TRAINING_REPORT_FILE
    out.parent.mkdir(parents=True, exist_ok=True)
    write_text_atomic(out, _page(f"Training of {generator}", str(model_dir), sections))
    return out
