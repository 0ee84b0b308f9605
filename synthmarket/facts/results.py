"""The judged results: :class:`FactResult` per fact and the :class:`Scorecard` that holds them,
with its tables, summary and Markdown, HTML and JSON renderings."""

from __future__ import annotations

import html
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from .. import window_scores
from .base import _band, percentile_among
from .figure import plot_scorecard

#: A rule that resamples of the real windows as long as the paths, taken as paths, pass less
#: often than this cannot tell a model from the market at that length: it is not judged there.
MIN_REAL_WINDOW_SHARE = 2 / 3
CANNOT_JUDGE = "cannot judge at this length"


@dataclass
class FactResult:
    """One fact judged: the real statistics, the per-path statistics and the verdict.

    ``real`` holds the statistics of the whole real series; ``real_windows`` the same
    statistics on each non-overlapping real window as long as the synthetic paths (see
    :func:`~synthmarket.facts.base.real_windows`), and ``real_windows_pass_rate`` how often
    the rule holds on resamples (with replacement) of those windows taken as paths: what a
    model that drew its paths from the market would score (None when not one window fits).
    ``passed`` is None when the fact does not apply, or when that rate is below
    ``MIN_REAL_WINDOW_SHARE`` (``note`` says why); ``holds_on_real`` applies the rule to the
    whole real series.
    """

    name: str
    description: str
    rule: str
    labels: dict[str, str]
    real: dict[str, float]
    synthetic: dict[str, np.ndarray]
    passed: bool | None
    holds_on_real: bool | None
    note: str = ""
    seconds: float = 0.0
    real_windows: dict[str, np.ndarray] = field(default_factory=dict)
    real_windows_pass_rate: float | None = None

    @property
    def holds_on_real_windows(self) -> bool | None:
        """Whether the real windows of the paths' length pass the rule surely enough for it to be judged."""
        return None if self.real_windows_pass_rate is None else self.real_windows_pass_rate >= MIN_REAL_WINDOW_SHARE


TABLE_COLUMNS = [
    "fact",
    "statistic",
    "real",
    "median",
    "p5",
    "p95",
    "real_windows_median",
    "real_windows_p5",
    "real_windows_p95",
    "real_window_percentile",
    "verdict",
]
STATISTICS_CAPTION = (
    "real: the whole real series; median, p5, p95: over the synthetic paths; real_windows_*: over the real "
    "non-overlapping windows of {steps} steps; real_window_percentile: where the synthetic median sits among "
    "those windows (50: like a typical real window)"
)


def _verdict(passed: bool | None) -> str:
    return "n/a" if passed is None else ("pass" if passed else "FAIL")


def _percent(share: float | None) -> str:
    return "n/a" if share is None else f"{share:.0%}"


def _fmt(value: Any) -> str:
    if isinstance(value, (bool, np.bool_)):
        return "yes" if value else "no"
    if isinstance(value, (float, np.floating)):
        if not np.isfinite(value):
            return "-"
        return f"{value:.4g}"
    return "" if value is None else str(value)


def _markdown_table(frame: pd.DataFrame) -> str:
    header = "| " + " | ".join(map(str, frame.columns)) + " |"
    rule = "|" + "|".join("---" for _ in frame.columns) + "|"
    rows = ["| " + " | ".join(_fmt(v).replace("|", "\\|") for v in row) + " |" for row in frame.itertuples(index=False)]
    return "\n".join([header, rule, *rows])


@dataclass
class Scorecard:
    """The verdict on a set of synthetic paths: stylized facts, distances and scores.

    Attributes
    ----------
    results : list of FactResult
        One per fact, in registry order.
    distances : dict
        :func:`synthmarket.distances.return_distances`, the DY metrics and the window scores.
    n_paths, n_steps : int
        Size of the synthetic set.
    notes : list of str
        What was subsampled or skipped, and warnings (memorisation).
    timings : dict
        Seconds spent per fact and per distance group.
    """

    results: list[FactResult]
    distances: dict[str, float]
    n_paths: int
    n_steps: int
    notes: list[str] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)
    curves: dict[str, Any] = field(default_factory=dict, repr=False)

    @property
    def passed(self) -> bool:
        """True when every applicable fact passes."""
        return all(r.passed is not False for r in self.results)

    @property
    def failed(self) -> list[str]:
        return [r.name for r in self.results if r.passed is False]

    @property
    def too_short(self) -> list[str]:
        """Facts not judged because the real windows as long as the paths do not surely pass them."""
        return [r.name for r in self.results if r.holds_on_real_windows is False]

    @property
    def memorised(self) -> bool | None:
        """True when the memorisation score flags copied training windows (None if not computed)."""
        share = self.distances.get("memorisation_copy_share")
        return None if share is None else share > window_scores.MEMORISATION_LIMIT

    def __getitem__(self, name: str) -> FactResult:
        for result in self.results:
            if result.name == name:
                return result
        raise KeyError(f"No fact {name!r} in this scorecard; facts: {', '.join(r.name for r in self.results)}")

    @property
    def table(self) -> pd.DataFrame:
        """One row per statistic: fact, statistic, the whole real series' value, the synthetic median
        and 5-95% band over paths, the same over the real windows of the paths' length, the
        synthetic median's percentile among those windows, and the verdict."""
        rows = []
        for r in self.results:
            for key, label in r.labels.items():
                med, p5, p95 = _band(r.synthetic.get(key, np.array([])))
                windows = r.real_windows.get(key, np.array([]))
                w_med, w_p5, w_p95 = _band(windows)
                rows.append(
                    {
                        "fact": r.name,
                        "statistic": label,
                        "real": r.real.get(key, float("nan")),
                        "median": med,
                        "p5": p5,
                        "p95": p95,
                        "real_windows_median": w_med,
                        "real_windows_p5": w_p5,
                        "real_windows_p95": w_p95,
                        "real_window_percentile": percentile_among(windows, med),
                        "verdict": _verdict(r.passed),
                    }
                )
        return pd.DataFrame(rows, columns=TABLE_COLUMNS)

    @property
    def verdicts(self) -> pd.DataFrame:
        """One row per fact: verdict, whether the rule holds on the real data, the rule itself."""
        return pd.DataFrame(
            [
                {
                    "fact": r.name,
                    "verdict": _verdict(r.passed),
                    "holds on real": _verdict(r.holds_on_real),
                    "holds on real windows": _percent(r.real_windows_pass_rate),
                    "rule": r.rule if r.passed is not None else f"not judged: {r.note}",
                }
                for r in self.results
            ]
        )

    def summary(self) -> str:
        """One line: the verdict and the failed facts."""
        judged = [r for r in self.results if r.passed is not None]
        n_pass = sum(bool(r.passed) for r in judged)
        line = f"{n_pass}/{len(judged)} stylized facts pass on {self.n_paths} paths x {self.n_steps} steps"
        if self.failed:
            line += f"; failed: {', '.join(self.failed)}"
        if self.too_short:
            line += (
                f"; {CANNOT_JUDGE} ({self.n_steps} steps; the real windows as long do not surely pass): "
                f"{', '.join(self.too_short)}"
            )
        if self.memorised:
            line += "; WARNING: memorisation (synthetic windows copy real ones)"
        return line

    def to_dict(self) -> dict:
        """Plain data for JSON: verdicts, statistics (real, median, band) and distances."""
        return {
            "passed": self.passed,
            "memorised": self.memorised,
            "n_paths": self.n_paths,
            "n_steps": self.n_steps,
            "facts": {
                r.name: {
                    "passed": r.passed,
                    "holds_on_real": r.holds_on_real,
                    "holds_on_real_windows": r.holds_on_real_windows,
                    "real_windows_pass_rate": r.real_windows_pass_rate,
                    "rule": r.rule,
                    "note": r.note,
                }
                for r in self.results
            },
            "statistics": self.table.replace({np.nan: None}).to_dict(orient="records"),
            "distances": self.distances,
            "notes": self.notes,
        }

    def to_markdown(self) -> str:
        """The scorecard as a Markdown document (verdicts, statistics, distances, notes)."""
        parts = [
            "# Stylized-facts scorecard",
            "",
            f"**{'PASS' if self.passed else 'FAIL'}** - {self.summary()}.",
            "",
            "## Verdicts",
            "",
            _markdown_table(self.verdicts),
            "",
            f"## Statistics ({STATISTICS_CAPTION.format(steps=self.n_steps)})",
            "",
            _markdown_table(self.table),
            "",
            "## Distances and scores",
            "",
            _markdown_table(pd.DataFrame({"distance": list(self.distances), "value": list(self.distances.values())})),
        ]
        if self.notes:
            parts += ["", "## Notes", ""] + [f"- {note}" for note in self.notes]
        return "\n".join(parts) + "\n"

    def _repr_html_(self) -> str:
        colour = "green" if self.passed else "crimson"
        distances = pd.DataFrame({"value": self.distances}).to_html(float_format=_fmt)
        notes = "".join(f"<li>{html.escape(n)}</li>" for n in self.notes)
        return (
            f"<div><p><b style='color:{colour}'>{'PASS' if self.passed else 'FAIL'}</b> "
            f"{html.escape(self.summary())}</p>"
            f"{self.verdicts.to_html(index=False)}{self.table.to_html(index=False, float_format=_fmt)}"
            f"{distances}{f'<ul>{notes}</ul>' if notes else ''}</div>"
        )

    def __repr__(self) -> str:
        return f"Scorecard({self.summary()})"

    def plot(self, n_sample_paths: int = 5):
        """One figure: density and QQ, ACFs, leverage, kurtosis by horizon and sample paths."""
        return plot_scorecard(self, n_sample_paths)
