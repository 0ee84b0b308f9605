"""The Generator base class every model plugin subclasses, and model directories.

A subclass sets ``name`` (and ``conditional = True`` when it learns regimes), lists its
hyper-parameters with their defaults in ``defaults``, and implements four methods:

- ``_fit(dataset, config) -> TrainReport``: learn from ``dataset.train`` (scaled features);
- ``_sample(n, labels, rng, n_steps) -> array (n, n_steps, C)``: scaled features for ``n``
  paths (``labels`` is None or one regime index per step; ``rng`` is the only noise source);
- ``_state() -> dict[str, np.ndarray]`` and ``_load_state(state)``: the weights.

Everything else — scaling, regimes and schedules, seeds, chunked sampling, bars, saving
and loading — is done here once for every model.

A model directory holds ``config.json`` (generator name, package version,
hyper-parameters, scaler, anchor, regime scheme, training-data fingerprint, SHA-256 of the
weights) and ``weights.safetensors``. Loading checks the format and the checksum and
never executes code from the directory.
"""

from __future__ import annotations

import abc
import json
import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Iterator, Sequence

import numpy as np
import pandas as pd

from .bars import Anchor, FeatureScaler, channels, has_volume, to_features
from .data import fingerprint
from .errors import ConfigError, DataError, ModelFileError
from .paths import Paths
from .regimes import RegimeScheme, fit_regimes, parse_schedule

FORMAT = "synthmarket-model"
FORMAT_VERSION = 1
CONFIG_FILE = "config.json"
WEIGHTS_FILE = "weights.safetensors"
DEFAULT_CHUNK = 4096


def package_version() -> str:
    from . import __version__

    return __version__


@dataclass
class Dataset:
    """Real bars prepared for training: scaled features, regime labels and a validation split.

    ``train`` and ``validation`` are scaled feature arrays (T, C); ``train_labels`` and
    ``validation_labels`` hold a regime index per row when a scheme is given. The held-out
    share (``validation_fraction``) is ``validation_blocks`` equal blocks of consecutive
    bars, evenly spread, the last one ending at the latest bar; one block (the default) holds
    out the latest bars. ``train`` is the rest, stretch after stretch; ``train_segments``
    gives the stretches' lengths, and :meth:`window_starts` the windows that lie inside one.
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

    def __post_init__(self) -> None:
        if not self.train_segments:
            self.train_segments = (len(self.train),)

    @classmethod
    def from_bars(
        cls, bars: pd.DataFrame, *, regimes: str | RegimeScheme | None = None, validation_fraction: float = 0.15,
        validation_blocks: int = 1,
    ) -> "Dataset":
        if not 0 <= validation_fraction < 0.9:
            raise ConfigError(f"validation_fraction must be in [0, 0.9); got {validation_fraction}.")
        if isinstance(validation_blocks, bool) or not isinstance(validation_blocks, (int, np.integer)) or validation_blocks < 1:
            raise ConfigError(f"validation_blocks must be a whole number, at least 1; got {validation_blocks!r}.")
        raw = to_features(bars)
        held_out = _held_out_rows(len(raw), validation_fraction, int(validation_blocks))
        training = ~held_out
        n_train = int(training.sum())
        if n_train < 50:
            raise ConfigError(f"Only {n_train} training bars; give at least 50 (a longer date range).")
        segments = _stretches(training)
        if min(segments) < 2:
            raise ConfigError(f"{validation_blocks} validation blocks leave training stretches of under 2 bars; use fewer.")
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
    out = np.concatenate([end - length + np.arange(0, length - window + 1, stride) for end, length in zip(ends, segments)])
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
        from .report import plot_training

        return plot_training(self)

    def _repr_html_(self) -> str:
        from .report import train_report_html

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
        from .report import generator_html

        return generator_html(self)

    @property
    def is_fitted(self) -> bool:
        return self.scaler is not None

    # -- the four methods a plugin implements -------------------------------------------
    @abc.abstractmethod
    def _fit(self, dataset: Dataset, config: Any) -> TrainReport:
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
    def fit(self, data: Dataset | pd.DataFrame, config: Any = None, *, regimes: str | None = None) -> TrainReport:
        """Fit on a :class:`Dataset` or on OHLCV bars (with optional ``regimes``)."""
        dataset = data if isinstance(data, Dataset) else Dataset.from_bars(data, regimes=regimes)
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
        seeds = np.random.SeedSequence(seed).spawn((int(n_paths) + chunk_size - 1) // chunk_size)
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
        from safetensors.numpy import save_file

        if not self.is_fitted:
            raise ConfigError("Only a fitted generator can be saved.")
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        state = {k: np.ascontiguousarray(v) for k, v in self._state().items()}
        weights = directory / WEIGHTS_FILE
        tmp = weights.with_suffix(".tmp")
        save_file(state, str(tmp))
        tmp.replace(weights)
        config = self.config()
        config["weights"] = {"file": WEIGHTS_FILE, "sha256": file_sha256(weights), "bytes": weights.stat().st_size}
        tmp = directory / (CONFIG_FILE + ".tmp")
        tmp.write_text(json.dumps(config, indent=2, default=json_default))
        tmp.replace(directory / CONFIG_FILE)
        return directory

    @classmethod
    def load(cls, directory: str | Path) -> "Generator":
        """Load a model directory; refuses foreign, truncated or tampered files."""
        from safetensors.numpy import load_file

        directory = Path(directory)
        config = read_config(directory)
        gen_cls = cls._class_for(config["generator"])
        weights = directory / config["weights"]["file"]
        if Path(config["weights"]["file"]).name != config["weights"]["file"] or not weights.is_file():
            raise ModelFileError(f"{directory}: the weights file {config['weights']['file']!r} is missing.")
        if file_sha256(weights) != config["weights"]["sha256"]:
            raise ModelFileError(
                f"{weights}: the weights do not match the checksum in config.json (truncated, corrupted or "
                f"tampered with). Retrain, or restore the directory from a backup."
            )
        try:
            state = load_file(str(weights))
        except Exception as exc:
            raise ModelFileError(f"{weights} is not a readable safetensors file: {exc}") from None
        model = gen_cls(**{**gen_cls.added_later, **config["hyperparameters"]})
        try:
            model.scaler = FeatureScaler.from_dict(config["scaler"])
            model.anchor = Anchor.from_dict(config["anchor"])
            model.scheme = None if config.get("regimes") is None else RegimeScheme.from_dict(config["regimes"])
            model.fingerprint = config.get("data_fingerprint")
            if config.get("train_report"):
                model.report = TrainReport(**config["train_report"])
        except (KeyError, TypeError, ValueError, DataError) as exc:
            raise ModelFileError(
                f"{directory / CONFIG_FILE} is damaged ({type(exc).__name__}: {exc}). Retrain, or restore it from a backup."
            ) from None
        try:
            model._load_state(state)
        except Exception as exc:
            raise ModelFileError(f"{weights} does not fit a {gen_cls.name} with these hyper-parameters: {exc}") from None
        return model

    @classmethod
    def _class_for(cls, name: str) -> type["Generator"]:
        if cls is not Generator and getattr(cls, "name", "") == name:
            return cls
        from .errors import PluginError
        from .registry import get_registry

        try:
            return get_registry().get("generator", name)
        except PluginError as exc:
            raise PluginError(
                f"This model was made by the generator {name!r}, which is not installed here. Install the plugin "
                f"package that provides it, or load the model with its class: YourGenerator.load(directory). "
                f"({exc})"
            ) from None


def read_config(directory: Path) -> dict:
    """``config.json`` of a model directory, checked for the format and required keys."""
    if not directory.exists():
        raise ModelFileError(f"No such model directory: {str(directory)!r}. Train one with `synthmarket train --out DIR`.")
    if not directory.is_dir():
        raise ModelFileError(f"{str(directory)!r} is a file; a model is a directory holding {CONFIG_FILE}.")
    path = directory / CONFIG_FILE
    if not path.is_file():
        raise ModelFileError(f"{str(directory)!r} holds no {CONFIG_FILE}: it is not a synthmarket model directory.")
    try:
        config = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ModelFileError(f"{path} is not valid JSON ({exc}); the model directory is damaged.") from None
    if not isinstance(config, dict) or config.get("format") != FORMAT:
        raise ModelFileError(f"{path} is not a synthmarket model configuration.")
    if not isinstance(config.get("format_version", 0), int):
        raise ModelFileError(f"{path} has a format_version that is not a whole number; the model directory is damaged.")
    if config.get("format_version", 0) > FORMAT_VERSION:
        raise ModelFileError(f"{path} was written by a newer synthmarket (format {config['format_version']}); upgrade synthmarket.")
    for key in ("generator", "hyperparameters", "scaler", "anchor", "weights"):
        if key not in config:
            raise ModelFileError(f"{path} lacks {key!r}; the model directory is damaged.")
    weights = config["weights"]
    if not (
        isinstance(config["generator"], str) and isinstance(config["hyperparameters"], dict)
        and isinstance(weights, dict) and isinstance(weights.get("file"), str) and isinstance(weights.get("sha256"), str)
    ):
        raise ModelFileError(f"{path} has malformed generator, hyperparameters or weights entries; the model directory is damaged.")
    return config


def file_sha256(path: Path) -> str:
    """SHA-256 of a file, read in blocks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def json_default(obj: Any) -> Any:
    """``json.dumps(default=...)`` for NumPy scalars and arrays, torch tensors and paths."""
    if isinstance(obj, Path):
        return str(obj)
    if hasattr(obj, "tolist"):
        return obj.tolist()
    raise TypeError(f"{type(obj).__name__} is not JSON serialisable")
