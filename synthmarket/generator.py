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
weights, and a checksum of the configuration itself) and ``weights.safetensors``. Loading
checks ``config.json`` against its checksum and a schema, finds the generator among the
installed plugins by name only, checks the weights against their checksum, and never
imports or executes anything from the directory.
"""

from __future__ import annotations

import abc
import json
import hashlib
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Iterator, NoReturn, Sequence

import numpy as np
import pandas as pd

from .bars import Anchor, FeatureScaler, channels, has_volume, to_features
from .checks import check_seed, dangling_link
from .data import GAP_BUSINESS_DAYS, Gap, find_gaps, fingerprint
from .errors import ConfigError, ModelFileError, PluginError
from .jsonutil import json_default
from .paths import Paths
from .regimes import BUILT_IN, RegimeScheme, fit_regimes, parse_schedule

FORMAT = "synthmarket-model"
FORMAT_VERSION = 1
#: The oldest ``format_version`` that still loads.
MIN_FORMAT_VERSION = 1
CONFIG_FILE = "config.json"
WEIGHTS_FILE = "weights.safetensors"
#: What the ``checksum`` record of ``config.json`` covers: the rest of the file, and through
#: the weights' SHA-256 recorded there, the weights. Directories saved without the record
#: (older synthmarket) are covered for their weights only.
CHECKSUM_COVERS = [CONFIG_FILE, WEIGHTS_FILE]
#: How many levels of lists and dicts a value of ``config.json`` may nest.
MAX_DEPTH = 8
DEFAULT_CHUNK = 4096


def package_version() -> str:
    from . import __version__

    return __version__


#: What training does with a gap in the data: leave out the return across it, or keep it.
GAP_POLICIES = ("split", "keep")


@dataclass
class Dataset:
    """Real bars prepared for training: scaled features, regime labels and a validation split.

    ``train`` and ``validation`` are scaled feature arrays (T, C); ``train_labels`` and
    ``validation_labels`` hold a regime index per row when a scheme is given. The held-out
    share (``validation_fraction``) is ``validation_blocks`` equal blocks of consecutive
    bars, evenly spread, the last one ending at the latest bar; one block (the default) holds
    out the latest bars. ``train`` is the rest, stretch after stretch; ``train_segments``
    gives the stretches' lengths, and :meth:`window_starts` the windows that lie inside one.
    ``gaps`` lists the data's gaps (:func:`~synthmarket.data.find_gaps`); with ``gap_policy``
    "split" (the default) the return across each is left out, so no window spans it, and
    with "keep" the bars on either side are treated as consecutive.
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

    def __post_init__(self) -> None:
        if not self.train_segments:
            self.train_segments = (len(self.train),)

    @classmethod
    def from_bars(
        cls, bars: pd.DataFrame, *, regimes: str | RegimeScheme | None = None, validation_fraction: float = 0.15,
        validation_blocks: int = 1, gaps: str = "split",
    ) -> "Dataset":
        if not 0 <= validation_fraction < 0.9:
            raise ConfigError(f"validation_fraction must be in [0, 0.9); got {validation_fraction}.")
        if isinstance(validation_blocks, bool) or not isinstance(validation_blocks, (int, np.integer)) or validation_blocks < 1:
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
            gaps=found,
            gap_policy=gaps,
        )

    def gap_note(self) -> str | None:
        """One sentence on the data's gaps and what training does with them (None: no gap)."""
        if not self.gaps:
            return None
        longest = max(self.gaps, key=lambda gap: gap.days)
        what = ("no training window spans it (--gaps keep learns across it)" if self.gap_policy == "split"
                else "the bars on either side are learned as consecutive days (--gaps keep)")
        count = "one gap" if len(self.gaps) == 1 else f"{len(self.gaps)} gaps"
        return (f"The data have {count} of more than {GAP_BUSINESS_DAYS} business days without a bar "
                f"({'the longest ' if len(self.gaps) > 1 else ''}{longest}); {what}.")

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
        from safetensors.numpy import save_file

        if not self.is_fitted:
            raise ConfigError("Only a fitted generator can be saved.")
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        state = {k: np.ascontiguousarray(v) for k, v in self._state().items()}
        weights = directory / WEIGHTS_FILE
        tmp = weights.with_suffix(".tmp")
        save_file(state, str(tmp))
        publish(tmp, weights)
        config = self.config()
        config["weights"] = {"file": WEIGHTS_FILE, "sha256": file_sha256(weights), "bytes": weights.stat().st_size}
        write_config(directory, config)
        return directory

    @classmethod
    def load(cls, directory: str | Path) -> "Generator":
        """Load a model directory; refuses foreign, damaged or tampered files, and never imports code."""
        from safetensors.numpy import load_file

        directory = Path(directory)
        config = read_config(directory)
        config_path = directory / CONFIG_FILE
        gen_cls = cls._class_for(config["generator"], config_path)
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
            raise ModelFileError(f"{weights} does not fit a {gen_cls.name} with these hyper-parameters: {exc}") from None
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


# -- config.json ---------------------------------------------------------------------------
def read_config(directory: Path) -> dict:
    """``config.json`` of a model directory, checked against its checksum and the schema."""
    directory = Path(directory)
    if not directory.exists():
        raise ModelFileError(dangling_link(directory)
                             or f"No such model directory: {str(directory)!r}. Train one with `synthmarket train --out DIR`.")
    if not directory.is_dir():
        raise ModelFileError(f"{str(directory)!r} is a file; a model is a directory holding {CONFIG_FILE}.")
    path = directory / CONFIG_FILE
    if not path.is_file():
        raise ModelFileError(f"{str(directory)!r} holds no {CONFIG_FILE}: it is not a synthmarket model directory.")
    try:
        config = json.loads(path.read_text())
    except (ValueError, UnicodeDecodeError) as exc:  # ValueError: invalid JSON, or an integer of thousands of digits
        raise ModelFileError(f"{path} is not valid JSON ({exc}); the model directory is damaged.") from None
    except RecursionError:
        raise ModelFileError(f"{path} nests values too deeply to be read; the model directory is damaged.") from None
    check_config(path, config)
    return config


def write_config(directory: Path, config: dict) -> None:
    """Write ``config`` as the ``config.json`` of ``directory``, with its checksum record."""
    body = json.loads(json.dumps({k: v for k, v in config.items() if k != "checksum"}, default=json_default))
    body["checksum"] = {"covers": CHECKSUM_COVERS, "sha256": config_sha256(body)}
    tmp = Path(directory) / (CONFIG_FILE + ".tmp")
    tmp.write_text(json.dumps(body, indent=2))
    tmp.replace(Path(directory) / CONFIG_FILE)


def config_sha256(config: dict) -> str:
    """SHA-256 of ``config`` without its ``checksum`` record, as canonical JSON."""
    body = {k: v for k, v in config.items() if k != "checksum"}
    return hashlib.sha256(json.dumps(body, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def check_config(path: Path, config: Any) -> None:
    """Refuse (:class:`ModelFileError`) a ``config.json`` that is foreign, of an unsupported format,
    does not match its checksum record, or breaks the schema."""
    if not isinstance(config, dict) or config.get("format") != FORMAT:
        raise ModelFileError(f"{path} is not a synthmarket model configuration.")
    version = config.get("format_version")
    if _is_int(version) and version > FORMAT_VERSION:
        # before the checksum: a newer format may seal its files differently
        raise ModelFileError(f"{path} was written by a newer synthmarket ('format_version' {version}); upgrade synthmarket.")
    check = _ConfigCheck(path)
    for key, value in config.items():
        # before the checksum, whose JSON encoding recurses into the values
        check.require(not _nests_deeper(value, MAX_DEPTH), key, f"must not nest lists and dicts more than {MAX_DEPTH} deep",
                      _UNSHOWN)
    if "checksum" in config:
        record = config["checksum"]
        check.require(
            isinstance(record, dict) and set(record) == {"covers", "sha256"} and record["covers"] == CHECKSUM_COVERS
            and _is_sha256(record["sha256"]),
            "checksum", f"must hold covers {CHECKSUM_COVERS} and a sha256 of 64 hexadecimal digits", record,
        )
        if config_sha256(config) != record["sha256"]:
            raise ModelFileError(
                f"{path}: the config does not match its checksum (edited, corrupted or tampered with); the model "
                f"directory is damaged. Retrain, or restore it from a backup."
            )
    check.schema(config)


_REQUIRED_KEYS = ("format", "format_version", "generator", "hyperparameters", "scaler", "anchor", "weights")
_OPTIONAL_KEYS = ("package_version", "regimes", "data_fingerprint", "train_report", "checksum")
_MISSING, _UNSHOWN = object(), object()
_DATE_RANGE = (pd.Timestamp.min.ceil("D"), pd.Timestamp.max.floor("D"))


class _ConfigCheck:
    """The schema of ``config.json``; each refusal names the file, the key and the rule."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def refuse(self, key: str, rule: str, value: Any = _MISSING) -> NoReturn:
        got = " (it is missing)" if value is _MISSING else "" if value is _UNSHOWN else f" (got {_short_repr(value)})"
        raise ModelFileError(f"{self.path}: {key!r} {rule}{got}; the model directory is damaged. "
                             f"Retrain, or restore it from a backup.")

    def require(self, ok: bool, key: str, rule: str, value: Any = _MISSING) -> None:
        if not ok:
            self.refuse(key, rule, value)

    def schema(self, config: dict) -> None:
        for key in config:
            self.require(key in _REQUIRED_KEYS + _OPTIONAL_KEYS, key, "is not a model configuration key", config[key])
        for key in _REQUIRED_KEYS:
            self.require(key in config, key, "is required")
        supported = ", ".join(map(str, range(MIN_FORMAT_VERSION, FORMAT_VERSION + 1)))
        version = config["format_version"]
        self.require(_is_int(version) and MIN_FORMAT_VERSION <= version <= FORMAT_VERSION, "format_version",
                     f"must be a format version this synthmarket reads ({supported})", version)
        self.require(_is_text(config["generator"]), "generator", "must be a generator's name", config["generator"])
        for key in ("package_version", "data_fingerprint"):
            self.require(config.get(key) is None or isinstance(config[key], str), key, "must be null or text", config.get(key))
        self.require(isinstance(config["hyperparameters"], dict), "hyperparameters", "must be an object of named values",
                     config["hyperparameters"])
        self.scaler(config["scaler"])
        self.anchor(config["anchor"])
        if config.get("regimes") is not None:
            self.regimes(config["regimes"])
        if config.get("train_report") is not None:
            self.train_report(config["train_report"])
        self.weights(config["weights"])

    def scaler(self, scaler: Any) -> None:
        self.require(isinstance(scaler, dict) and set(scaler) == {"channels", "mean", "std"}, "scaler",
                     "must hold exactly channels, mean and std", scaler)
        layouts = [list(channels(True)), list(channels(False))]
        names = scaler["channels"]
        self.require(names in layouts, "scaler.channels", f"must be {layouts[0]}, or the same without 'volume'", names)
        self.require(_finite_numbers(scaler["mean"], len(names)), "scaler.mean", f"must be {len(names)} finite numbers",
                     scaler["mean"])
        std = scaler["std"]
        self.require(_finite_numbers(std, len(names)) and all(x > 0 for x in std), "scaler.std",
                     f"must be {len(names)} finite positive numbers", std)

    def anchor(self, anchor: Any) -> None:
        self.require(isinstance(anchor, dict) and "close" in anchor and set(anchor) <= {"close", "volume_level", "date"},
                     "anchor", "must hold close, and optionally volume_level and date", anchor)
        close = anchor["close"]
        self.require(_is_finite(close) and close > 0, "anchor.close",
                     "must be a finite positive price", close)
        level = anchor.get("volume_level")
        self.require(level is None or _is_finite(level), "anchor.volume_level",
                     "must be null or a finite number", level)
        date = anchor.get("date")
        self.require(date is None or _is_date(date), "anchor.date",
                     f"must be null or a date YYYY-MM-DD from {_DATE_RANGE[0]:%Y-%m-%d} to {_DATE_RANGE[1]:%Y-%m-%d}",
                     date)

    def regimes(self, regimes: Any) -> None:
        self.require(isinstance(regimes, dict) and set(regimes) == {"kind", "names", "window", "thresholds"}, "regimes",
                     "must be null or hold exactly kind, names, window and thresholds", regimes)
        kind, names, window, thresholds = (regimes[k] for k in ("kind", "names", "window", "thresholds"))
        self.require(_is_text(kind), "regimes.kind", "must be 'volatility', 'trend' or a column name", kind)
        if kind in BUILT_IN:
            expected, _ = BUILT_IN[kind]
            self.require(names == list(expected), "regimes.names", f"must be {list(expected)} for {kind} regimes", names)
            self.require(_is_int(window) and window >= 2, "regimes.window", "must be a whole number of bars, at least 2",
                         window)
            self.require(_finite_numbers(thresholds, len(names) - 1) and thresholds == sorted(thresholds),
                         "regimes.thresholds", f"must be {len(names) - 1} finite numbers in ascending order", thresholds)
        else:
            self.require(isinstance(names, list) and len(names) >= 2 and all(_is_text(n) for n in names)
                         and len(set(names)) == len(names), "regimes.names", "must be two or more distinct names", names)
            self.require(_is_int(window) and window >= 0, "regimes.window", "must be a whole number", window)
            self.require(thresholds == [], "regimes.thresholds", "must be empty for regimes read from a column",
                         thresholds)

    def train_report(self, report: Any) -> None:
        fields = TrainReport.__dataclass_fields__
        self.require(isinstance(report, dict) and set(report) <= set(fields) and {"generator", "seconds"} <= set(report),
                     "train_report", f"must be null or hold generator, seconds and others of {', '.join(fields)}", report)
        for key, value in report.items():
            ok, rule = _REPORT_FIELDS[key]
            self.require(ok(value), f"train_report.{key}", rule, value)

    def weights(self, weights: Any) -> None:
        self.require(isinstance(weights, dict) and {"file", "sha256"} <= set(weights) <= {"file", "sha256", "bytes"},
                     "weights", "must hold file, sha256 and bytes", weights)
        self.require(_is_text(weights["file"]), "weights.file", "must be a file name", weights["file"])
        self.require(_is_sha256(weights["sha256"]), "weights.sha256", "must be 64 hexadecimal digits", weights["sha256"])
        size = weights.get("bytes", 0)
        self.require(_is_int(size) and size >= 0, "weights.bytes", "must be a whole number of bytes", size)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _is_text(value: Any) -> bool:
    return isinstance(value, str) and value != ""


def _is_finite(value: Any) -> bool:
    """A number (not a bool) that is finite as a float."""
    try:
        return _is_number(value) and math.isfinite(value)
    except OverflowError:  # an integer beyond float range
        return False


def _finite_numbers(value: Any, n: int) -> bool:
    return isinstance(value, list) and len(value) == n and all(_is_finite(x) for x in value)


def _is_sha256(value: Any) -> bool:
    return isinstance(value, str) and len(value) == 64 and all(c in "0123456789abcdef" for c in value)


def _is_date(value: Any) -> bool:
    if not (isinstance(value, str) and len(value) == 10 and value[4] == value[7] == "-"):
        return False
    try:
        return _DATE_RANGE[0] <= pd.Timestamp(value) <= _DATE_RANGE[1]
    except (ValueError, OverflowError):
        return False


_REPORT_FIELDS = {
    "generator": (_is_text, "must be a generator's name"),
    "seconds": (_is_number, "must be a number"),
    "device": (lambda v: isinstance(v, str), "must be text"),
    "steps": (_is_int, "must be a whole number"),
    "stopped": (lambda v: isinstance(v, str), "must be text"),
    "best_score": (lambda v: v is None or _is_number(v), "must be null or a number"),
    "best_step": (lambda v: v is None or _is_int(v), "must be null or a whole number"),
    "history": (lambda v: isinstance(v, list) and all(isinstance(row, dict) for row in v), "must be a list of objects"),
}


def _nests_deeper(value: Any, limit: int) -> bool:
    """Whether ``value`` nests lists and dicts more than ``limit`` levels deep (looked at level by level)."""
    level = [value]
    for _ in range(limit + 1):
        containers = [v for v in level if isinstance(v, (dict, list))]
        if not containers:
            return False
        level = [child for c in containers for child in (c.values() if isinstance(c, dict) else c)]
    return True


def _short_repr(value: Any, limit: int = 80) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def publish(tmp: Path, final: Path) -> None:
    """Move a finished temporary file into place, readable as the user's umask allows (writers of
    temporary files, safetensors among them, create them private to the owner)."""
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)
    os.replace(tmp, final)


def file_sha256(path: Path) -> str:
    """SHA-256 of a file, read in blocks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()
