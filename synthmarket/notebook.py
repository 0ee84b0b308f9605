"""Jupyter views (``_repr_html_``) of :class:`~synthmarket.paths.Paths`, a
:class:`~synthmarket.generator.TrainReport` and a :class:`~synthmarket.generator.Generator`.

The classes import this module when Jupyter asks for a view, so the core never imports
the HTML modules when it loads.
"""

from __future__ import annotations

import html
from typing import TYPE_CHECKING

import pandas as pd

from .figures import plot_paths, training_curves
from .page_parts import figure_to_data_uri, img_tag, total_return_quantiles

if TYPE_CHECKING:
    from .paths import Paths


def paths_html(paths: Paths, real: pd.DataFrame | None = None) -> str:
    """A notebook view of :class:`Paths`: a summary, terminal-return quantiles and the fan chart."""
    table = pd.DataFrame([total_return_quantiles(paths)], columns=["5%", "25%", "50%", "75%", "95%"])
    return (
        f"<div><p><b>{html.escape(repr(paths))}</b></p><p>Total return over the path (quantiles across paths):</p>"
        + table.to_html(index=False, float_format=lambda v: f"{100 * v:.1f}%")
        + img_tag(figure_to_data_uri(plot_paths(paths, real), dpi=80), "fan chart")
        + "</div>"
    )


def train_report_html(report) -> str:
    """A notebook view of a :class:`~synthmarket.generator.TrainReport`: summary, curves, last validations."""
    parts = [f"<p><b>{html.escape(report.summary())}</b></p>"]
    fig = training_curves(list(report.history or []))
    if fig is not None:
        parts.append(img_tag(figure_to_data_uri(fig, dpi=80), "training curves"))
    validations = [r for r in report.history or [] if "validation" in r]
    if validations:
        frame = pd.DataFrame(validations).tail(10)
        parts.append(frame.to_html(index=False, float_format=lambda v: f"{v:.4g}", na_rep="-"))
    return "<div>" + "".join(parts) + "</div>"


def generator_html(model) -> str:
    """A notebook view of a generator: name, state, hyper-parameters, regimes and its training."""
    state = "fitted" if model.is_fitted else "not fitted"
    hparams = pd.DataFrame({"hyper-parameter": list(model.hparams), "value": [str(v) for v in model.hparams.values()]})
    parts = [
        f"<p><b>{html.escape(type(model).__name__)}</b> ({html.escape(model.name)}, {state})</p>",
        hparams.to_html(index=False),
    ]
    if model.scheme is not None:
        parts.append(f"<p>Regimes ({html.escape(model.scheme.kind)}): {html.escape(', '.join(model.scheme.names))}</p>")
    if model.report is not None:
        parts.append(train_report_html(model.report))
    return "<div>" + "".join(parts) + "</div>"
