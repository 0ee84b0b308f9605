"""One training loop for every deep generator.

:class:`Trainer` drives any model that honours the small :class:`Trainable` protocol (the
model supplies its networks, its optimisers and ``train_step(batch, ctx) -> losses``) and
does the rest once: device choice, seeds and deterministic algorithms, mixed precision on
CUDA, random training windows, a rich progress bar with live losses, a JSONL training log,
periodic checkpoints and exact resume, a divergence guard, a time budget, and model
selection with early stopping on a stylized-facts score of sampled paths against held-out
real returns (never on the training losses).

Checkpoints are written without pickle: tensors in safetensors, everything else in JSON::

    OUT/checkpoints/ckpt-00000400.safetensors   networks, optimiser tensors, RNG states, best weights
    OUT/checkpoints/last.json                   step, optimiser scalars, data RNG, scores, file checksum
    OUT/train_log.jsonl                         one JSON object per logged step / validation / event

Resuming restores networks, optimisers, gradient scalers, every random generator, the step
and the model-selection state, so an interrupted run continues to the same weights as an
uninterrupted one (on CPU).
"""

from __future__ import annotations

import contextlib
import json
import math
import re
import signal
import threading
import time
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterator, Protocol, Sequence

import numpy as np
import torch
from torch import nn

from .checks import check_seed
from .errors import ConfigError, ModelFileError, TrainingDiverged
from .generator import file_sha256, json_default, publish

if TYPE_CHECKING:
    from .generator import Dataset, TrainReport

CHECKPOINT_FORMAT = "synthmarket-checkpoint"
CHECKPOINT_VERSION = 1
CHECKPOINT_DIR = "checkpoints"
LAST_FILE = "last.json"
LOG_FILE = "train_log.jsonl"
DEVICES = ("auto", "cpu", "cuda", "mps")
#: Distances (from :mod:`synthmarket.distances`) averaged into the validation score.
VALIDATION_KEYS = ("w1_1", "w1_5", "w1_20", "acf_abs", "acf_sq", "leverage")
MIN_VALIDATION_BARS = 60

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
        raise ConfigError("--device mps was asked for but this machine has no Apple MPS backend; use --device auto or cpu.")
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
    towards ``patience`` (None: a third of the planned steps; 0: none). ``threads`` is
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
        for name in ("steps", "threads", "batch_size", "checkpoint_every", "log_every", "validate_every", "validation_paths"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, (int, np.integer)) or value < 1):
                raise ConfigError(f"TrainConfig.{name} must be a positive whole number; got {value!r}.")
        if self.epochs is not None and not (self.epochs > 0):
            raise ConfigError(f"TrainConfig.epochs must be positive; got {self.epochs!r}.")
        if self.select_after is not None and (not isinstance(self.select_after, (int, np.integer)) or self.select_after < 0):
            raise ConfigError(f"TrainConfig.select_after must be a whole number of steps, at least 0; got {self.select_after!r}.")
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
    def from_any(cls, config: "TrainConfig | dict | None") -> "TrainConfig":
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


# -- what the trainer hands a model -----------------------------------------------------------
@dataclass
class Batch:
    """Real training windows: ``x`` (B, L, C) scaled features, ``labels`` (B, L) regimes or None."""

    x: torch.Tensor
    labels: torch.Tensor | None = None


@dataclass
class StepContext:
    """What a model's ``train_step`` needs from the loop.

    ``noise`` is the torch generator to draw training noise from (it is checkpointed);
    ``step`` counts the steps completed before this one; :meth:`autocast` and
    :meth:`optimize` give mixed precision on CUDA and plain float32 elsewhere.
    """

    device: torch.device
    noise: torch.Generator
    amp: bool = False
    step: int = 0
    scalers: dict[str, Any] = field(default_factory=dict)

    def autocast(self):
        if self.amp:
            return torch.autocast(device_type=self.device.type, dtype=torch.float16)
        return contextlib.nullcontext()

    def optimize(self, name: str, loss: torch.Tensor, optimizer: torch.optim.Optimizer) -> None:
        """Zero the gradients, back-propagate ``loss`` and step ``optimizer`` (scaled under AMP)."""
        optimizer.zero_grad(set_to_none=True)
        if not self.amp:
            loss.backward()
            optimizer.step()
            return
        scaler = self.scalers.get(name)
        if scaler is None:
            scaler = self.scalers[name] = torch.amp.GradScaler(self.device.type)
        scaler.scale(loss).backward()
        scaler.step(optimizer)
        scaler.update()


class Trainable(Protocol):
    """What :class:`Trainer` needs from a model (``TorchGenerator`` implements it)."""

    name: str

    def training_plan(self) -> dict[str, Any]:
        """Default ``steps``, ``batch_size``, training ``window`` and optional ``time_budget``."""

    def prepare(self, device: torch.device) -> None:
        """Move the networks to ``device`` and create the optimisers."""

    def training_modules(self) -> dict[str, nn.Module]:
        """Every network whose weights a checkpoint holds."""

    def training_optimizers(self) -> dict[str, torch.optim.Optimizer]:
        """Every optimiser whose state a checkpoint holds."""

    def train_step(self, batch: Batch, ctx: StepContext) -> dict[str, float]:
        """One optimisation step; the losses as floats."""

    def sample_scaled(self, n: int, labels: np.ndarray | None, rng: np.random.Generator, n_steps: int) -> np.ndarray:
        """Scaled features (n, n_steps, C) for validation."""

    def checkpoint_meta(self) -> dict:
        """JSON describing the model (name, hyper-parameters), checked on resume."""


# -- validation score ----------------------------------------------------------------------------
DistanceFn = Callable[[np.ndarray, np.ndarray], dict]


def _default_distances(lags: tuple[int, ...]) -> DistanceFn:
    from .distances import return_distances

    return lambda real, synthetic: return_distances(real, synthetic, lags=lags)


class ValidationScore:
    """Stylized-facts distance of sampled paths to the held-out real returns (lower is better).

    The held-out returns are first brought to the training data's mean and volatility: a
    model learns its level from the training data, and a few held-out months are one draw
    of a persistent volatility, so the score judges the shape of the returns (tails,
    clustering, leverage, how sums grow with the horizon), not whether a checkpoint happens
    to match the held-out period's level (with the raw S&P 500 2017-18 returns, selection
    preferred models 7% calmer than the training years). Paths as long as the validation period are sampled (under the validation period's own
    regime labels when the data have regimes) with the same seed every time, and scored with
    ``distance_fn(real_returns, synthetic_returns) -> dict`` (by default
    :func:`synthmarket.distances.return_distances`). The score is the mean, over ``keys``,
    of each distance divided by the same distance for i.i.d. normal returns with the
    training mean and volatility — so 1 means "no better than a random walk".
    """

    def __init__(
        self, dataset: "Dataset", *, n_paths: int = 64, seed: int = 0, keys: Sequence[str] = VALIDATION_KEYS,
        distance_fn: DistanceFn | None = None,
    ) -> None:
        mean, std = dataset.scaler.mean[0], dataset.scaler.std[0]
        self.mean, self.std = float(mean), float(std)
        held_out = dataset.validation[:, 0].astype(np.float64)  # scaled: the training mean 0, volatility 1
        spread = held_out.std()
        standardized = (held_out - held_out.mean()) / spread if spread > 0 else held_out
        self.real = standardized * self.std + self.mean
        self.labels = dataset.validation_labels
        self.n_paths, self.seed, self.keys = int(n_paths), int(seed), tuple(keys)
        lags = tuple(k for k in (1, 5, 20, 100) if k < len(self.real) // 3) or (1,)
        self.distance_fn = distance_fn or _default_distances(lags)
        noise = np.random.default_rng([self.seed, 1]).standard_normal((self.n_paths, len(self.real)))
        self.baseline = self.distance_fn(self.real, self.mean + self.std * noise)

    @classmethod
    def usable(cls, dataset: "Dataset") -> bool:
        return len(dataset.validation) >= MIN_VALIDATION_BARS

    def __call__(self, sample: Callable[[int, np.ndarray | None, np.random.Generator, int], np.ndarray]) -> tuple[float, dict]:
        """(score, distances) of ``sample(n, labels, rng, n_steps)``'s scaled paths."""
        scaled = sample(self.n_paths, self.labels, np.random.default_rng([self.seed, 2]), len(self.real))
        returns = np.asarray(scaled, dtype=np.float64)[..., 0] * self.std + self.mean
        if not np.isfinite(returns).all():
            return math.inf, {}
        distances = {k: float(v) for k, v in self.distance_fn(self.real, returns).items()}
        ratios = [distances[k] / self.baseline[k] for k in self.keys if k in distances and self.baseline.get(k, 0) > 0]
        return (float(np.mean(ratios)) if ratios else math.inf), distances


# -- the loop ---------------------------------------------------------------------------------------
@dataclass
class _State:
    step: int = 0
    elapsed: float = 0.0
    best_score: float | None = None
    best_step: int | None = None
    bad_validations: int = 0
    last_checkpoint: int | None = None


class _WindowSampler:
    """Random training windows (B, L, C) and their labels, from a numpy generator (checkpointed).

    A window never spans two training stretches (``Dataset.window_starts``)."""

    def __init__(self, dataset: "Dataset", window: int, batch_size: int, device, seed: int):
        labels = dataset.train_labels
        self.data = torch.as_tensor(dataset.train, dtype=torch.float32, device=device)
        self.labels = None if labels is None else torch.as_tensor(labels, dtype=torch.long, device=device)
        self.window, self.batch_size = window, batch_size
        self.starts = torch.as_tensor(dataset.window_starts(window), device=device)
        self.n_windows = len(self.starts)
        self.rng = np.random.default_rng([seed, 0])
        self._offsets = torch.arange(window, device=device)

    def next(self) -> Batch:
        picks = torch.as_tensor(self.rng.integers(0, self.n_windows, size=self.batch_size), device=self.data.device)
        index = self.starts[picks][:, None] + self._offsets[None, :]
        return Batch(self.data[index], None if self.labels is None else self.labels[index])

    @property
    def steps_per_epoch(self) -> int:
        return max(1, math.ceil(self.n_windows / self.batch_size))


class _Interrupt:
    """While active, the first Ctrl-C asks the loop to stop at the next step boundary."""

    def __init__(self) -> None:
        self.requested = False
        self._previous = None

    def __enter__(self) -> "_Interrupt":
        if threading.current_thread() is threading.main_thread():
            self._previous = signal.signal(signal.SIGINT, self._handle)
        return self

    def _handle(self, signum, frame) -> None:
        if self.requested:  # a second Ctrl-C stops at once
            raise KeyboardInterrupt
        self.requested = True

    def __exit__(self, *exc) -> None:
        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)


class Trainer:
    """Trains a :class:`Trainable` model on a :class:`~synthmarket.generator.Dataset`.

    Parameters
    ----------
    config : TrainConfig
        How to train.
    score : callable, optional
        ``score(sample_fn) -> (float, dict)`` used for model selection; by default a
        :class:`ValidationScore` on the dataset's validation split.
    callbacks : sequence of callables, optional
        ``callback(step, losses)`` after every step (for notebooks and tests).
    console : rich Console, optional
        Where the progress bar goes.
    """

    def __init__(self, config: TrainConfig | dict | None = None, *, score=None, callbacks: Sequence[Callable] = (), console=None):
        self.config = TrainConfig.from_any(config)
        self.score = score
        self.callbacks = list(callbacks)
        self.console = console

    # -- public ---------------------------------------------------------------------------------
    def fit(self, model: Trainable, dataset: "Dataset") -> "TrainReport":
        """Train ``model`` and return what happened; the model ends with its best weights.

        Raises
        ------
        TrainingDiverged
            When a loss becomes NaN/inf or exceeds ``max_loss`` (the last checkpoint is kept).
        ConfigError, ModelFileError
            For an impossible configuration or an unusable checkpoint when resuming.
        """
        from .generator import TrainReport

        cfg = self.config
        device = resolve_device(cfg.device)
        plan = model.training_plan()
        for key, least in (("window", 2), ("batch_size", 1), ("steps", 1)):
            if not isinstance(plan[key], (int, np.integer)) or plan[key] < least:
                raise ConfigError(f"{model.name}: the hyper-parameter {key} must be a whole number, at least {least}; "
                                  f"got {plan[key]!r}.")
        window = min(int(plan["window"]), dataset.longest_segment)
        batch_size = int(cfg.batch_size or plan["batch_size"])
        sampler = _WindowSampler(dataset, window, batch_size, device, cfg.seed)
        total = self._total_steps(plan, sampler)
        warmup = total // 3 if cfg.select_after is None else min(int(cfg.select_after), total)
        budget = cfg.time_budget
        if budget is None and cfg.steps is None and cfg.epochs is None:
            budget = parse_duration(plan.get("time_budget"))  # the model's default length comes with a time cap
        scorer = self.score
        if scorer is None and ValidationScore.usable(dataset):
            scorer = ValidationScore(dataset, n_paths=cfg.validation_paths, seed=cfg.seed)

        model.prepare(device)
        noise = torch.Generator(device=device)
        noise.manual_seed(int(cfg.seed))
        amp = bool(cfg.amp and device.type == "cuda")
        ctx = StepContext(device=device, noise=noise, amp=amp)
        state = _State()
        best: dict[str, dict[str, torch.Tensor]] | None = None
        meta = {"model": model.checkpoint_meta(), "data_fingerprint": dataset.fingerprint,
                "window": window, "batch_size": batch_size}
        if cfg.resume:
            state, best = self._load_checkpoint(model, ctx, sampler, meta)
        log = _Log(cfg.log_file, append=cfg.resume)
        log.write(event="resume" if cfg.resume else "start", step=state.step, total_steps=total, warmup_steps=warmup,
                  device=str(device), amp=amp, window=window, batch_size=batch_size, config=cfg.to_dict(),
                  model=meta["model"])

        history: list[dict] = []
        stopped = "finished"
        last_losses: dict[str, float] = {}
        previous_deterministic = torch.are_deterministic_algorithms_enabled()
        previous_threads = torch.get_num_threads()
        if cfg.deterministic:
            torch.use_deterministic_algorithms(True, warn_only=True)
        if cfg.threads is not None and device.type == "cpu":
            torch.set_num_threads(int(cfg.threads))
        started = time.perf_counter()
        base_elapsed = state.elapsed
        try:
            with _Interrupt() as interrupt, _progress(cfg.progress, total, budget, state, self.console) as bar:
                while state.step < total:
                    state.elapsed = base_elapsed + time.perf_counter() - started
                    if budget is not None and state.elapsed >= budget:
                        stopped = "time budget"
                        break
                    ctx.step = state.step
                    losses = model.train_step(sampler.next(), ctx)
                    self._guard(losses, state, model)
                    state.step += 1
                    last_losses = losses
                    if state.step % cfg.log_every == 0 or state.step == 1:
                        log.write(event="step", step=state.step, elapsed=round(state.elapsed, 3), **losses)
                    bar(losses)
                    for callback in self.callbacks:
                        callback(state.step, losses)
                    if scorer is not None and (state.step % cfg.validate_every == 0 or state.step == total):
                        row, improved = self._validate(model, scorer, state, log, warmup)
                        history.append(row)
                        if improved:
                            best = _snapshot(model)
                        elif cfg.patience is not None and state.bad_validations >= cfg.patience:
                            stopped = "early stopping"
                    if state.step % cfg.checkpoint_every == 0 or state.step == total or stopped != "finished":
                        state.elapsed = base_elapsed + time.perf_counter() - started
                        self._save_checkpoint(model, ctx, sampler, state, best, meta)
                    if stopped != "finished":
                        break
                    if interrupt.requested:
                        stopped = "interrupted"
                        state.elapsed = base_elapsed + time.perf_counter() - started
                        self._save_checkpoint(model, ctx, sampler, state, best, meta)
                        break
                if stopped == "time budget":
                    self._save_checkpoint(model, ctx, sampler, state, best, meta)
        finally:
            torch.use_deterministic_algorithms(previous_deterministic)
            torch.set_num_threads(previous_threads)
        if best is not None:
            _restore(model, best)
        state.elapsed = base_elapsed + time.perf_counter() - started
        log.write(event="stop", step=state.step, reason=stopped, elapsed=round(state.elapsed, 3),
                  best_score=state.best_score, best_step=state.best_step, **last_losses)
        return TrainReport(
            generator=model.name, seconds=round(state.elapsed, 3), device=str(device), steps=state.step,
            stopped=stopped, best_score=state.best_score, best_step=state.best_step, history=history,
        )

    # -- helpers -------------------------------------------------------------------------------------
    def _total_steps(self, plan: dict, sampler: _WindowSampler) -> int:
        if self.config.steps is not None:
            return int(self.config.steps)
        if self.config.epochs is not None:
            return max(1, int(round(self.config.epochs * sampler.steps_per_epoch)))
        return int(plan["steps"])

    def _guard(self, losses: dict[str, float], state: _State, model: Trainable) -> None:
        for key, value in losses.items():
            if not math.isfinite(value) or abs(value) > self.config.max_loss:
                where = "no checkpoint was written yet"
                if state.last_checkpoint is not None and self.config.out_dir is not None:
                    where = (f"the last good checkpoint (step {state.last_checkpoint}) is kept in "
                             f"{Path(self.config.out_dir) / CHECKPOINT_DIR}")
                problem = "is not finite" if not math.isfinite(value) else f"exceeds max_loss={self.config.max_loss:g}"
                raise TrainingDiverged(
                    f"{model.name}: training diverged at step {state.step + 1}: loss {key!r} = {value!r} {problem}; "
                    f"{where}. Lower the learning rate (a -H lr... hyper-parameter), change the seed, or resume "
                    f"from the checkpoint with --resume."
                )

    def _validate(self, model: Trainable, scorer, state: _State, log: "_Log", warmup: int) -> tuple[dict, bool]:
        """Score the model; the warm-up's best gives way to the first validation after it."""
        score, distances = scorer(model.sample_scaled)
        past_warmup = state.step >= warmup
        best_in_warmup = state.best_step is not None and state.best_step < warmup
        improved = math.isfinite(score) and (
            state.best_score is None or score < state.best_score or (past_warmup and best_in_warmup))
        if improved:
            state.best_score, state.best_step, state.bad_validations = float(score), state.step, 0
        elif past_warmup:
            state.bad_validations += 1
        row = {"step": state.step, "validation": score if math.isfinite(score) else None,
               "best": improved, **{k: round(v, 6) for k, v in distances.items()}}
        log.write(event="validation", **row)
        return row, improved

    # -- checkpoints ---------------------------------------------------------------------------------
    def _checkpoint_dir(self) -> Path | None:
        return None if self.config.out_dir is None else Path(self.config.out_dir) / CHECKPOINT_DIR

    def _save_checkpoint(self, model, ctx: StepContext, sampler: _WindowSampler, state: _State, best, meta: dict) -> None:
        from safetensors.torch import save_file

        folder = self._checkpoint_dir()
        if folder is None:
            return
        folder.mkdir(parents=True, exist_ok=True)
        tensors: dict[str, torch.Tensor] = {}
        for name, module in model.training_modules().items():
            for key, value in module.state_dict().items():
                tensors[f"module.{name}.{key}"] = value
        if best is not None:
            for name, module_state in best.items():
                for key, value in module_state.items():
                    tensors[f"best.{name}.{key}"] = value
        optim_json = {}
        for name, optimizer in model.training_optimizers().items():
            flat, rest = _flatten_optimizer(optimizer.state_dict())
            tensors.update({f"optim.{name}.{k}": v for k, v in flat.items()})
            optim_json[name] = rest
        tensors["rng.noise"] = ctx.noise.get_state()
        tensors = {k: v.detach().to("cpu").contiguous().clone() for k, v in tensors.items()}
        file = folder / f"ckpt-{state.step:08d}.safetensors"
        tmp = file.with_suffix(".tmp")
        save_file(tensors, str(tmp))
        publish(tmp, file)
        record = {
            "format": CHECKPOINT_FORMAT, "version": CHECKPOINT_VERSION, "file": file.name, "sha256": file_sha256(file),
            **meta, "state": asdict(state) | {"last_checkpoint": state.step}, "optimizers": optim_json,
            "scalers": {k: v.state_dict() for k, v in ctx.scalers.items()},
            "data_rng": sampler.rng.bit_generator.state, "has_best": best is not None,
        }
        tmp = folder / (LAST_FILE + ".tmp")
        tmp.write_text(json.dumps(record, default=json_default))
        tmp.replace(folder / LAST_FILE)
        state.last_checkpoint = state.step
        for old in folder.glob("ckpt-*.safetensors"):
            if old.name != file.name:
                old.unlink()

    def _load_checkpoint(self, model, ctx: StepContext, sampler: _WindowSampler, meta: dict):
        from safetensors import SafetensorError
        from safetensors.torch import load_file

        record, file = read_checkpoint(Path(self.config.out_dir))
        for key, what in (("model", "generator and hyper-parameters"), ("data_fingerprint", "training data"),
                          ("window", "training window"), ("batch_size", "batch size")):
            if _jsonable(record.get(key)) != _jsonable(meta[key]):
                raise ConfigError(
                    f"Cannot resume: the checkpoint in {file.parent} was made with other {what} "
                    f"({record.get(key)!r} there, {meta[key]!r} now). Use the same options, or start afresh with --force."
                )
        try:
            tensors = load_file(str(file))
            for name, module in model.training_modules().items():
                prefix = f"module.{name}."
                module.load_state_dict({k[len(prefix):]: v for k, v in tensors.items() if k.startswith(prefix)})
            for name, optimizer in model.training_optimizers().items():
                prefix = f"optim.{name}."
                flat = {k[len(prefix):]: v for k, v in tensors.items() if k.startswith(prefix)}
                optimizer.load_state_dict(_unflatten_optimizer(flat, record["optimizers"][name], ctx.device))
            ctx.noise.set_state(tensors["rng.noise"])
            for name, scaler_state in record.get("scalers", {}).items():
                scaler = ctx.scalers[name] = torch.amp.GradScaler(ctx.device.type)
                scaler.load_state_dict(scaler_state)
            sampler.rng.bit_generator.state = record["data_rng"]
            best = None
            if record.get("has_best"):
                best = {}
                for name in model.training_modules():
                    prefix = f"best.{name}."
                    best[name] = {k[len(prefix):]: v for k, v in tensors.items() if k.startswith(prefix)}
            state = _State(**record["state"])
        except (KeyError, RuntimeError, ValueError, TypeError, SafetensorError) as exc:
            raise ModelFileError(f"The checkpoint {file} is damaged or does not fit this model ({type(exc).__name__}: "
                                 f"{exc}). Start afresh with --force.") from None
        return state, best


def read_checkpoint(out_dir: Path) -> tuple[dict, Path]:
    """The ``last.json`` record of ``out_dir/checkpoints`` and its verified tensor file."""
    folder = Path(out_dir) / CHECKPOINT_DIR
    last = folder / LAST_FILE
    if not last.is_file():
        raise ModelFileError(f"Nothing to resume: {last} does not exist. Train without --resume first.")
    try:
        record = json.loads(last.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ModelFileError(f"{last} is not valid JSON ({exc}); start afresh with --force.") from None
    if not isinstance(record, dict) or record.get("format") != CHECKPOINT_FORMAT:
        raise ModelFileError(f"{last} is not a synthmarket checkpoint record.")
    file = folder / str(record.get("file", ""))
    if Path(record.get("file", "")).name != record.get("file") or not file.is_file():
        raise ModelFileError(f"The checkpoint tensors {file} are missing; start afresh with --force.")
    if file_sha256(file) != record.get("sha256"):
        raise ModelFileError(f"{file} does not match its checksum (truncated or corrupted); start afresh with --force.")
    return record, file


# -- small pieces ------------------------------------------------------------------------------------
def _snapshot(model: Trainable) -> dict[str, dict[str, torch.Tensor]]:
    return {name: {k: v.detach().clone() for k, v in m.state_dict().items()} for name, m in model.training_modules().items()}


def _restore(model: Trainable, snapshot: dict[str, dict[str, torch.Tensor]]) -> None:
    for name, module in model.training_modules().items():
        module.load_state_dict(snapshot[name])


def _flatten_optimizer(state: dict) -> tuple[dict[str, torch.Tensor], dict]:
    tensors, scalars = {}, {}
    for index, entries in state["state"].items():
        for key, value in entries.items():
            if torch.is_tensor(value):
                tensors[f"{index}.{key}"] = value
            else:
                scalars[f"{index}.{key}"] = value
    return tensors, {"param_groups": state["param_groups"], "scalars": scalars}


def _unflatten_optimizer(tensors: dict[str, torch.Tensor], rest: dict, device: torch.device) -> dict:
    state: dict[int, dict] = {}
    for key, value in list(tensors.items()) + list(rest["scalars"].items()):
        index, name = key.split(".", 1)
        if torch.is_tensor(value) and name != "step":
            value = value.to(device)
        state.setdefault(int(index), {})[name] = value
    return {"state": state, "param_groups": rest["param_groups"]}


class _Log:
    """Append-only JSON-lines training log (no file: nothing is written)."""

    def __init__(self, path: Path | None, append: bool) -> None:
        self.path = path
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            if not append:
                path.write_text("")

    def write(self, **row: Any) -> None:
        if self.path is None:
            return
        row = {"time": round(time.time(), 3), **row}
        with open(self.path, "a") as f:
            f.write(json.dumps(row, default=json_default) + "\n")


@contextlib.contextmanager
def _progress(enabled: bool, total: int, budget: float | None, state: _State, console) -> Iterator[Callable[[dict], None]]:
    """A bar that fills with the steps, or with the time budget when that will end the run first."""
    if not enabled:
        yield lambda losses: None
        return
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

    columns = (TextColumn("training"), BarColumn(), TextColumn("step {task.fields[step]:,}/{task.fields[steps]:,}"),
               TimeElapsedColumn(), TimeRemainingColumn(), TextColumn("{task.fields[losses]}"))

    def done() -> float:
        by_time = 0.0 if budget is None else min(1.0, state.elapsed / budget)
        return max(state.step / total, by_time)

    with Progress(*columns, console=console, transient=False) as progress:
        task = progress.add_task("train", total=1.0, completed=done(), step=state.step, steps=total, losses="")

        def update(losses: dict) -> None:
            text = "  ".join(f"{k} {v:.4f}" for k, v in losses.items())
            progress.update(task, completed=done(), step=state.step, losses=text)

        yield update
        progress.update(task, completed=done(), step=state.step)


def _jsonable(value: Any) -> Any:
    return json.loads(json.dumps(value, default=json_default))
