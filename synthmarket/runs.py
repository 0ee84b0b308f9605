"""The run directory: its file names, writing one, and reading its files back.

A *run directory* is what ``synthmarket demo`` (or :func:`write_run` from a notebook) writes:

- ``run.json``: the configuration (generator, seeds, data range, versions);
- ``scenarios.parquet``: the synthetic paths (long format, see :class:`~synthmarket.paths.Paths`);
- ``real.parquet``: the real bars the paths are compared with (the fan chart shows them);
- ``facts/``: ``scorecard.csv`` (one row per statistic), ``verdicts.csv`` (one row per fact),
  ``scorecard.png`` (the figure grid), ``distances.json`` and ``scorecard.md``;
- ``regimes.csv``: per-regime statistics, real against synthetic (when regimes were used);
- ``backtest/``: ``results.parquet`` (one row per path, plus ``real``) and ``summary.json``,
  as :func:`synthmarket.montecarlo.run_montecarlo` writes them with ``out=RUN/backtest``;
- ``report.html``: the page :func:`synthmarket.pages.build_report` makes of the rest.

Every part is optional. A model directory's training log (``train_log.jsonl``, written by
:mod:`synthmarket.training`) is read here too, for the training page and curves.
"""

from __future__ import annotations

import datetime as _dt
import json
import math
import platform
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd

from .errors import DataError
from .jsonutil import json_default

if TYPE_CHECKING:
    from .facts import Scorecard
    from .paths import Paths

RUN_FILE = "run.json"
SCENARIOS_FILE = "scenarios.parquet"
REAL_FILE = "real.parquet"
FACTS_DIR = "facts"
REGIMES_FILE = "regimes.csv"
BACKTEST_DIR = "backtest"
REPORT_FILE = "report.html"


# -- writing -----------------------------------------------------------------------------------
def versions() -> dict[str, str]:
    """Versions of synthmarket, Python and the libraries whose numbers a run depends on."""
    import importlib.metadata as md

    out = {"python": platform.python_version()}
    for name in ("synthmarket", "numpy", "pandas", "torch", "statsmodels", "arch", "backtrader"):
        try:
            out[name] = md.version(name)
        except md.PackageNotFoundError:
            continue
    return out


def write_facts(card: Scorecard, directory: str | Path) -> Path:
    """Write a :class:`~synthmarket.facts.Scorecard` as ``scorecard.csv``, ``verdicts.csv``,
    ``scorecard.png``, ``distances.json`` and ``scorecard.md`` into ``directory``."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    card.table.to_csv(directory / "scorecard.csv", index=False)
    card.verdicts.to_csv(directory / "verdicts.csv", index=False)
    (directory / "scorecard.md").write_text(card.to_markdown())
    fig = card.plot()
    fig.savefig(directory / "scorecard.png", dpi=80)
    distances = {
        k: (float(v) if v is not None and math.isfinite(float(v)) else None) for k, v in card.distances.items()
    }
    payload = {"summary": card.summary(), "passed": card.passed, "notes": card.notes, "distances": distances}
    (directory / "distances.json").write_text(json.dumps(payload, indent=2))
    return directory


def write_run(
    out: str | Path,
    *,
    config: dict | None = None,
    paths: Paths | None = None,
    real: pd.DataFrame | None = None,
    card: Scorecard | None = None,
    regimes: pd.DataFrame | None = None,
) -> Path:
    """Write the parts of a run directory that are given (see the module docstring).

    The backtest part is written by :func:`synthmarket.montecarlo.run_montecarlo` itself:
    pass it ``out=OUT / "backtest"``. ``config`` is stored in ``run.json`` with the versions
    and the time added.

    Returns
    -------
    Path
        ``out``.
    """
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise DataError(f"{str(out)!r} is a file; a run is written into a directory.")
    out.mkdir(parents=True, exist_ok=True)
    record = {"created": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"), "versions": versions()}
    record.update(config or {})
    (out / RUN_FILE).write_text(json.dumps(record, indent=2, default=json_default))
    if paths is not None:
        paths.save(out / SCENARIOS_FILE)
    if real is not None:
        real.to_parquet(out / REAL_FILE)
    if card is not None:
        write_facts(card, out / FACTS_DIR)
    if regimes is not None:
        regimes.to_csv(out / REGIMES_FILE, index=False)
    return out


# -- reading -----------------------------------------------------------------------------------
def read_table(path: Path) -> pd.DataFrame:
    """A run's Parquet or CSV file; a damaged one is the user's to rewrite, so say so."""
    try:
        return pd.read_parquet(path) if path.suffix == ".parquet" else pd.read_csv(path)
    except (ValueError, OSError) as exc:  # pyarrow's ArrowInvalid and pandas' ParserError are ValueErrors
        raise DataError(
            f"{path} is damaged or truncated ({type(exc).__name__}: {exc}); rerun the command that wrote it."
        ) from None


def read_json(path: Path) -> dict:
    """A run's JSON file as a dict (empty when it holds no object)."""
    try:
        data = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise DataError(f"{path} is not readable JSON ({exc}).") from None
    return data if isinstance(data, dict) else {}


def read_training_log(model_dir: str | Path) -> list[dict]:
    """The rows of ``model_dir/train_log.jsonl`` (malformed lines are skipped)."""
    from .training_progress import LOG_FILE

    path = Path(model_dir) / LOG_FILE
    if not path.is_file():
        return []
    rows = []
    for line in path.read_text().splitlines():
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(row, dict):
            rows.append(row)
    return rows
