"""A set of synthetic OHLCV paths: arrays (paths x steps) sharing one date index.

``Paths`` is what generators produce (through :meth:`Paths.from_features`), what
``synthmarket generate`` writes (long format: ``path, date, open, high, low, close, volume``)
and what the stylized facts and the Monte-Carlo runner read.

Every scenario file is read by :meth:`Paths.load` and checked by :meth:`Paths.from_frame` (the
table's shape) and :meth:`Paths.validate` (the bars); the rules are in ``docs/api.md``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from .bars import Anchor, business_days, default_start, ohlcv_arrays
from .errors import DataError
from .fields import FIELDS

PRICES = FIELDS[:4]
LONG_COLUMNS = ("path",) + ("date",) + FIELDS
REAL = "real"  # the real history's id in backtest results, so no scenario path may use it
PRICE_TOLERANCE = 1e-9  # relative slack of the bar rule, as for real bars (synthmarket.data)
BAR_RULE = "low <= open, close <= high"
# (lower, upper) price pairs of the bar rule, checked in this order
BAR_PAIRS = (("low", "high"), ("open", "high"), ("close", "high"), ("low", "open"), ("low", "close"))


def id_sort_key(path_id) -> tuple:
    """Natural order of path ids: whole numbers by value, then other ids alphabetically."""
    text = str(path_id)
    return (0, int(text), text) if re.fullmatch(r"-?\d+", text) else (1, 0, text)


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
    ids : np.ndarray
        The ``n_paths`` path ids, as in the scenario file (ints or text); 0, 1, ... when not given.
    """

    open: np.ndarray
    high: np.ndarray
    low: np.ndarray
    close: np.ndarray
    volume: np.ndarray
    dates: pd.DatetimeIndex
    anchor_close: float | None = None
    ids: np.ndarray | None = None

    def __post_init__(self) -> None:
        self.ids = np.arange(self.n_paths) if self.ids is None else np.asarray(self.ids)
        if self.ids.shape != (self.n_paths,):
            raise DataError(f"Paths has {self.n_paths} paths but {self.ids.size} path ids.")

    @classmethod
    def from_features(cls, features: np.ndarray, anchor: Anchor, *, start=None) -> Paths:
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

    @property
    def id_labels(self) -> list[str]:
        """The path ids as text: the ``path`` of backtest results."""
        return [str(i) for i in self.ids]

    def __len__(self) -> int:
        return self.n_paths

    def __repr__(self) -> str:
        span = f"{self.dates[0]:%Y-%m-%d}..{self.dates[-1]:%Y-%m-%d}" if self.n_steps else "empty"
        return f"Paths({self.n_paths} paths x {self.n_steps} bars, {span})"

    def plot(self, real: pd.DataFrame | None = None, **kwargs):
        """Fan chart (5/25/50/75/95% bands of the close) beside ``real`` bars; a matplotlib Figure."""
        from .figures import plot_paths

        return plot_paths(self, real, **kwargs)

    def _repr_html_(self) -> str:
        from .notebook import paths_html

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

    def subset(self, index) -> Paths:
        """A selection of paths (a slice, list of indices or boolean mask)."""
        return Paths(
            *(getattr(self, k)[index] for k in FIELDS),
            dates=self.dates,
            anchor_close=self.anchor_close,
            ids=self.ids[index],
        )

    def to_frame(self) -> pd.DataFrame:
        """Long format: one row per (path, date)."""
        p, s = self.close.shape
        data = {"path": np.repeat(self.ids, s), "date": np.tile(self.dates.values, p)}
        data.update({k: getattr(self, k).reshape(-1) for k in FIELDS})
        return pd.DataFrame(data)

    @classmethod
    def from_frame(cls, frame: pd.DataFrame, anchor_close: float | None = None, *, where: str = "scenarios") -> Paths:
        """Paths from the long format, in the natural order of their ids (see :func:`id_sort_key`).

        The table must hold one row per path and date, every path on the same dates, numbers
        in the price and volume columns and dates in the date column; the bars are then
        checked by :meth:`validate`. ``where`` names the table in error messages.

        Raises
        ------
        DataError
            Naming the path, the date and the rule broken.
        """
        frame = frame.rename(columns=str.lower)
        missing = [c for c in LONG_COLUMNS if c not in frame.columns]
        if missing:
            raise DataError(
                f"{where} lacks column(s) {', '.join(missing)}; expected {', '.join(LONG_COLUMNS)} "
                f"(the format `synthmarket generate` writes)."
            )
        if len(frame) == 0:
            raise DataError(f"{where} has no rows.")
        frame = frame.reset_index(drop=True)
        ids = frame["path"]
        if ids.isna().any():
            row = int(np.argmax(ids.isna().to_numpy()))
            raise DataError(f"{where}: row {row + 1} has no path id (rule: every row names its path).")
        at = lambda row: f"{where}: path {ids.iloc[row]}"  # noqa: E731

        # numbers are not dates: to_datetime would read them as nanoseconds since 1970
        numeric = pd.api.types.is_numeric_dtype(frame["date"])
        dates = pd.Series(pd.NaT, index=frame.index) if numeric else pd.to_datetime(frame["date"], errors="coerce")
        if dates.isna().any():
            row = int(np.argmax(dates.isna().to_numpy()))
            raise DataError(
                f"{at(row)}: date {frame['date'].iloc[row]!r} is not a date (rule: dates such as 2019-03-04)."
            )
        days = lambda row: f"{at(row)}, {_day(dates.iloc[row])}"  # noqa: E731
        values = {}
        for k in FIELDS:
            values[k] = pd.to_numeric(frame[k], errors="coerce")
            text = values[k].isna() & frame[k].notna()
            if text.any():
                row = int(np.argmax(text.to_numpy()))
                raise DataError(
                    f"{days(row)}: {k} {frame[k].iloc[row]!r} is not a number (rule: prices and volume are numbers)."
                )

        codes, first_seen = pd.factorize(ids)
        natural = sorted(range(len(first_seen)), key=lambda i: id_sort_key(first_seen[i]))
        ordered = np.asarray(first_seen)[natural]
        position = np.argsort(natural)[codes]  # each row's path, counted in the natural order
        stamps = dates.to_numpy(dtype="datetime64[ns]")
        order = np.lexsort((stamps, position))
        position, stamps = position[order], stamps[order]
        twice = (np.diff(position) == 0) & (np.diff(stamps) == np.timedelta64(0))
        if twice.any():
            row = int(order[np.argmax(twice) + 1])
            raise DataError(f"{days(row)}: more than one row (rule: one row per path and date).")
        counts = np.bincount(position, minlength=len(ordered))
        _same_dates(np.split(stamps, np.cumsum(counts)[:-1]), ordered, where)
        shape = (len(ordered), int(counts[0]))
        arrays = {k: values[k].to_numpy(dtype=float)[order].reshape(shape) for k in FIELDS}
        dates = pd.DatetimeIndex(stamps[: shape[1]], name="date")
        return cls(**arrays, dates=dates, anchor_close=anchor_close, ids=ordered).validate(where)

    def validate(self, where: str = "scenarios") -> Paths:
        """Refuse bars a backtest or the stylized facts would misread; return ``self``.

        Rules: path ids unique, none of them ``"real"``; dates increasing; prices finite and
        positive; ``low <= open, close <= high`` (relative tolerance :data:`PRICE_TOLERANCE`);
        volume finite and ``>= 0``.

        Raises
        ------
        DataError
            Naming the path, the date and the rule broken (``where`` names the paths).
        """
        labels = self.id_labels
        twice = pd.Index(labels).duplicated()
        if twice.any():
            raise DataError(f"{where}: path {labels[int(np.argmax(twice))]} appears twice (rule: path ids are unique).")
        if REAL in labels:
            raise DataError(
                f"{where}: path {REAL} (rule: the id {REAL!r} is kept for the real history in backtest results)."
            )
        if not (self.dates.is_monotonic_increasing and self.dates.is_unique):
            j = int(np.argmax(np.diff(self.dates.asi8) <= 0)) + 1
            raise DataError(f"{where}: {_day(self.dates[j])} follows {_day(self.dates[j - 1])} (rule: dates increase).")

        def refuse(bad: np.ndarray, what, rule: str) -> None:
            if bad.any():
                i, j = np.argwhere(bad)[0]
                raise DataError(f"{where}: path {labels[i]}, {_day(self.dates[j])}: {what(i, j)} (rule: {rule}).")

        for k in PRICES:
            x = getattr(self, k)
            refuse(
                ~(np.isfinite(x) & (x > 0)),
                lambda i, j: f"{k} {_num(x[i, j])} is not a finite positive price",
                "prices are finite and positive",
            )
        slack = PRICE_TOLERANCE * self.close
        for lower, upper in BAR_PAIRS:
            low, high = getattr(self, lower), getattr(self, upper)
            refuse(
                high < low - slack,
                lambda i, j: f"{upper} {_num(high[i, j])} is below {lower} {_num(low[i, j])}",
                BAR_RULE,
            )
        v = self.volume
        refuse(
            ~(np.isfinite(v) & (v >= 0)),
            lambda i, j: f"volume {_num(v[i, j])} is negative or not a number",
            "volume is finite and >= 0",
        )
        return self

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
    def load(cls, file: str | Path) -> Paths:
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
        return cls.from_frame(frame, anchor_close=anchor, where=file.name)


def _same_dates(dates: list[np.ndarray], ids: np.ndarray, where: str) -> None:
    """Refuse unless every path has the first path's dates, naming a date that differs."""
    first = dates[0]
    for path_id, own in zip(ids, dates):
        if len(own) != len(first) or (own != first).any():
            day = np.setxor1d(first, own)[0]
            what = f"path {ids[0]} has no bar on this date" if day in own else f"no bar, while path {ids[0]} has one"
            raise DataError(f"{where}: path {path_id}, {_day(day)}: {what} (rule: every path has the same dates).")


def _day(stamp) -> str:
    stamp = pd.Timestamp(stamp)
    return f"{stamp:%Y-%m-%d}" if stamp == stamp.normalize() else str(stamp)


def _num(x: float) -> str:
    return f"{x:.10g}"
