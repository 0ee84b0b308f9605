"""A set of synthetic OHLCV paths: arrays (paths x steps) sharing one date index.

``Paths`` is what generators produce (through :meth:`Paths.from_features`), what
``synthmarket generate`` writes (long format: ``path, date, open, high, low, close, volume``)
and what the stylized facts and the Monte-Carlo runner read.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from .bars import Anchor, business_days, default_start, ohlcv_arrays
from .errors import DataError

FIELDS = ("open", "high", "low", "close", "volume")
LONG_COLUMNS = ("path",) + ("date",) + FIELDS


@dataclass
class Paths:
    """``n_paths`` OHLCV paths of ``n_steps`` bars on a common business-day index.

    Attributes
    ----------
    open, high, low, close, volume : np.ndarray
        Arrays of shape (n_paths, n_steps).
    dates : pd.DatetimeIndex
        The ``n_steps`` bar dates.
    anchor_close : float or None
        The close the paths start from, so the first bar's return is known.
    """

    open: np.ndarray
    high: np.ndarray
    low: np.ndarray
    close: np.ndarray
    volume: np.ndarray
    dates: pd.DatetimeIndex
    anchor_close: float | None = None

    @classmethod
    def from_features(cls, features: np.ndarray, anchor: Anchor, *, start=None) -> "Paths":
        """Paths from a feature array of shape (P, S, C) (see :mod:`synthmarket.bars`)."""
        features = np.asarray(features)
        if features.ndim != 3:
            raise DataError(f"Expected features of shape (paths, steps, channels); got {features.shape}.")
        arrays = ohlcv_arrays(features, anchor)
        dates = business_days(start if start is not None else default_start(anchor), features.shape[1])
        return cls(**arrays, dates=dates, anchor_close=anchor.close)

    @property
    def n_paths(self) -> int:
        return self.close.shape[0]

    @property
    def n_steps(self) -> int:
        return self.close.shape[1]

    def __len__(self) -> int:
        return self.n_paths

    def __repr__(self) -> str:
        span = f"{self.dates[0]:%Y-%m-%d}..{self.dates[-1]:%Y-%m-%d}" if self.n_steps else "empty"
        return f"Paths({self.n_paths} paths x {self.n_steps} bars, {span})"

    def plot(self, real: pd.DataFrame | None = None, **kwargs):
        """Fan chart (5/25/50/75/95% bands of the close) beside ``real`` bars; a matplotlib Figure."""
        from .report import plot_paths

        return plot_paths(self, real, **kwargs)

    def _repr_html_(self) -> str:
        from .report import paths_html

        return paths_html(self)

    def path(self, i: int) -> pd.DataFrame:
        """Path ``i`` as an OHLCV DataFrame indexed by date."""
        return pd.DataFrame({k: getattr(self, k)[i] for k in FIELDS}, index=self.dates.rename("date"))

    def log_returns(self) -> np.ndarray:
        """Close-to-close log returns, shape (P, S) when the anchor is known, else (P, S - 1)."""
        log_c = np.log(self.close)
        if self.anchor_close is not None:
            return np.diff(log_c, axis=1, prepend=np.log(self.anchor_close))
        return np.diff(log_c, axis=1)

    def subset(self, index) -> "Paths":
        """A selection of paths (a slice, list of indices or boolean mask)."""
        return Paths(*(getattr(self, k)[index] for k in FIELDS), dates=self.dates, anchor_close=self.anchor_close)

    def to_frame(self) -> pd.DataFrame:
        """Long format: one row per (path, date)."""
        p, s = self.close.shape
        data = {"path": np.repeat(np.arange(p), s), "date": np.tile(self.dates.values, p)}
        data.update({k: getattr(self, k).reshape(-1) for k in FIELDS})
        return pd.DataFrame(data)

    @classmethod
    def from_frame(cls, frame: pd.DataFrame, anchor_close: float | None = None) -> "Paths":
        """Paths from the long format; every path must have the same dates."""
        frame = frame.rename(columns=str.lower)
        missing = [c for c in LONG_COLUMNS if c not in frame.columns]
        if missing:
            raise DataError(
                f"Scenario table lacks column(s) {', '.join(missing)}; expected {', '.join(LONG_COLUMNS)} "
                f"(the format `synthmarket generate` writes)."
            )
        if len(frame) == 0:
            raise DataError("Scenario table has no rows.")
        frame = frame.sort_values(["path", "date"], kind="stable")
        ids = frame["path"].unique()
        sizes = frame.groupby("path", sort=False).size()
        if sizes.nunique() != 1:
            raise DataError("Scenario paths have different lengths; every path must have the same dates.")
        s = int(sizes.iloc[0])
        dates = pd.DatetimeIndex(pd.to_datetime(frame["date"].iloc[:s]), name="date")
        arrays = {k: frame[k].to_numpy(dtype=float).reshape(len(ids), s) for k in FIELDS}
        return cls(**arrays, dates=dates, anchor_close=anchor_close)

    def save(self, file: str | Path) -> Path:
        """Write the long format to ``.parquet`` or ``.csv`` (chosen by the suffix)."""
        file = Path(file)
        frame = self.to_frame()
        if self.anchor_close is not None:
            frame.attrs["anchor_close"] = self.anchor_close
        file.parent.mkdir(parents=True, exist_ok=True)
        if file.suffix == ".parquet":
            import pyarrow as pa
            import pyarrow.parquet as pq

            table = pa.Table.from_pandas(frame, preserve_index=False)
            meta = dict(table.schema.metadata or {})
            if self.anchor_close is not None:
                meta[b"synthmarket.anchor_close"] = repr(self.anchor_close).encode()
            pq.write_table(table.replace_schema_metadata(meta), file)
        elif file.suffix == ".csv":
            frame.to_csv(file, index=False, date_format="%Y-%m-%d")
        else:
            raise DataError(f"Cannot write {file.name!r}: use a .parquet or .csv file name.")
        return file

    @classmethod
    def load(cls, file: str | Path) -> "Paths":
        """Read a file written by :meth:`save` or by ``synthmarket generate``."""
        file = Path(file)
        if not file.exists():
            raise DataError(f"No such scenario file: {str(file)!r}.")
        if file.is_dir():
            raise DataError(f"{str(file)!r} is a directory; give the .parquet or .csv file inside it.")
        anchor = None
        try:
            if file.suffix == ".parquet":
                import pyarrow.parquet as pq

                table = pq.read_table(file)
                raw = (table.schema.metadata or {}).get(b"synthmarket.anchor_close")
                anchor = float(raw) if raw else None
                frame = table.to_pandas()
            elif file.suffix == ".csv":
                frame = pd.read_csv(file)
            else:
                raise DataError(f"Cannot read {file.name!r}: scenario files are .parquet or .csv.")
        except DataError:
            raise
        except Exception as exc:
            raise DataError(f"Could not read scenario file {str(file)!r}: {exc}") from exc
        return cls.from_frame(frame, anchor_close=anchor)
