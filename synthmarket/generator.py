"""The Generator base class every model plugin subclasses, and the TrainReport of a fit.

A subclass sets ``name`` (and ``conditional = True`` when it learns regimes), lists its
hyper-parameters with their defaults in ``defaults``, and implements four methods:

- ``_fit(dataset, config) -> TrainReport``: learn from ``dataset.train`` (scaled features of
  :class:`~synthmarket.training_data.TrainingData`);
- ``_sample(n, labels, rng, n_steps) -> array (n, n_steps, C)``: scaled features for ``n``
  paths (``labels`` is None or one regime index per step; ``rng`` is the only noise source);
- ``_state() -> dict[str, np.ndarray]`` and ``_load_state(state)``: the weights.

Everything else — scaling, regimes and schedules, seeds, chunked sampling, bars, saving
and loading — is done here once for every model.

:meth:`Generator.save` writes a model directory and :meth:`Generator.load` reads one back
(its files: :mod:`synthmarket.model_files`), finding the generator among the installed
plugins by its name only.
"""

from __future__ import annotations

import abc
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Iterator

import numpy as np
import pandas as pd

from .bars import Anchor, FeatureScaler
from .checks import check_seed
from .errors import ConfigError, ModelFileError, PluginError
from .model_files import CONFIG_FILE, FORMAT, FORMAT_VERSION, read_config, read_weights, write_config, write_weights
from .paths import Paths
from .regimes import RegimeScheme, parse_schedule
from .training_data import TrainingData

DEFAULT_CHUNK = 4096


def package_version() -> str:
    from . import __version__

    return __version__


@dataclass
class TrainReport:
    """What a fit did: time, device, steps, why it stopped, and the logged history."""

    generator: str
    seconds: float
    device: str = "cpu"
    steps: int = 0
    stopped: str = "finished"
    best_score: float | None = None
    best_step: int | None = None
    history: list[dict] = field(default_factory=list)

    def summary(self) -> str:
        best = "" if self.best_score is None else f", best validation score {self.best_score:.4g} at step {self.best_step}"
        return f"{self.generator}: {self.steps} steps in {self.seconds:.1f}s on {self.device} ({self.stopped}){best}"

    def to_dict(self) -> dict:
        return {k: getattr(self, k) for k in self.__dataclass_fields__}

    def plot(self):
        """Loss and validation curves from the history; a matplotlib Figure."""
        from .figures import plot_training

        return plot_training(self)

    def _repr_html_(self) -> str:
        from .notebook import train_report_html

        return train_report_html(self)


class Generator(abc.ABC):
    """Base class of every generator plugin. See the module docstring for the contract."""

    name: ClassVar[str] = ""
    conditional: ClassVar[bool] = False
    defaults: ClassVar[dict[str, Any]] = {}
    #: Hyper-parameters added to ``defaults`` after models had been saved without them, with
    #: the values that rebuild those models (used by :meth:`load` only).
    added_later: ClassVar[dict[str, Any]] = {}

    def __init__(self, **hparams: Any) -> None:
        unknown = sorted(set(hparams) - set(self.defaults))
        if unknown:
            known = ", ".join(f"{k}={v!r}" for k, v in self.defaults.items()) or "none"
            raise ConfigError(f"{self.name}: unknown hyper-parameter(s) {', '.join(unknown)}. Known: {known}.")
        self.hparams: dict[str, Any] = {**self.defaults, **hparams}
        self.scaler: FeatureScaler | None = None
        self.anchor: Anchor | None = None
        self.scheme: RegimeScheme | None = None
        self.fingerprint: str | None = None
        self.report: TrainReport | None = None

    def __repr__(self) -> str:
        state = "fitted" if self.is_fitted else "not fitted"
        return f"{type(self).__name__}({state}, {self.hparams})"

    def _repr_html_(self) -> str:
        from .notebook import generator_html

        return generator_html(self)

    @property
    def is_fitted(self) -> bool:
        return self.scaler is not None

    # -- the four methods a plugin implements -------------------------------------------
    @abc.abstractmethod
    def _fit(self, dataset: TrainingData, config: Any) -> TrainReport:
        """Learn from ``dataset.train`` (scaled features, shape (T, C))."""

    @abc.abstractmethod
    def _sample(self, n: int, labels: np.ndarray | None, rng: np.random.Generator, n_steps: int) -> np.ndarray:
        """Scaled features of shape (n, n_steps, C); ``labels`` is None or (n_steps,) regime indices."""

    @abc.abstractmethod
    def _state(self) -> dict[str, np.ndarray]:
        """The learned weights as named arrays."""

    @abc.abstractmethod
    def _load_state(self, state: dict[str, np.ndarray]) -> None:
        """Restore what :meth:`_state` returned (hyper-parameters are already set)."""

    # -- public API ------------------------------------------------------------------------
    def fit(self, data: TrainingData | pd.DataFrame, config: Any = None, *, regimes: str | None = None) -> TrainReport:
        """Fit on :class:`~synthmarket.training_data.TrainingData` or on OHLCV bars (with optional ``regimes``)."""
        dataset = data if isinstance(data, TrainingData) else TrainingData.from_bars(data, regimes=regimes)
        if dataset.scheme is not None and not self.conditional:
            raise ConfigError(f"{self.name} does not learn regimes; train it without --regimes.")
        self.scaler, self.anchor = dataset.scaler, dataset.anchor
        self.scheme, self.fingerprint = dataset.scheme, dataset.fingerprint
        self.report = self._fit(dataset, config)
        return self.report

    def regime_labels(self, n_steps: int, regime: str | None = None, schedule: str | np.ndarray | None = None) -> np.ndarray | None:
        """The regime index of every step (None when unconditioned)."""
        if regime is None and schedule is None:
            return None
        if self.scheme is None:
            raise ConfigError(f"This {self.name} model was trained without regimes; drop --regime/--schedule, or retrain with --regimes.")
        if regime is not None and schedule is not None:
            raise ConfigError("Give a regime or a schedule, not both.")
        if regime is not None:
            return np.full(n_steps, self.scheme.index(regime), dtype=np.int64)
        labels = parse_schedule(schedule, self.scheme.names) if isinstance(schedule, str) else np.asarray(schedule, dtype=np.int64)
        if len(labels) != n_steps:
            raise ConfigError(f"The schedule covers {len(labels)} steps but {n_steps} were asked for; make them agree.")
        return labels

    def sample_chunks(
        self, n_paths: int, n_steps: int, *, regime: str | None = None, schedule=None, seed: int | None = None,
        chunk_size: int = DEFAULT_CHUNK,
    ) -> Iterator[np.ndarray]:
        """Yield unscaled features in chunks of at most ``chunk_size`` paths (flat memory)."""
        if not self.is_fitted:
            raise ConfigError(f"This {self.name} generator is not fitted; call fit() or Generator.load(dir).")
        if int(n_paths) < 1 or int(n_steps) < 1:
            raise ConfigError(f"n_paths and n_steps must be at least 1; got {n_paths} and {n_steps}.")
        labels = self.regime_labels(int(n_steps), regime, schedule)
        seeds = np.random.SeedSequence(check_seed(seed)).spawn((int(n_paths) + chunk_size - 1) // chunk_size)
        done = 0
        for chunk_seed in seeds:
            n = min(chunk_size, int(n_paths) - done)
            scaled = self._sample(n, labels, np.random.default_rng(chunk_seed), int(n_steps))
            yield self.scaler.inverse_transform(np.asarray(scaled, dtype=np.float64)).astype(np.float32)
            done += n

    def sample(self, n_paths: int, n_steps: int, *, regime: str | None = None, schedule=None, seed: int | None = None) -> np.ndarray:
        """Unscaled features of shape (n_paths, n_steps, C); same seed, same numbers on CPU.

        Parameters
        ----------
        n_paths, n_steps : int
            How many paths, and how many bars each (any length).
        regime : str, optional
            One regime for every step (conditional models).
        schedule : str or array, optional
            A regime per step, e.g. ``"calm:200,turbulent:40"`` (its total must be ``n_steps``).
        seed : int, optional
            Seed of the noise.
        """
        return np.concatenate(list(self.sample_chunks(n_paths, n_steps, regime=regime, schedule=schedule, seed=seed)))

    def sample_paths(self, n_paths: int, n_steps: int, *, regime=None, schedule=None, seed=None, start=None) -> Paths:
        """Sampled OHLCV :class:`Paths`, continuing from the end of the training data."""
        features = self.sample(n_paths, n_steps, regime=regime, schedule=schedule, seed=seed)
        return Paths.from_features(features, self.anchor, start=start)

    # -- model directories -------------------------------------------------------------------
    def config(self) -> dict:
        return {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "generator": self.name,
            "package_version": package_version(),
            "hyperparameters": self.hparams,
            "scaler": self.scaler.to_dict(),
            "anchor": self.anchor.to_dict(),
            "regimes": None if self.scheme is None else self.scheme.to_dict(),
            "data_fingerprint": self.fingerprint,
            "train_report": None if self.report is None else self.report.to_dict(),
        }

    def save(self, directory: str | Path) -> Path:
        """Write ``config.json`` and ``weights.safetensors`` into ``directory``."""
        if not self.is_fitted:
            raise ConfigError("Only a fitted generator can be saved.")
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        weights = write_weights(directory, self._state())
        write_config(directory, {**self.config(), "weights": weights})
        return directory

    @classmethod
    def load(cls, directory: str | Path) -> "Generator":
        """Load a model directory; refuses foreign, damaged or tampered files, and never imports code."""
        directory = Path(directory)
        config = read_config(directory)
        config_path = directory / CONFIG_FILE
        gen_cls = cls._class_for(config["generator"], config_path)
        state = read_weights(directory, config)
        try:
            model = gen_cls(**{**gen_cls.added_later, **config["hyperparameters"]})
        except (TypeError, ValueError) as exc:
            raise ModelFileError(
                f"{config_path}: 'hyperparameters' do not fit a {gen_cls.name} ({type(exc).__name__}: {exc}); "
                f"the model directory is damaged."
            ) from None
        model.scaler = FeatureScaler.from_dict(config["scaler"])
        model.anchor = Anchor.from_dict(config["anchor"])
        model.scheme = None if config.get("regimes") is None else RegimeScheme.from_dict(config["regimes"])
        model.fingerprint = config.get("data_fingerprint")
        if config.get("train_report"):
            model.report = TrainReport(**config["train_report"])
        try:
            model._load_state(state)
        except Exception as exc:
            raise ModelFileError(f"{directory / config['weights']['file']} does not fit a {gen_cls.name} with these "
                                 f"hyper-parameters: {exc}") from None
        return model

    @classmethod
    def _class_for(cls, name: str, config_path: Path) -> type["Generator"]:
        """The class a model's ``generator`` names: this class, or an installed plugin's; never an import."""
        if cls is not Generator and getattr(cls, "name", "") == name:
            return cls
        from .registry import get_registry

        try:
            return get_registry().get("generator", name, references=False)
        except PluginError as exc:
            raise ConfigError(
                f"{config_path}: 'generator' is {name!r}, which is not an installed generator (a model directory names "
                f"its generator by its registered name only; nothing else is imported). {exc} Install the plugin "
                f"package that provides it, or load the model with its class: YourGenerator.load(directory)."
            ) from None
