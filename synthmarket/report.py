"""The documented names of the report API, kept where ``docs/api.md`` points; each lives in
the module of its job: :mod:`synthmarket.runs` (the run directory), :mod:`synthmarket.figures`
(matplotlib figures), :mod:`synthmarket.pages` and :mod:`synthmarket.training_page` (the HTML
pages) and :mod:`synthmarket.notebook` (Jupyter views)."""

from .figures import plot_paths, plot_training
from .notebook import generator_html, paths_html, train_report_html
from .pages import build_report
from .runs import write_facts, write_run
from .training_page import build_training_report

__all__ = [
    "build_report",
    "build_training_report",
    "generator_html",
    "paths_html",
    "plot_paths",
    "plot_training",
    "train_report_html",
    "write_facts",
    "write_run",
]
