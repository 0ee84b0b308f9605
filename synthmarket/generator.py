"""The Generator base class every model plugin subclasses, and the TrainReport of a fit.

A subclass sets ``name`` (and ``conditional = True`` when it learns regimes), declares its
hyper-parameters once in ``hyperparameters`` (a tuple of
:class:`~synthmarket.hyperparameters.HyperParameter`: name, type, default, one line of help;
``defaults`` is derived from it; a plugin that sets only a ``defaults`` dict gets types from
its values), and implements four methods:

- ``_fit(dataset, config) -> TrainReport``: learn from ``dataset.train`` (scaled features of
  :class:`~synthmarket.training_data.TrainingData`);
- ``_sample_scaled(n, labels, rng, n_steps) -> array (n, n_steps, C)``: scaled features for
  ``n`` paths (``labels`` is None or one regime index per step; ``rng`` is the only noise source);
- ``_state() -> dict[str, np.ndarray]`` and ``_load_state(state)``: the weights.

Sampling, from the outside in (each name says what its layer does):

- :meth:`Generator.sample_paths`: OHLCV :class:`~synthmarket.paths.Paths`, from
- :meth:`Generator.sample`: unscaled features of every path at once, from
- :meth:`Generator.sample_chunks`: unscaled features, chunk by chunk (one seed per chunk), from
- ``_sample_scaled``: the plugin's hook, scaled features of one chunk. The Trainer's
  validation calls it too, as ``sample_scaled`` (:class:`synthmarket.trainable.Trainable`).
  :class:`~synthmarket.deep.TorchGenerator` implements it by splitting the chunk into
  batches, each drawn by
- ``TorchGenerator.draw_batch``: one batch of noise (and regime labels) through the network's
- ``net.rollout``: the network's forward pass for sampling (streamed over long paths).

A sample may first run ``burn_in`` steps that it discards (``TorchGenerator.burn_in()``), so
that its first bar starts mid-stream like real data.

Everything else — scaling, regimes and schedules, seeds, chunked sampling, bars, saving
and loading — is done here once for every model.

:meth:`Generator.save` writes a model directory and :meth:`Generator.load` reads one back
(its files: :mod:`synthmarket.model_files`), finding the generator among the installed
plugins by its name only.
"""

from __future__ import annotations

import abc
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pandas as pd

from .bars import Anchor, FeatureScaler, to_features
from .checks import check_seed
from .context import KEPT, LAST, context_features
from .errors import ConfigError, ModelFileError, PluginError
from .hyperparameters import HyperParameter, by_name, declared
from .model_files import CONFIG_FILE, FORMAT, FORMAT_VERSION, read_config, read_weights, write_config, write_weights
from .paths import Paths
from .regimes import RegimeScheme, parse_schedule
from .training_data import TrainingData

DEFAULT_CHUNK = 4096
#: The weights entry that holds a context-aware model's ``context_tail``.
CONTEXT_TAIL = "context_tail"


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
        best = (
            "" if self.best_score is None else f", best validation score {self.best_score:.4g} at step {self.best_step}"
        )
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
    #: The hyper-parameters, declared once: name, type, default and help of each.
    hyperparameters: ClassVar[tuple[HyperParameter, ...]] = ()
    #: Every hyper-parameter's default, by name (derived from ``hyperparameters``; a plugin
    #: may set only this dict instead, and its values' types become the hyper-parameters' types).
    defaults: ClassVar[dict[str, Any]] = {}
    #: Hyper-parameters added after models had been saved without them, with the values that
    #: rebuild those models (used when reading a saved model's hyper-parameters only).
    added_later: ClassVar[dict[str, Any]] = {}
    #: Old names of renamed hyper-parameters -> their names now (a saved model's config.json
    #: may still use the old name; :meth:`saved_hparams` maps it).
    renamed: ClassVar[dict[str, str]] = {}
    #: Whether sampling starts from the state of the market in a ``context`` (the real bars
    #: before the scenario, :mod:`synthmarket.context`). Such a generator's ``_sample_scaled``
    #: takes a keyword ``context``: unscaled features (T, C), when one is given.
    uses_context: ClassVar[bool] = False
    #: The fewest bars of context a context-aware generator needs.
    min_context: ClassVar[int] = 0

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "hyperparameters" in cls.__dict__:
            cls.hyperparameters = declared(cls.hyperparameters)
            cls.defaults = {hp.name: hp.default for hp in cls.hyperparameters}
        elif "defaults" in cls.__dict__:
            cls.hyperparameters = tuple(by_name(cls.defaults).values())
            cls.defaults = {hp.name: hp.default for hp in cls.hyperparameters}
        if "added_later" in cls.__dict__:
            params = by_name(cls.hyperparameters)
            unknown = sorted(set(cls.added_later) - set(params))
            if unknown:
                raise TypeError(f"{cls.__name__}.added_later names undeclared hyper-parameters: {', '.join(unknown)}")
            cls.added_later = {k: params[k].coerce(v, text=True) for k, v in cls.added_later.items()}
        if "_sample" in cls.__dict__ and "_sample_scaled" not in cls.__dict__:
            cls._sample_scaled = cls.__dict__["_sample"]  # plugins written before the hook was renamed

    def __init__(self, **hparams: Any) -> None:
        self.hparams: dict[str, Any] = self.check_hparams(hparams)
        self.scaler: FeatureScaler | None = None
        self.anchor: Anchor | None = None
        self.scheme: RegimeScheme | None = None
        self.fingerprint: str | None = None
        self.report: TrainReport | None = None
        #: The end of the training data as features, kept by context-aware models (``context="last"``).
        self.context_tail: np.ndarray | None = None

    @classmethod
    def check_hparams(cls, given: dict[str, Any]) -> dict[str, Any]:
        """Every hyper-parameter, typed: ``given`` over the defaults.

        Raises
        ------
        ConfigError
            For an unknown name (an old name of a renamed one is mapped, with a
            DeprecationWarning), or a value of the wrong type, naming the key and
            what it accepts.
        """
        params = by_name(cls.hyperparameters)
        old_names = [k for k in given if k in cls.renamed and k not in params]
        if old_names:
            both = [k for k in old_names if cls.renamed[k] in given]
            if both:
                raise ConfigError(f"{cls.name}: give {cls.renamed[both[0]]!r} only; {both[0]!r} is its old name.")
            warnings.warn(
                f"{cls.name}: the hyper-parameter(s) {', '.join(old_names)} are now called "
                f"{', '.join(cls.renamed[k] for k in old_names)}.",
                DeprecationWarning,
                stacklevel=3,
            )
            given = {cls.renamed.get(k, k) if k in old_names else k: v for k, v in given.items()}
        unknown = sorted(set(given) - set(params))
        if unknown:
            known = ", ".join(f"{k}={v!r}" for k, v in cls.defaults.items()) or "none"
            raise ConfigError(f"{cls.name}: unknown hyper-parameter(s) {', '.join(unknown)}. Known: {known}.")
        return {
            k: hp.coerce(given[k], owner=cls.name) if k in given else hp.fresh_default() for k, hp in params.items()
        }

    @classmethod
    def saved_hparams(cls, stored: dict[str, Any]) -> dict[str, Any]:
        """The hyper-parameters of a saved model (config.json, a checkpoint) as this class
        takes them: old names mapped to new (``renamed``), and the values of ``added_later``
        for those a model saved before they existed lacks."""
        out = dict(stored)
        for old, new in cls.renamed.items():
            if old in out and new not in out:
                out[new] = out.pop(old)
        return {**{k: v for k, v in cls.added_later.items() if k not in out}, **out}

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
    def _sample_scaled(self, n: int, labels: np.ndarray | None, rng: np.random.Generator, n_steps: int) -> np.ndarray:
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
        if self.uses_context:
            self.context_tail = to_features(dataset.bars.iloc[-(KEPT + 1) :])
        return self.report

    def regime_labels(
        self, n_steps: int, regime: str | None = None, schedule: str | np.ndarray | None = None
    ) -> np.ndarray | None:
        """The regime index of every step (None when unconditioned)."""
        if regime is None and schedule is None:
            return None
        if self.scheme is None:
            raise ConfigError(
                f"This {self.name} model was trained without regimes; drop --regime/--schedule, or retrain with --regimes."
            )
        if regime is not None and schedule is not None:
            raise ConfigError("Give a regime or a schedule, not both.")
        if regime is not None:
            return np.full(n_steps, self.scheme.index(regime), dtype=np.int64)
        labels = (
            parse_schedule(schedule, self.scheme.names)
            if isinstance(schedule, str)
            else np.asarray(schedule, dtype=np.int64)
        )
        if len(labels) != n_steps:
            raise ConfigError(f"The schedule covers {len(labels)} steps but {n_steps} were asked for; make them agree.")
        return labels

    def sample_chunks(
        self,
        n_paths: int,
        n_steps: int,
        *,
        regime: str | None = None,
        schedule=None,
        seed: int | None = None,
        chunk_size: int = DEFAULT_CHUNK,
        context=LAST,
    ) -> Iterator[np.ndarray]:
        """Yield unscaled features in chunks of at most ``chunk_size`` paths (flat memory), each
        path starting from ``context`` (see :meth:`sample`)."""
        if not self.is_fitted:
            raise ConfigError(f"This {self.name} generator is not fitted; call fit() or Generator.load(dir).")
        if int(n_paths) < 1 or int(n_steps) < 1:
            raise ConfigError(f"n_paths and n_steps must be at least 1; got {n_paths} and {n_steps}.")
        labels = self.regime_labels(int(n_steps), regime, schedule)
        features = context_features(self, context)
        start = {"context": features} if self.uses_context and features is not None else {}
        seeds = np.random.SeedSequence(check_seed(seed)).spawn((int(n_paths) + chunk_size - 1) // chunk_size)
        done = 0
        for chunk_seed in seeds:
            n = min(chunk_size, int(n_paths) - done)
            scaled = self._sample_scaled(n, labels, np.random.default_rng(chunk_seed), int(n_steps), **start)
            yield self.scaler.inverse_transform(np.asarray(scaled, dtype=np.float64)).astype(np.float32)
            done += n

    def sample(
        self,
        n_paths: int,
        n_steps: int,
        *,
        regime: str | None = None,
        schedule=None,
        seed: int | None = None,
        context=LAST,
    ) -> np.ndarray:
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
        context : "last", None, DataFrame or array
            The real bars before the scenario (:mod:`synthmarket.context`): by default the end
            of the training data; None samples unconditionally. Generators that do not use a
            context (``uses_context`` False: gbm, bootstrap) check it and leave it unused.
        """
        chunks = self.sample_chunks(n_paths, n_steps, regime=regime, schedule=schedule, seed=seed, context=context)
        return np.concatenate(list(chunks))

    def sample_paths(
        self, n_paths: int, n_steps: int, *, regime=None, schedule=None, seed=None, start=None, context=LAST
    ) -> Paths:
        """Sampled OHLCV :class:`Paths`: from the end of the training data, or from the last bar of
        ``context`` when it is real bars (its close, the next business day)."""
        features = self.sample(n_paths, n_steps, regime=regime, schedule=schedule, seed=seed, context=context)
        anchor = Anchor.after(context) if isinstance(context, pd.DataFrame) else self.anchor
        return Paths.from_features(features, anchor, start=start)

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
        state = self._state()
        if self.context_tail is not None:
            state = {**state, CONTEXT_TAIL: self.context_tail}
        weights = write_weights(directory, state)
        write_config(directory, {**self.config(), "weights": weights})
        return directory

    @classmethod
    def load(cls, directory: str | Path) -> Generator:
        """Load a model directory; refuses foreign, damaged or tampered files, and never imports code."""
        directory = Path(directory)
        config = read_config(directory)
        config_path = directory / CONFIG_FILE
        gen_cls = cls._class_for(config["generator"], config_path)
        state = read_weights(directory, config)
        try:
            model = gen_cls(**gen_cls.saved_hparams(config["hyperparameters"]))
        except ModelFileError:
            raise
        except ConfigError as exc:
            raise ModelFileError(f"{config_path}: {exc}") from None
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
        tail = state.pop(CONTEXT_TAIL, None)
        if tail is not None and not np.isfinite(tail).all():
            raise ModelFileError(
                f"{directory / config['weights']['file']}: {CONTEXT_TAIL!r} holds NaN or infinite values."
            )
        model.context_tail = None if tail is None else np.asarray(tail, dtype=np.float64)
        try:
            model._load_state(state)
        except Exception as exc:
            raise ModelFileError(
                f"{directory / config['weights']['file']} does not fit a {gen_cls.name} with these "
                f"hyper-parameters: {exc}"
            ) from None
        return model

    @classmethod
    def _class_for(cls, name: str, config_path: Path) -> type[Generator]:
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
