"""The parts every HTML page shares: the style sheet, the page frame, tables, cards and
embedded figures (``data:`` URIs, so that a page is one self-contained file).

The report pages (:mod:`synthmarket.pages`, :mod:`synthmarket.training_page`) and the notebook
views (:mod:`synthmarket.notebook`) are built from them.
"""

from __future__ import annotations

import base64
import html
import io
import math
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .paths import Paths

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


def fmt_number(value: Any, percent: bool = False) -> str:
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
                cells.append(f"<td>{fmt_number(value, percent)}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def img_tag(uri: str, alt: str) -> str:
    return f'<img src="{uri}" alt="{html.escape(alt)}">'


def cards_html(items: list[tuple[str, str]]) -> str:
    cards = "".join(
        f"<div class='card'><div class='value'>{html.escape(v)}</div><div class='label'>{html.escape(k)}</div></div>"
        for k, v in items
    )
    return f"<div class='cards'>{cards}</div>"


def page_html(title: str, subtitle: str, sections: list[tuple[str, str, str]]) -> str:
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
