"""Scenario sources: the paths a run reads chunk by chunk, in memory or sampled lazily, and cut
into the batches of arrays that workers run (:func:`batch_tasks`)."""

from __future__ import annotations

import abc
import dataclasses
import functools
import hashlib
import json
import os
from collections.abc import Iterator

import numpy as np
import pandas as pd

from ..bars import Anchor, business_days, default_start
from ..checks import check_seed
from ..errors import ConfigError, DataError
from ..feeds import FeedArrays, date_numbers
from ..paths import FIELDS, REAL, Paths
from .batch import BatchTask
from .settings import Settings


class ScenarioSet(abc.ABC):
    """Paths the runner reads chunk by chunk: ``n_paths``, ``n_steps``, ``fingerprint`` and ``chunks()``.

    ``fingerprint`` identifies the paths, so that a resumed run can check it continues
    the same scenarios.
    """

    n_paths: int
    n_steps: int
    fingerprint: str

    @property
    def dates(self):
        """The dates every path shares (a ``DatetimeIndex`` of ``n_steps`` bars); by default
        those of the first chunk."""
        return next(iter(self.chunks())).dates

    @abc.abstractmethod
    def chunks(self) -> Iterator[Paths]:
        """Consecutive :class:`Paths` chunks, each with its path ids (``Paths.ids``)."""


class InMemoryScenarios(ScenarioSet):
    """A :class:`Paths` set already in memory (or read from a scenario file), checked by
    :meth:`Paths.validate`."""

    def __init__(self, paths: Paths) -> None:
        if paths.n_paths < 1 or paths.n_steps < 1:
            raise DataError(f"The scenario set is empty ({paths!r}).")
        self.paths = paths.validate()
        self.n_paths, self.n_steps = paths.n_paths, paths.n_steps
        digest = hashlib.sha256(paths.dates.asi8.tobytes())
        digest.update("\n".join(paths.id_labels).encode())
        for k in FIELDS:
            digest.update(np.ascontiguousarray(getattr(paths, k), dtype=np.float64).tobytes())
        self.fingerprint = digest.hexdigest()[:16]

    @property
    def dates(self):
        return self.paths.dates

    def chunks(self) -> Iterator[Paths]:
        yield self.paths


class GeneratedScenarios(ScenarioSet):
    """Paths sampled from a fitted generator one chunk at a time, so memory stays flat.

    The same generator, sizes, regime and seed give the same paths as
    ``generator.sample_paths`` (and ``synthmarket generate``) does, with ids 0, 1, ...
    """

    def __init__(
        self,
        generator,
        n_paths: int,
        n_steps: int,
        *,
        regime: str | None = None,
        schedule=None,
        seed: int | None = None,
        start=None,
        context="last",
    ) -> None:
        if int(n_paths) < 1 or int(n_steps) < 1:
            raise ConfigError(f"Need at least one path of at least one bar; got {n_paths} x {n_steps}.")
        self.generator, self.regime, self.schedule, self.start = generator, regime, schedule, start
        self.context = context
        #: Where the paths start: the last bar of real bars given as the context, else the training data's end.
        self.anchor = Anchor.after(context) if isinstance(context, pd.DataFrame) else generator.anchor
        self.seed = check_seed(seed)
        self.n_paths, self.n_steps = int(n_paths), int(n_steps)
        generator.regime_labels(self.n_steps, regime, schedule)  # fail now on a bad regime, not in the run
        spec = {
            "model": generator.config(),
            "n_paths": self.n_paths,
            "n_steps": self.n_steps,
            "regime": regime,
            "schedule": None if schedule is None else str(schedule),
            "seed": seed,
            "start": str(start),
            "context": context if context is None or isinstance(context, str) else f"bars to {self.anchor.date}",
        }
        self.fingerprint = hashlib.sha256(json.dumps(spec, sort_keys=True, default=str).encode()).hexdigest()[:16]

    @property
    def dates(self):
        return business_days(self.start if self.start is not None else default_start(self.anchor), self.n_steps)

    def chunks(self) -> Iterator[Paths]:
        first = 0
        for features in self.generator.sample_chunks(
            self.n_paths, self.n_steps, regime=self.regime, schedule=self.schedule, seed=self.seed, context=self.context
        ):
            paths = Paths.from_features(features, self.anchor, start=self.start)
            yield dataclasses.replace(paths, ids=np.arange(first, first + paths.n_paths))
            first += paths.n_paths


def as_scenarios(scenarios: ScenarioSet | Paths | str | os.PathLike) -> ScenarioSet:
    """A :class:`ScenarioSet` from a set, a :class:`Paths` or a scenario file."""
    if isinstance(scenarios, ScenarioSet):
        return scenarios
    if isinstance(scenarios, Paths):
        return InMemoryScenarios(scenarios)
    if isinstance(scenarios, (str, os.PathLike)):
        return InMemoryScenarios(Paths.load(scenarios))
    raise DataError(
        f"Scenarios must be a Paths set, a scenario file (.parquet/.csv) or a ScenarioSet; got {type(scenarios).__name__}."
    )


def batch_tasks(
    strategy: str | type,
    params: dict,
    settings: Settings,
    source: ScenarioSet,
    real: FeedArrays | None,
    done: set[str],
    size: int,
    fail_fast: bool,
) -> Iterator[BatchTask]:
    """Batches of the paths not yet done: the real history first, then the synthetic paths."""
    make = functools.partial(BatchTask, strategy, params, settings, fail_fast=fail_fast)
    if real is not None and REAL not in done:
        bars = np.stack([getattr(real, k) for k in FIELDS])[:, None, :]
        yield make((REAL,), real.dates, bars)
    count = 0
    for chunk in source.chunks():
        dates = date_numbers(chunk.dates)
        labels = chunk.id_labels
        todo = [i for i, label in enumerate(labels) if label not in done]
        for start in range(0, len(todo), size):
            index = todo[start : start + size]
            bars = np.stack([np.asarray(getattr(chunk, k), dtype=np.float64)[index] for k in FIELDS])
            yield make(tuple(labels[i] for i in index), dates, bars)
        count += chunk.n_paths
    if count != source.n_paths:
        raise DataError(f"The scenario source gave {count} paths; it announced {source.n_paths}.")
