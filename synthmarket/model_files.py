"""Model directories on disk: ``config.json`` (its schema and checksum) and the weights file.

A model directory holds ``config.json`` (generator name, package version,
hyper-parameters, scaler, anchor, regime scheme, training-data fingerprint, SHA-256 of the
weights, and a checksum of the configuration itself) and ``weights.safetensors``. Reading
checks ``config.json`` against its checksum and a schema, and the weights against their
checksum; nothing in the directory is imported or executed. :meth:`Generator.save
<synthmarket.generator.Generator.save>` and :meth:`~synthmarket.generator.Generator.load`
use what is here.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from pathlib import Path
from typing import Any, NoReturn

import numpy as np
import pandas as pd

from .bars import channels
from .checks import dangling_link
from .errors import ModelFileError
from .jsonutil import json_default
from .regimes import BUILT_IN

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


def read_config(directory: Path) -> dict:
    """``config.json`` of a model directory, checked against its checksum and the schema."""
    directory = Path(directory)
    if not directory.exists():
        raise ModelFileError(
            dangling_link(directory)
            or f"No such model directory: {str(directory)!r}. Train one with `synthmarket train --out DIR`."
        )
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
        raise ModelFileError(
            f"{path} was written by a newer synthmarket ('format_version' {version}); upgrade synthmarket."
        )
    check = _ConfigCheck(path)
    for key, value in config.items():
        # before the checksum, whose JSON encoding recurses into the values
        check.require(
            not _nests_deeper(value, MAX_DEPTH),
            key,
            f"must not nest lists and dicts more than {MAX_DEPTH} deep",
            _UNSHOWN,
        )
    if "checksum" in config:
        record = config["checksum"]
        check.require(
            isinstance(record, dict)
            and set(record) == {"covers", "sha256"}
            and record["covers"] == CHECKSUM_COVERS
            and _is_sha256(record["sha256"]),
            "checksum",
            f"must hold covers {CHECKSUM_COVERS} and a sha256 of 64 hexadecimal digits",
            record,
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
        raise ModelFileError(
            f"{self.path}: {key!r} {rule}{got}; the model directory is damaged. Retrain, or restore it from a backup."
        )

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
        self.require(
            _is_int(version) and MIN_FORMAT_VERSION <= version <= FORMAT_VERSION,
            "format_version",
            f"must be a format version this synthmarket reads ({supported})",
            version,
        )
        self.require(_is_text(config["generator"]), "generator", "must be a generator's name", config["generator"])
        for key in ("package_version", "data_fingerprint"):
            self.require(
                config.get(key) is None or isinstance(config[key], str), key, "must be null or text", config.get(key)
            )
        self.require(
            isinstance(config["hyperparameters"], dict),
            "hyperparameters",
            "must be an object of named values",
            config["hyperparameters"],
        )
        self.scaler(config["scaler"])
        self.anchor(config["anchor"])
        if config.get("regimes") is not None:
            self.regimes(config["regimes"])
        if config.get("train_report") is not None:
            self.train_report(config["train_report"])
        self.weights(config["weights"])

    def scaler(self, scaler: Any) -> None:
        self.require(
            isinstance(scaler, dict) and set(scaler) == {"channels", "mean", "std"},
            "scaler",
            "must hold exactly channels, mean and std",
            scaler,
        )
        layouts = [list(channels(True)), list(channels(False))]
        names = scaler["channels"]
        self.require(names in layouts, "scaler.channels", f"must be {layouts[0]}, or the same without 'volume'", names)
        self.require(
            _finite_numbers(scaler["mean"], len(names)),
            "scaler.mean",
            f"must be {len(names)} finite numbers",
            scaler["mean"],
        )
        std = scaler["std"]
        self.require(
            _finite_numbers(std, len(names)) and all(x > 0 for x in std),
            "scaler.std",
            f"must be {len(names)} finite positive numbers",
            std,
        )

    def anchor(self, anchor: Any) -> None:
        self.require(
            isinstance(anchor, dict) and "close" in anchor and set(anchor) <= {"close", "volume_level", "date"},
            "anchor",
            "must hold close, and optionally volume_level and date",
            anchor,
        )
        close = anchor["close"]
        self.require(_is_finite(close) and close > 0, "anchor.close", "must be a finite positive price", close)
        level = anchor.get("volume_level")
        self.require(
            level is None or _is_finite(level), "anchor.volume_level", "must be null or a finite number", level
        )
        date = anchor.get("date")
        self.require(
            date is None or _is_date(date),
            "anchor.date",
            f"must be null or a date YYYY-MM-DD from {_DATE_RANGE[0]:%Y-%m-%d} to {_DATE_RANGE[1]:%Y-%m-%d}",
            date,
        )

    def regimes(self, regimes: Any) -> None:
        self.require(
            isinstance(regimes, dict) and set(regimes) == {"kind", "names", "window", "thresholds"},
            "regimes",
            "must be null or hold exactly kind, names, window and thresholds",
            regimes,
        )
        kind, names, window, thresholds = (regimes[k] for k in ("kind", "names", "window", "thresholds"))
        self.require(_is_text(kind), "regimes.kind", "must be 'volatility', 'trend' or a column name", kind)
        if kind in BUILT_IN:
            expected, _ = BUILT_IN[kind]
            self.require(
                names == list(expected), "regimes.names", f"must be {list(expected)} for {kind} regimes", names
            )
            self.require(
                _is_int(window) and window >= 2, "regimes.window", "must be a whole number of bars, at least 2", window
            )
            self.require(
                _finite_numbers(thresholds, len(names) - 1) and thresholds == sorted(thresholds),
                "regimes.thresholds",
                f"must be {len(names) - 1} finite numbers in ascending order",
                thresholds,
            )
        else:
            self.require(
                isinstance(names, list)
                and len(names) >= 2
                and all(_is_text(n) for n in names)
                and len(set(names)) == len(names),
                "regimes.names",
                "must be two or more distinct names",
                names,
            )
            self.require(_is_int(window) and window >= 0, "regimes.window", "must be a whole number", window)
            self.require(
                thresholds == [], "regimes.thresholds", "must be empty for regimes read from a column", thresholds
            )

    def train_report(self, report: Any) -> None:
        fields = _REPORT_FIELDS  # every field of generator.TrainReport
        self.require(
            isinstance(report, dict) and set(report) <= set(fields) and {"generator", "seconds"} <= set(report),
            "train_report",
            f"must be null or hold generator, seconds and others of {', '.join(fields)}",
            report,
        )
        for key, value in report.items():
            ok, rule = _REPORT_FIELDS[key]
            self.require(ok(value), f"train_report.{key}", rule, value)

    def weights(self, weights: Any) -> None:
        self.require(
            isinstance(weights, dict) and {"file", "sha256"} <= set(weights) <= {"file", "sha256", "bytes"},
            "weights",
            "must hold file, sha256 and bytes",
            weights,
        )
        self.require(_is_text(weights["file"]), "weights.file", "must be a file name", weights["file"])
        self.require(
            _is_sha256(weights["sha256"]), "weights.sha256", "must be 64 hexadecimal digits", weights["sha256"]
        )
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


def write_weights(directory: Path, state: dict[str, np.ndarray]) -> dict:
    """Write ``state`` as the weights file of ``directory``; the ``weights`` record of ``config.json``."""
    from safetensors.numpy import save_file

    weights = Path(directory) / WEIGHTS_FILE
    tmp = weights.with_suffix(".tmp")
    save_file({k: np.ascontiguousarray(v) for k, v in state.items()}, str(tmp))
    publish(tmp, weights)
    return {"file": WEIGHTS_FILE, "sha256": file_sha256(weights), "bytes": weights.stat().st_size}


def read_weights(directory: Path, config: dict) -> dict[str, np.ndarray]:
    """The weights ``config`` (as :func:`read_config` returned it) names, checked against their checksum."""
    from safetensors.numpy import load_file

    weights = Path(directory) / config["weights"]["file"]
    if Path(config["weights"]["file"]).name != config["weights"]["file"] or not weights.is_file():
        raise ModelFileError(f"{directory}: the weights file {config['weights']['file']!r} is missing.")
    if file_sha256(weights) != config["weights"]["sha256"]:
        raise ModelFileError(
            f"{weights}: the weights do not match the checksum in config.json (truncated, corrupted or "
            f"tampered with). Retrain, or restore the directory from a backup."
        )
    try:
        return load_file(str(weights))
    except Exception as exc:
        raise ModelFileError(f"{weights} is not a readable safetensors file: {exc}") from None


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
