"""Scenario files: sampled paths streamed to a Parquet or CSV file in long format.

:func:`generate_file` samples paths ``chunk_size`` at a time and appends each chunk to the
output (one Parquet row group, or CSV rows), so memory stays flat however many paths are asked
for. The output is written under a temporary name and moved into place only when complete: an
interrupted or failed run leaves no half-written file and never destroys an old one (the
temporary file of a run killed outright is removed by the next run into the same file). One
run at a time writes a file (:func:`synthmarket.outdir.claim_file`). :meth:`Paths.load
<synthmarket.paths.Paths.load>` reads the files back.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa

from .bars import Anchor, business_days, default_start
from .context import LAST
from .errors import ConfigError
from .generator import DEFAULT_CHUNK, Generator
from .outdir import claim_file, scratch
from .paths import FIELDS, Paths

SUFFIXES = (".parquet", ".csv")


def check_output(out: Path, force: bool) -> None:
    """Refuse an output that is not a ``.parquet``/``.csv`` file name, or that exists (unless ``force``)."""
    if out.suffix not in SUFFIXES:
        raise ConfigError(f"Cannot write {out.name!r}: give --out a .parquet or .csv file name.")
    if out.is_dir():
        raise ConfigError(f"{str(out)!r} is a directory; give --out a file name such as {out / 'paths.parquet'}.")
    if out.exists() and not force:
        raise ConfigError(f"{str(out)!r} already exists. Choose another --out, or add --force to replace it.")


def _start_date(start: str | None, anchor: Anchor) -> pd.Timestamp:
    if start is None:
        return default_start(anchor)
    try:
        return pd.Timestamp(start)
    except (ValueError, TypeError):
        raise ConfigError(f"Could not read the start date {start!r}; write it as YYYY-MM-DD.") from None


def _table(paths: Paths, first_path: int, dates: pa.Array, schema: pa.Schema) -> pa.Table:
    n, s = paths.close.shape
    columns = [pa.array(np.repeat(np.arange(first_path, first_path + n, dtype=np.int64), s))]
    columns.append(pa.chunked_array([dates] * n).combine_chunks())
    columns += [pa.array(getattr(paths, k).reshape(-1)) for k in FIELDS]
    return pa.Table.from_arrays(columns, schema=schema)


class _Writer:
    """Appends tables to a Parquet or CSV file (chosen by the suffix of ``target``)."""

    def __init__(self, target: Path, parquet: bool, schema: pa.Schema) -> None:
        self._file = None
        if parquet:
            import pyarrow.parquet as pq

            self._writer = pq.ParquetWriter(target, schema)
        else:
            import pyarrow.csv as pc

            self._file = open(target, "wb")
            self._file.write((",".join(schema.names) + "\n").encode())  # pyarrow would quote the header
            options = pc.WriteOptions(include_header=False, quoting_style="none")
            self._writer = pc.CSVWriter(self._file, schema, write_options=options)

    def write(self, table: pa.Table) -> None:
        self._writer.write_table(table)

    def close(self) -> None:
        self._writer.close()
        if self._file is not None:
            self._file.close()


def generate_file(
    model: Generator,
    out: str | Path,
    n_paths: int,
    n_steps: int,
    *,
    regime: str | None = None,
    schedule: str | None = None,
    seed: int | None = 0,
    start: str | None = None,
    chunk_size: int = DEFAULT_CHUNK,
    force: bool = False,
    on_chunk: Callable[[int], None] | None = None,
    context=LAST,
) -> Path:
    """Sample ``n_paths`` paths and stream them to ``out`` in long format.

    Parameters
    ----------
    model : Generator
        A fitted (or loaded) generator.
    out : str or Path
        A ``.parquet`` or ``.csv`` file; columns ``path, date, open, high, low, close, volume``.
    n_paths, n_steps : int
        How many paths, and bars per path.
    regime, schedule : str, optional
        Condition every step on one regime, or follow a schedule such as ``"calm:200,turbulent:40"``.
    seed : int, optional
        The same seed and chunk size give the same file, byte for byte.
    start : str, optional
        Date of the first bar (rolled to a business day); default: the business day after
        the model's training data.
    chunk_size : int
        Paths sampled and written at a time.
    force : bool
        Replace ``out`` if it exists (only once the new file is complete).
    on_chunk : callable, optional
        Called with the number of paths of each chunk once it is written.
    context : "last", None or DataFrame
        The market the paths start from (:mod:`synthmarket.context`); real bars also move the
        paths' first close and date to just after their last bar.

    Returns
    -------
    Path
        ``out``.
    """
    out = Path(out)
    if chunk_size < 1:
        raise ConfigError(f"--chunk-size must be at least 1; got {chunk_size}.")
    with claim_file(out), scratch(out.parent, f".{out.name}.partial") as partial:
        check_output(out, force)
        parquet = out.suffix == ".parquet"
        anchor = Anchor.after(context) if isinstance(context, pd.DataFrame) else model.anchor
        first_day = _start_date(start, anchor)
        dates = business_days(first_day, int(n_steps))
        metadata = {
            b"synthmarket.anchor_close": repr(anchor.close).encode(),
            b"synthmarket.generator": model.name.encode(),
        }
        schema = pa.schema(
            [("path", pa.int64()), ("date", pa.timestamp("ns") if parquet else pa.date32())]
            + [(k, pa.float64()) for k in FIELDS],
            metadata=metadata if parquet else None,
        )
        date_array = pa.array(dates.values).cast(schema.field("date").type)
        chunks = model.sample_chunks(
            n_paths, n_steps, regime=regime, schedule=schedule, seed=seed, chunk_size=chunk_size, context=context
        )
        writer = None
        done = 0
        try:
            for features in chunks:
                paths = Paths.from_features(features, anchor, start=first_day)
                if writer is None:
                    writer = _Writer(partial, parquet, schema)
                writer.write(_table(paths, done, date_array, schema))
                done += paths.n_paths
                if on_chunk is not None:
                    on_chunk(paths.n_paths)
            writer.close()
            writer = None
            os.replace(partial, out)
        finally:
            if writer is not None:
                writer.close()
    return out


__all__ = ["SUFFIXES", "check_output", "generate_file"]
