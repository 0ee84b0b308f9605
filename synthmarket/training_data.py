"""The training data: real bars prepared for a generator to learn from.

:class:`TrainingData` holds the scaled features, the regime labels, the held-out validation
blocks and the stretches of training rows between them and the data's gaps;
:func:`window_starts` lists the training windows that lie inside one stretch.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from .bars import Anchor, FeatureScaler, channels, has_volume, to_features
from .data import fingerprint
from .errors import ConfigError
from .gaps import GAP_BUSINESS_DAYS, Gap, find_gaps
from .regimes import RegimeScheme, fit_regimes

#: What training does with a gap in the data: leave out the return across it, or keep it.
GAP_POLICIES = ("split", "keep")


@dataclass
class TrainingData:
    """Real bars prepared for training: scaled features, regime labels and a validation split.

    ``train`` and ``validation`` are scaled feature arrays (T, C); ``train_labels`` and
    ``validation_labels`` hold a regime index per row when a scheme is given. The held-out
    share (``validation_fraction``) is ``validation_blocks`` equal blocks of consecutive
    bars, evenly spread, the last one ending at the latest bar; one block (the default) holds
    out the latest bars. ``train`` is the rest, stretch after stretch; ``train_segments``
    gives the stretches' lengths, and :meth:`window_starts` the windows that lie inside one.
    ``gaps`` lists the data's gaps (:func:`~synthmarket.gaps.find_gaps`); with ``gap_policy``
    "split" (the default) the return across each is left out, so no window spans it, and
    with "keep" the bars on either side are treated as consecutive. ``series`` holds every
    kept row in time order (scaled) and ``held_out`` marks the validation rows among them, so
    that a validation forecast can start from the real bars before a held-out day.
    """

    bars: pd.DataFrame
    scaler: FeatureScaler
    train: np.ndarray
    validation: np.ndarray
    anchor: Anchor
    fingerprint: str
    scheme: RegimeScheme | None = None
    train_labels: np.ndarray | None = None
    validation_labels: np.ndarray | None = None
    train_segments: tuple[int, ...] = ()
    gaps: tuple[Gap, ...] = ()
    gap_policy: str = "split"
    series: np.ndarray | None = None
    held_out: np.ndarray | None = None

    def __post_init__(self) -> None:
        if not self.train_segments:
            self.train_segments = (len(self.train),)

    @classmethod
    def from_bars(
        cls,
        bars: pd.DataFrame,
        *,
        regimes: str | RegimeScheme | None = None,
        validation_fraction: float = 0.15,
        validation_blocks: int = 1,
        gaps: str = "split",
    ) -> TrainingData:
        if not 0 <= validation_fraction < 0.9:
            raise ConfigError(f"validation_fraction must be in [0, 0.9); got {validation_fraction}.")
        if (
            isinstance(validation_blocks, bool)
            or not isinstance(validation_blocks, (int, np.integer))
            or validation_blocks < 1
        ):
            raise ConfigError(f"validation_blocks must be a whole number, at least 1; got {validation_blocks!r}.")
        if gaps not in GAP_POLICIES:
            raise ConfigError(f"gaps must be one of {', '.join(GAP_POLICIES)}; got {gaps!r}.")
        raw = to_features(bars)
        found = tuple(find_gaps(bars))
        kept = np.ones(len(raw), dtype=bool)  # row i of the features is the return into bar i + 1
        if gaps == "split":
            kept[[gap.after - 1 for gap in found]] = False
        held_out = _held_out_rows(len(raw), validation_fraction, int(validation_blocks))
        training = ~held_out & kept
        held_out &= kept
        n_train = int(training.sum())
        if n_train < 50:
            raise ConfigError(f"Only {n_train} training bars; give at least 50 (a longer date range).")
        segments = _stretches(training)
        if min(segments) < 2:
            raise ConfigError(
                f"{validation_blocks} validation blocks leave training stretches of under 2 bars; use fewer."
            )
        scaler = FeatureScaler.fit(raw[training], channels(has_volume(bars)))
        scaled = scaler.transform(raw).astype(np.float32)
        scheme = labels = None
        if regimes is not None:
            last_train_row = int(np.flatnonzero(training)[-1])
            train_bars = bars.iloc[: last_train_row + 2]  # row i of the features is the bar i + 1
            scheme = regimes if isinstance(regimes, RegimeScheme) else fit_regimes(train_bars, regimes)
            labels = scheme.label(bars)[1:]
        return cls(
            bars=bars,
            scaler=scaler,
            train=scaled[training],
            validation=scaled[held_out],
            anchor=Anchor.after(bars),
            fingerprint=fingerprint(bars),
            scheme=scheme,
            train_labels=None if labels is None else labels[training],
            validation_labels=None if labels is None else labels[held_out],
            train_segments=tuple(segments),
            gaps=found,
            gap_policy=gaps,
            series=scaled[kept],
            held_out=held_out[kept],
        )

    def gap_note(self) -> str | None:
        """One sentence on the data's gaps and what training does with them (None: no gap)."""
        if not self.gaps:
            return None
        longest = max(self.gaps, key=lambda gap: gap.days)
        what = (
            "no training window spans it (--gaps keep learns across it)"
            if self.gap_policy == "split"
            else "the bars on either side are learned as consecutive days (--gaps keep)"
        )
        count = "one gap" if len(self.gaps) == 1 else f"{len(self.gaps)} gaps"
        return (
            f"The data have {count} of more than {GAP_BUSINESS_DAYS} business days without a bar "
            f"({'the longest ' if len(self.gaps) > 1 else ''}{longest}); {what}."
        )

    @property
    def n_channels(self) -> int:
        return self.train.shape[1]

    @property
    def longest_segment(self) -> int:
        """Bars in the longest contiguous stretch of ``train`` (the longest window it holds)."""
        return max(self.train_segments)

    def window_starts(self, window: int, stride: int = 1) -> np.ndarray:
        """Rows of ``train`` where a window of ``window`` bars starts and stays inside one stretch."""
        return window_starts(self.train_segments, window, stride)


def window_starts(segments: Sequence[int], window: int, stride: int = 1) -> np.ndarray:
    """Start rows of the windows of ``window`` bars, every ``stride`` rows, that lie inside one of
    the stretches of lengths ``segments`` laid end to end."""
    ends = np.cumsum(segments)
    out = np.concatenate(
        [end - length + np.arange(0, length - window + 1, stride) for end, length in zip(ends, segments)]
    )
    if not out.size:
        raise ConfigError(f"No training stretch holds a window of {window} bars (the longest has {max(segments)}).")
    return out.astype(np.int64)


def _held_out_rows(n: int, fraction: float, blocks: int) -> np.ndarray:
    """A mask of the rows held out: ``blocks`` equal blocks, the last at the end, evenly spread."""
    n_val = int(round(n * fraction))
    mask = np.zeros(n, dtype=bool)
    if n_val == 0:
        return mask
    blocks = min(blocks, n_val)
    block_sizes = np.diff(np.linspace(0, n_val, blocks + 1).round().astype(int))
    gap_sizes = np.diff(np.linspace(0, n - n_val, blocks + 1).round().astype(int))
    row = 0
    for gap, size in zip(gap_sizes, block_sizes):
        row += gap
        mask[row : row + size] = True
        row += size
    return mask


def _stretches(mask: np.ndarray) -> list[int]:
    """Lengths of the runs of True in ``mask``."""
    edges = np.diff(np.concatenate([[0], mask.astype(np.int8), [0]]))
    return [int(n) for n in np.flatnonzero(edges == -1) - np.flatnonzero(edges == 1)]
