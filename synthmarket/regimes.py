"""Market regimes: a label per bar, and schedules of regimes for stress scenarios.

A :class:`RegimeScheme` is fitted on the training bars (its thresholds are the training
set's terciles) and stored in the model directory, so the same definition labels new data.

- ``volatility``: trailing realized volatility of log returns -> calm / normal / turbulent;
- ``trend``: trailing sum of log returns -> bear / flat / bull;
- any other name: a column of the data holding a label per bar (its distinct values, sorted).

A schedule says which regime each step of a path is in: ``"calm:200,turbulent:40,calm:200"``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd

from .errors import ConfigError, DataError

BUILT_IN = {
    "volatility": (("calm", "normal", "turbulent"), 20),
    "trend": (("bear", "flat", "bull"), 60),
}
MAX_SCHEDULE_STEPS = 10_000_000


@dataclass(frozen=True)
class RegimeScheme:
    """How bars are labelled with regimes; plain data, stored as JSON."""

    kind: str
    names: tuple[str, ...]
    window: int = 0
    thresholds: tuple[float, ...] = ()

    @property
    def column(self) -> str | None:
        """The data column holding the labels, or None for a built-in scheme."""
        return None if self.kind in BUILT_IN else self.kind

    def label(self, bars: pd.DataFrame) -> np.ndarray:
        """An integer label (index into ``names``) for every bar of ``bars``.

        Built-in schemes label the first ``window`` bars (whose trailing window is not yet
        complete) like the first bar that has a complete window.
        """
        if self.column is not None:
            values = _label_column(bars, self.column)
            unknown = sorted(set(values) - set(self.names))
            if unknown:
                raise DataError(
                    f"Column {self.column!r} holds regimes {unknown} that the model does not know "
                    f"({', '.join(self.names)}). Relabel those bars, or retrain on data that has them."
                )
            lookup = {n: i for i, n in enumerate(self.names)}
            return np.array([lookup[v] for v in values], dtype=np.int64)
        if len(bars) < 3:
            raise DataError(f"{len(bars)} bar(s) are too few to label {self.kind} regimes; give at least 3.")
        stat = _statistic(bars, self.kind, self.window)
        labels = np.searchsorted(np.asarray(self.thresholds), stat, side="right").astype(np.int64)
        first = self.window  # the first bar whose trailing window is complete
        if len(labels) > first:
            labels[:first] = labels[first]
        return labels

    def last_label(self, returns: np.ndarray) -> int | None:
        """The regime of the last of these log close returns for a built-in scheme (its
        statistic over the last ``window`` of them); None for labels read from a column."""
        if self.column is not None:
            return None
        tail = pd.Series(np.asarray(returns, dtype=np.float64)[-self.window :])
        stat = _rolling_statistic(tail, self.kind, self.window)[-1]
        return int(np.searchsorted(np.asarray(self.thresholds), stat, side="right"))

    def index(self, name: str) -> int:
        """The label of regime ``name``."""
        try:
            return self.names.index(name)
        except ValueError:
            raise ConfigError(f"Unknown regime {name!r}; this model knows {', '.join(self.names)}.") from None

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> RegimeScheme:
        return cls(data["kind"], tuple(data["names"]), int(data["window"]), tuple(data["thresholds"]))


def _label_column(bars: pd.DataFrame, column: str) -> np.ndarray:
    if column not in bars.columns:
        raise DataError(
            f"The data have no column {column!r} to read regimes from (columns: {', '.join(map(str, bars.columns))})."
        )
    raw = bars[column]
    if raw.isna().any():
        dates = ", ".join(str(pd.Timestamp(d).date()) for d in bars.index[raw.isna().to_numpy()][:5])
        raise DataError(f"Column {column!r} has no regime at {dates}. Give every bar a label.")
    return raw.astype(str).str.strip().to_numpy()


def _statistic(bars: pd.DataFrame, kind: str, window: int) -> np.ndarray:
    return _rolling_statistic(np.log(bars["close"]).diff(), kind, window)


def _rolling_statistic(returns: pd.Series, kind: str, window: int) -> np.ndarray:
    """The trailing ``window``-bar volatility (std) or trend (sum) of log returns, at every bar."""
    rolled = returns.rolling(window, min_periods=2)
    stat = rolled.std() if kind == "volatility" else rolled.sum()
    return stat.bfill().to_numpy()


def fit_regimes(bars: pd.DataFrame, by: str, window: int | None = None) -> RegimeScheme:
    """Fit a regime scheme on training bars: ``volatility``, ``trend`` or a column name."""
    if by in BUILT_IN:
        names, default_window = BUILT_IN[by]
        window = default_window if window is None else window
        if not isinstance(window, (int, np.integer)) or isinstance(window, bool) or window < 2:
            raise ConfigError(f"The {by} regime window must be a whole number of bars, at least 2; got {window!r}.")
        window = int(window)
        if len(bars) < 3 * window:
            raise DataError(
                f"{len(bars)} bars are too few for {by} regimes over {window}-bar windows; give at least {3 * window}."
            )
        stat = _statistic(bars, by, window)[window:]
        thresholds = tuple(float(q) for q in np.quantile(stat, [1 / 3, 2 / 3]))
        return RegimeScheme(by, names, window, thresholds)
    if by not in bars.columns:
        raise ConfigError(
            f"Unknown regimes {by!r}: use 'volatility', 'trend', or the name of a column of the data "
            f"(columns: {', '.join(map(str, bars.columns))})."
        )
    names = tuple(sorted(set(_label_column(bars, by))))
    if len(names) < 2:
        raise DataError(f"Column {by!r} holds a single regime ({names[0]!r}); conditioning needs at least two.")
    return RegimeScheme(by, names)


def parse_schedule(spec: str, names: tuple[str, ...] | list[str]) -> np.ndarray:
    """``"calm:200,turbulent:40"`` -> an array of 240 labels (indices into ``names``).

    Parameters
    ----------
    spec : str
        Comma-separated ``regime:steps`` items, in order.
    names : sequence of str
        The regimes the model knows; a label is an index into it.

    Raises
    ------
    ConfigError
        For an empty schedule, an item without a colon, an unknown regime, or a step count
        that is not a positive whole number.
    """
    example = "e.g. 'calm:200,turbulent:40,calm:200'"
    if not isinstance(spec, str) or not spec.strip():
        raise ConfigError(f"The schedule is empty. A schedule is a list of regime:steps items, {example}.")
    parts = []
    for item in spec.split(","):
        if not item.strip():
            raise ConfigError(f"The schedule {spec!r} has an empty item (a stray comma?). Write it like {example[5:]}.")
        name, sep, steps = item.strip().partition(":")
        if not sep or not name.strip():
            raise ConfigError(f"Schedule item {item.strip()!r} is not regime:steps (e.g. 'turbulent:40').")
        name = name.strip()
        if name not in names:
            raise ConfigError(f"Schedule names regime {name!r}; the model knows {', '.join(names)}.")
        try:
            n = int(steps)
        except ValueError:
            raise ConfigError(
                f"Schedule item {item.strip()!r}: {steps.strip()!r} is not a whole number of steps."
            ) from None
        if n <= 0:
            raise ConfigError(f"Schedule item {item.strip()!r}: the number of steps must be positive.")
        parts.append((list(names).index(name), n))
    total = sum(n for _, n in parts)
    if total > MAX_SCHEDULE_STEPS:
        raise ConfigError(f"The schedule covers {total} steps; at most {MAX_SCHEDULE_STEPS} are allowed.")
    return np.concatenate([np.full(n, label, dtype=np.int64) for label, n in parts])
