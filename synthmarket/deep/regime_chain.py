"""Regimes without a schedule: a Markov chain of regimes fitted on the training labels."""

from __future__ import annotations

import numpy as np


class RegimeChain:
    """A first-order Markov chain over regime indices, fitted on the training labels.

    A conditional model asked for paths without a regime or schedule draws one regime path
    per sample path from this chain, so its output mixes regimes as the data did.
    """

    def __init__(self, transition: np.ndarray, initial: np.ndarray) -> None:
        self.transition = np.asarray(transition, dtype=np.float64)
        self.initial = np.asarray(initial, dtype=np.float64)

    @classmethod
    def fit(cls, labels: np.ndarray, n_regimes: int) -> RegimeChain:
        labels = np.asarray(labels, dtype=np.int64)
        counts = np.ones((n_regimes, n_regimes))  # add-one smoothing: every move stays possible
        np.add.at(counts, (labels[:-1], labels[1:]), 1.0)
        initial = np.bincount(labels, minlength=n_regimes) + 1.0
        return cls(counts / counts.sum(axis=1, keepdims=True), initial / initial.sum())

    def sample(self, n_paths: int, n_steps: int, rng: np.random.Generator, first: int | None = None) -> np.ndarray:
        """(n_paths, n_steps) regime indices, starting from regime ``first`` (None: the initial mix)."""
        cumulative = np.cumsum(self.transition, axis=1)
        out = np.empty((n_paths, n_steps), dtype=np.int64)
        if first is None:
            out[:, 0] = rng.choice(len(self.initial), size=n_paths, p=self.initial)
        else:
            out[:, 0] = first
        u = rng.random((n_paths, n_steps))
        for t in range(1, n_steps):
            row = cumulative[out[:, t - 1]]
            out[:, t] = np.minimum((u[:, t, None] > row).sum(axis=1), len(self.initial) - 1)
        return out

    def to_array(self) -> np.ndarray:
        """The transition matrix with the initial distribution as its last row: (k + 1, k)."""
        return np.vstack([self.transition, self.initial[None, :]]).astype(np.float64)

    @classmethod
    def from_array(cls, array: np.ndarray) -> RegimeChain:
        array = np.asarray(array, dtype=np.float64)
        if array.ndim != 2 or array.shape[0] != array.shape[1] + 1 or not np.isfinite(array).all():
            raise ValueError(f"regime chain has shape {array.shape}; expected (k + 1, k)")
        return cls(array[:-1], array[-1])
