"""Where results go: Parquet part files while a run goes on, ``results.parquet`` after, and resume.

Each finished batch becomes one part file in ``out/results/``; at the end (also after Ctrl-C,
a failure or a dead worker) the parts are compacted into ``out/results.parquet``. A resumed
run skips the paths already stored, so a killed run loses at most the batches in flight and
never counts a path twice.
"""

from __future__ import annotations

import json
import os
import time
import uuid
from pathlib import Path
from typing import Any

import pandas as pd

from ..errors import ConfigError, DataError
from ..jsonutil import json_default
from ..outdir import write_text_atomic
from ..paths import REAL, id_sort_key
from .metrics import COLUMNS, INT_METRICS, METRICS
from .output import ANALYZERS_DIR, LOGS_DIR, file_name, log_file

RESULTS_FILE = "results.parquet"
PARTS_DIR = "results"
MANIFEST_FILE = "run.json"
SUMMARY_FILE = "summary.json"
FORMAT = "synthmarket-backtest"


def _schema(columns=()):
    """The Parquet schema of a results table with these analyzer ``columns`` after the standard ones."""
    import pyarrow as pa

    fields = [pa.field("path", pa.string())]
    fields += [pa.field(m, pa.int64() if m in INT_METRICS else pa.float64()) for m in METRICS]
    fields += [pa.field("error", pa.string()), pa.field("failed_bar", pa.int64())]
    fields += [pa.field(c, pa.float64()) for c in columns]
    return pa.schema(fields)


def _path_order(paths: list[str]) -> list[int]:
    """Positions of ``paths`` in the order of the scenarios (:func:`id_sort_key`), ``"real"`` last."""
    return sorted(range(len(paths)), key=lambda i: (paths[i] == REAL, id_sort_key(paths[i])))


def extra_columns(rows: pd.DataFrame | list[dict]) -> list[str]:
    """The analyzer columns of ``rows`` (those after :data:`COLUMNS`), sorted by name: the same
    order whichever paths came back first (an analyzer's keys may differ from path to path)."""
    names = rows.columns if isinstance(rows, pd.DataFrame) else {k for row in rows for k in row}
    return sorted(c for c in names if c not in COLUMNS)


def tidy_results(rows: pd.DataFrame | list[dict]) -> pd.DataFrame:
    """Rows in the standard shape: the columns of :data:`COLUMNS`, then the analyzers' columns
    (NaN where a path's analyzer did not give that key), one row per path, in the order of the
    path ids with ``"real"`` last (the last row of a duplicated path wins)."""
    columns = [*COLUMNS, *extra_columns(rows)]
    frame = pd.DataFrame(rows) if isinstance(rows, list) else rows
    frame = frame.reindex(columns=columns)
    frame = frame.drop_duplicates("path", keep="last")
    frame["path"] = frame["path"].astype(str)
    frame = frame.iloc[_path_order(list(frame["path"]))].reset_index(drop=True)
    for m in (*METRICS, "failed_bar"):
        frame[m] = frame[m].astype("Int64") if m in (*INT_METRICS, "failed_bar") else frame[m].astype(float)
    frame["error"] = frame["error"].astype(object).where(frame["error"].notna(), None)
    for c in columns[len(COLUMNS) :]:
        frame[c] = frame[c].astype(float)
    return frame


class ResultStore:
    """Results of a run on disk: part files while it runs, ``results.parquet`` after.

    Each finished batch is written to ``out/results/part-*.parquet`` (written to a temporary
    name, then renamed, so a part is either whole or absent). :meth:`compact` merges the
    parts into ``out/results.parquet`` (again by rename) and then removes them; a kill at
    any moment leaves files from which :meth:`read` gets every finished path exactly once.
    Compaction touches only this run's parts: those it wrote, and on resume those it found.
    """

    def __init__(self, out: str | os.PathLike) -> None:
        self.out = Path(out)
        self.parts = self.out / PARTS_DIR
        self.final = self.out / RESULTS_FILE
        self.manifest = self.out / MANIFEST_FILE
        self._own_parts: list[Path] = []

    def _part_files(self) -> list[Path]:
        return sorted(self.parts.glob("part-*.parquet")) if self.parts.is_dir() else []

    def has_results(self) -> bool:
        return self.final.exists() or bool(self._part_files())

    def prepare(self, manifest: dict[str, Any], resume: bool) -> set[str]:
        """Check that ``out`` may be written (or resumed) and return the ids already done."""
        if self.out.exists() and not self.out.is_dir():
            raise ConfigError(f"--out {str(self.out)!r} is a file; give a directory.")
        if self.has_results() and not resume:
            raise ConfigError(
                f"{str(self.out)!r} already holds backtest results. Pass resume=True (--resume) to finish "
                f"that run, or choose another output directory (or delete this one)."
            )
        previous = self._previous_manifest() if resume else None
        if resume and previous is None and self.has_results():
            raise ConfigError(
                f"Cannot resume the run in {str(self.out)!r}: its {MANIFEST_FILE} is missing or damaged, so nothing says "
                f"which strategy, settings and scenarios its results are of. Start afresh in another output directory."
            )
        if previous is not None:
            changed = _changes(previous, manifest)
            if changed:
                detail = "; ".join(changed)
                raise ConfigError(
                    f"Cannot resume the run in {str(self.out)!r}: it was started with other inputs ({detail}). "
                    f"Use the same inputs, or another output directory."
                )
        self.parts.mkdir(parents=True, exist_ok=True)
        for stale in self.parts.glob("*.tmp"):
            stale.unlink()
        if previous is None:
            write_json(self.manifest, manifest)
        if not resume:
            return set()
        self._own_parts = self._part_files()  # the parts of the run being resumed
        return set(self.read()["path"])

    def _previous_manifest(self) -> dict[str, Any] | None:
        """The manifest of the run being resumed; None when it is missing or not a JSON object."""
        try:
            previous = json.loads(self.manifest.read_text())
        except (FileNotFoundError, json.JSONDecodeError, UnicodeDecodeError):
            return None
        return previous if isinstance(previous, dict) else None

    def append(self, rows: list[dict[str, Any]], logs: dict[str, str] = {}, analyses: dict[str, dict] = {}) -> None:  # noqa: B006
        """Write the paths' logs and analyses, then one part file holding ``rows`` (so that a path
        counted as done has its files)."""
        import pyarrow as pa
        import pyarrow.parquet as pq

        if not rows:
            return
        for folder, files in ((LOGS_DIR, logs), (ANALYZERS_DIR, analyses)):
            if files:
                (self.out / folder).mkdir(exist_ok=True)
        for path_id, text in logs.items():
            write_text_atomic(log_file(self.out, path_id), text)
        for path_id, analysis in analyses.items():
            write_json(self.out / ANALYZERS_DIR / file_name(path_id, ".json"), analysis)
        table = pa.Table.from_pylist(rows, schema=_schema(extra_columns(rows)))
        target = self.parts / f"part-{time.time_ns():020d}-{uuid.uuid4().hex[:8]}.parquet"
        tmp = target.with_name(target.name + ".tmp")
        pq.write_table(table, tmp)
        os.replace(tmp, target)
        self._own_parts.append(target)

    def read(self) -> pd.DataFrame:
        """Every stored path once (parts win over the compacted file)."""
        return self._read_files(([self.final] if self.final.exists() else []) + self._part_files())

    def _stored_files(self) -> list[Path]:
        """``results.parquet`` (if any) and this run's parts."""
        return ([self.final] if self.final.exists() else []) + self._own_parts

    def _read_files(self, files: list[Path]) -> pd.DataFrame:
        import pyarrow.parquet as pq

        tables = []
        for file in files:
            try:
                tables.append(pq.read_table(file).to_pandas())
            except Exception as exc:
                raise DataError(f"{file} is not a readable results file ({exc}); delete it and resume.") from None
        if not tables:
            return tidy_results([])
        return tidy_results(pd.concat(tables, ignore_index=True))

    def compact(self) -> pd.DataFrame:
        """Merge this run's part files into ``results.parquet`` and remove them; the results.

        A run that stored nothing writes no file (an empty one would block a plain rerun).
        """
        import pyarrow as pa
        import pyarrow.parquet as pq

        parts = self._own_parts
        frame = self._read_files(self._stored_files())
        if parts:
            table = pa.Table.from_pandas(frame, schema=_schema(extra_columns(frame)), preserve_index=False)
            tmp = self.final.with_name(self.final.name + ".tmp")
            pq.write_table(table, tmp)
            os.replace(tmp, self.final)
            for part in parts:
                part.unlink(missing_ok=True)
            self._own_parts = []
        return frame


#: How a resume refusal names a changed entry of ``run.json`` whose values say little.
_CHANGED = {
    "strategy_source": "the strategy's code changed (its file, or a file the settings name)",
    "scenarios": "the scenarios are other paths",
}


def _changes(previous: dict[str, Any], now: dict[str, Any], prefix: str = "") -> list[str]:
    """What differs between two manifests, in words (nested settings key by key)."""
    out = []
    for key in dict.fromkeys([*previous, *now]):
        if key == "created" or previous.get(key) == now.get(key):
            continue
        then, value = previous.get(key), now.get(key)
        if isinstance(then, dict) and isinstance(value, dict):
            out += _changes(then, value, f"{prefix}{key}.")
        else:
            out.append(_CHANGED.get(key) or f"{prefix}{key}: {then!r} then, {value!r} now")
    return out


def write_json(file: Path, data: dict) -> None:
    """Write ``data`` as JSON to ``file``, whole or not at all."""
    write_text_atomic(file, json.dumps(data, indent=2, default=json_default, allow_nan=True))


def read_results(out: str | os.PathLike) -> pd.DataFrame:
    """The results stored in an output directory (finished or not)."""
    store = ResultStore(out)
    if not store.out.is_dir():
        raise DataError(f"No such results directory: {str(out)!r}.")
    return store.read()
