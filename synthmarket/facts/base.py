"""The :class:`StylizedFact` base class, :class:`ArrayFact`, and helpers the facts share."""

from __future__ import annotations

import abc
from typing import ClassVar

import numpy as np
import pandas as pd

from ..errors import DataError
from ..paths import Paths

HORIZONS = (1, 5, 20, 60)


def _median(a: np.ndarray) -> float:
    a = np.asarray(a, dtype=float)
    return float(np.nanmedian(a)) if np.isfinite(a).any() else float("nan")


def _band(values: np.ndarray) -> tuple[float, float, float]:
    values = np.asarray(values, dtype=float)
    values = values[np.isfinite(values)]
    if values.size == 0:
        return (float("nan"),) * 3
    p5, med, p95 = np.percentile(values, [5, 50, 95])
    return float(med), float(p5), float(p95)


def real_windows(series: np.ndarray, length: int) -> np.ndarray | None:
    """``series`` cut along its last axis into floor(n / length) consecutive, non-overlapping windows
    of ``length``, the last ending with the series (the oldest n mod length values are left out);
    None when not one window fits. Shape (..., windows, length)."""
    series = np.asarray(series)
    n = series.shape[-1]
    count = n // length if length > 0 else 0
    if count == 0:
        return None
    return series[..., n - count * length :].reshape(*series.shape[:-1], count, length)


def percentile_among(values: np.ndarray, x: float) -> float:
    """The percentile of ``x`` among ``values``: the percent below it, ties counted half (NaN if none).

    Ties count half so that a statistic every window shares (0 invalid bars) sits at 50, not 100.
    """
    values = np.asarray(values, dtype=float)
    values = values[np.isfinite(values)]
    if values.size == 0 or not np.isfinite(x):
        return float("nan")
    return float(50.0 * (np.mean(values < x) + np.mean(values <= x)))


def paths_from_bars(bars: pd.DataFrame) -> Paths:
    """One real OHLCV DataFrame as a one-path :class:`Paths` (volume 0 when absent)."""
    missing = [k for k in ("open", "high", "low", "close") if k not in bars.columns]
    if missing:
        raise DataError(f"Bars lack column(s) {', '.join(missing)}; load them with synthmarket.data.load_data.")
    arrays = {k: np.array(bars[k], dtype=float)[None, :] for k in ("open", "high", "low", "close")}
    volume = np.array(bars["volume"], dtype=float) if "volume" in bars.columns else np.zeros(len(bars))
    index = bars.index if isinstance(bars.index, pd.DatetimeIndex) else pd.bdate_range("2000-01-03", periods=len(bars))
    return Paths(**arrays, volume=np.nan_to_num(volume)[None, :], dates=index)


class StylizedFact(abc.ABC):
    """Base class of a stylized fact. Subclass it and register it with the ``register_facts`` hook.

    Class attributes: ``name`` (its key in the scorecard), ``statistics`` (statistic key ->
    label, in display order), ``reference`` (the literature), ``needs_bars`` (``compute``
    gets the OHLCV bars, otherwise ``bars`` is None) and ``needs_volume``. The docstring's
    first line is the description; its paragraph starting ``Pass rule:`` is the rule shown
    in the scorecard. ``max_paths`` caps how many paths a costly fact is computed on (a
    seeded subsample; the scorecard says so).
    """

    name: ClassVar[str] = ""
    statistics: ClassVar[dict[str, str]] = {}
    reference: ClassVar[str] = ""
    needs_bars: ClassVar[bool] = False
    needs_volume: ClassVar[bool] = False
    max_paths: ClassVar[int | None] = None

    @classmethod
    def description(cls) -> str:
        """The first line of the class docstring."""
        doc = (cls.__doc__ or "").strip()
        return doc.splitlines()[0].strip() if doc else cls.name

    @classmethod
    def rule(cls) -> str:
        """The docstring paragraph that starts with ``Pass rule:`` (without those words)."""
        lines, found = [], False
        for line in (cls.__doc__ or "").splitlines():
            text = line.strip()
            if text.startswith("Pass rule:"):
                found, text = True, text[len("Pass rule:") :].strip()
            elif found and not text:
                break
            if found:
                lines.append(text)
        return " ".join(lines)

    @abc.abstractmethod
    def compute(self, returns: np.ndarray, bars: pd.DataFrame | None = None) -> dict[str, float]:
        """Statistics of one series of log returns (and its bars, when the fact needs them)."""

    def compute_paths(self, returns: np.ndarray, paths: Paths | None = None) -> dict[str, np.ndarray]:
        """Statistics of every row of a (paths, steps) return array; one array per statistic."""
        with_bars = self.needs_bars and paths is not None
        rows = [self.compute(returns[i], paths.path(i) if with_bars else None) for i in range(len(returns))]
        return {key: np.array([row[key] for row in rows], dtype=float) for key in self.statistics}

    @abc.abstractmethod
    def passes(self, real: dict[str, float], synthetic: dict[str, np.ndarray]) -> bool:
        """The pass rule of the docstring, applied to the real values and the per-path values."""

    def not_applicable(self, real: pd.DataFrame | None, synthetic: Paths | None) -> str | None:
        """Why this fact cannot be judged on these data (None when it can)."""
        if (self.needs_bars or self.needs_volume) and synthetic is None:
            return "the synthetic data are returns without bars"
        if self.needs_volume:
            if real is None or "volume" not in real.columns or not (real["volume"] > 0).any():
                return "the real data carry no volume"
            if synthetic is None or not (synthetic.volume > 0).any():
                return "the synthetic paths carry no volume"
        return None


class ArrayFact(StylizedFact):
    """A fact computed on many paths at once from arrays; every built-in fact is one."""

    @abc.abstractmethod
    def compute_arrays(self, returns: np.ndarray, paths: Paths | None) -> dict[str, np.ndarray]:
        """Statistics of each row of ``returns`` (paths, steps); ``paths`` holds the same paths' bars."""

    def compute(self, returns: np.ndarray, bars: pd.DataFrame | None = None) -> dict[str, float]:
        one = None if bars is None else paths_from_bars(bars)
        out = self.compute_arrays(np.asarray(returns, dtype=float)[None, :], one)
        return {key: float(value[0]) for key, value in out.items()}

    def compute_paths(self, returns: np.ndarray, paths: Paths | None = None) -> dict[str, np.ndarray]:
        return self.compute_arrays(np.asarray(returns, dtype=float), paths)
