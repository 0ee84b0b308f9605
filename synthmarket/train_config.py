"""How to train: :class:`TrainConfig`, durations and devices.

The configuration of :class:`~synthmarket.training.Trainer`, kept apart from the loop so that
code needing only a configuration (``sm.TrainConfig``, a classical generator's training)
need not import torch; :func:`resolve_device` imports it when called. The names stay
importable from :mod:`synthmarket.training` too.
"""

from __future__ import annotations

import math
import re
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from .checks import check_seed
from .errors import ConfigError
from .training_progress import LOG_FILE

if TYPE_CHECKING:
    import torch

__all__ = ["DEVICES", "TrainConfig", "parse_duration", "resolve_device"]

DEVICES = ("auto", "cpu", "cuda", "mps")

_DURATION = re.compile(r"^\s*(\d+(?:\.\d*)?|\.\d+)\s*(s|sec|secs|m|min|mins|h|hr|hrs|)\s*$", re.IGNORECASE)
_UNIT_SECONDS = {"": 1, "s": 1, "sec": 1, "secs": 1, "m": 60, "min": 60, "mins": 60, "h": 3600, "hr": 3600, "hrs": 3600}


def parse_duration(value: str | float | int | None) -> float | None:
    """Seconds from ``"90s"``, ``"5m"``, ``"1.5h"`` or a plain number of seconds; None stays None.

    Raises
    ------
    ConfigError
        When the text is not a positive duration.
    """
    if value is None:
        return None
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        seconds = float(value)
    else:
        match = _DURATION.match(str(value))
        if not match:
            raise ConfigError(f"Could not read the duration {value!r}; write e.g. 90s, 5m or 1h.")
        seconds = float(match.group(1)) * _UNIT_SECONDS[match.group(2).lower()]
    if not math.isfinite(seconds) or seconds <= 0:
        raise ConfigError(f"A time budget must be positive; got {value!r}.")
    return seconds


def resolve_device(choice: str = "auto") -> torch.device:
    """The torch device for ``choice``: ``auto`` is cuda if available, then mps, then cpu.

    Raises
    ------
    ConfigError
        For an unknown choice, or a device this machine does not have.
    """
    import torch  # here, so that a configuration alone does not import torch

    choice = (choice or "auto").lower()
    if choice not in DEVICES:
        raise ConfigError(f"Unknown device {choice!r}; use one of {', '.join(DEVICES)}.")
    mps = getattr(torch.backends, "mps", None)
    has_mps = bool(mps is not None and mps.is_available())
    if choice == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        return torch.device("mps" if has_mps else "cpu")
    if choice == "cuda" and not torch.cuda.is_available():
        raise ConfigError("--device cuda was asked for but torch sees no CUDA GPU here; use --device auto or cpu.")
    if choice == "mps" and not has_mps:
        raise ConfigError(
            "--device mps was asked for but this machine has no Apple MPS backend; use --device auto or cpu."
        )
    return torch.device(choice)


@dataclass
class TrainConfig:
    """How to train: length, device, seed, checkpoints, validation and logging.

    ``steps`` wins over ``epochs``; with neither, the model's own default length is used,
    capped by the model's default time budget unless ``time_budget`` is given.
    One epoch is as many steps as it takes to draw, on average, every training window once.
    ``time_budget`` accepts seconds or text such as ``"5m"``. ``patience`` counts
    validations without improvement before stopping early (None: never stop early; the
    best weights are still kept). ``select_after`` is the warm-up in steps: validations
    before it are logged but cannot be chosen once a later one exists, and do not count
    towards ``patience`` (None: a third of the steps the run will make, the planned ones or,
    with a time budget, as many as it allows at the pace so far; 0: none). ``threads`` is
    torch's CPU thread count while training (None leaves it alone; small models train
    fastest on one thread, and a shared machine punishes more). Fields left None take the
    model's defaults.
    """

    steps: int | None = None
    epochs: float | None = None
    time_budget: float | str | None = None
    device: str = "auto"
    amp: bool = True
    seed: int = 0
    batch_size: int | None = None
    checkpoint_every: int = 200
    out_dir: str | Path | None = None
    resume: bool = False
    log_file: str | Path | None = None
    log_every: int = 10
    validate_every: int = 100
    validation_paths: int = 64
    patience: int | None = 10
    select_after: int | None = None
    max_loss: float = 1e6
    progress: bool = False
    deterministic: bool = True
    threads: int | None = 1

    def __post_init__(self) -> None:
        self.time_budget = parse_duration(self.time_budget)
        self.seed = check_seed(self.seed, "TrainConfig.seed")
        if self.device not in DEVICES:
            raise ConfigError(f"Unknown device {self.device!r}; use one of {', '.join(DEVICES)}.")
        for name in (
            "steps",
            "threads",
            "batch_size",
            "checkpoint_every",
            "log_every",
            "validate_every",
            "validation_paths",
        ):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, (int, np.integer)) or value < 1):
                raise ConfigError(f"TrainConfig.{name} must be a positive whole number; got {value!r}.")
        if self.epochs is not None and not (self.epochs > 0):
            raise ConfigError(f"TrainConfig.epochs must be positive; got {self.epochs!r}.")
        if self.select_after is not None and (
            not isinstance(self.select_after, (int, np.integer)) or self.select_after < 0
        ):
            raise ConfigError(
                f"TrainConfig.select_after must be a whole number of steps, at least 0; got {self.select_after!r}."
            )
        if self.patience is not None and self.patience < 1:
            raise ConfigError(f"TrainConfig.patience must be at least 1 (or None); got {self.patience!r}.")
        if self.resume and self.out_dir is None:
            raise ConfigError("Resuming needs the output directory that holds the checkpoints (out_dir / --out).")
        if self.out_dir is not None:
            self.out_dir = Path(self.out_dir)
        if self.log_file is None and self.out_dir is not None:
            self.log_file = Path(self.out_dir) / LOG_FILE
        elif self.log_file is not None:
            self.log_file = Path(self.log_file)

    @classmethod
    def from_any(cls, config: TrainConfig | dict | None) -> TrainConfig:
        """A TrainConfig from itself, a dict of its fields, or None (all defaults)."""
        if config is None:
            return cls()
        if isinstance(config, cls):
            return config
        if isinstance(config, dict):
            unknown = sorted(set(config) - {f.name for f in fields(cls)})
            if unknown:
                raise ConfigError(f"Unknown training option(s) {', '.join(unknown)}.")
            return cls(**config)
        raise ConfigError(f"A training configuration is a TrainConfig or a dict; got {type(config).__name__}.")

    def to_dict(self) -> dict:
        return {k: (str(v) if isinstance(v, Path) else v) for k, v in asdict(self).items()}
