"""One training loop for every deep generator.

:class:`Trainer` drives any model that honours the small
:class:`~synthmarket.trainable.Trainable` protocol (the model supplies its networks, its
optimisers and ``train_step(batch, ctx) -> losses``) and does the rest once: device choice,
seeds and deterministic algorithms, mixed precision on CUDA, random training windows, a
progress bar and a JSONL training log (:mod:`synthmarket.training_progress`), periodic
checkpoints and exact resume (:mod:`synthmarket.checkpoints`), a divergence guard, a time
budget, and model selection with early stopping on a stylized-facts score of sampled paths
against held-out real returns (:mod:`synthmarket.validation_score`; never on the training
losses). :class:`~synthmarket.train_config.TrainConfig` says how.
"""

from __future__ import annotations

import contextlib
import math
import signal
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch

from .checkpoints import (
    CHECKPOINT_DIR,
    TrainingState,
    Weights,
    copy_weights,
    load_checkpoint,
    load_weights,
    save_checkpoint,
)
from .errors import ConfigError, TrainingDiverged
from .train_config import DEVICES, TrainConfig, parse_duration, resolve_device
from .trainable import StepContext, Trainable, WindowSampler
from .training_progress import TrainingLog, progress_bar
from .validation_score import ValidationScore

if TYPE_CHECKING:
    from .generator import TrainReport
    from .training_data import TrainingData

#: The configuration lives in :mod:`synthmarket.train_config`; these names stay importable from here.
__all__ = ["DEVICES", "TrainConfig", "Trainer", "parse_duration", "resolve_device"]


# -- the loop ---------------------------------------------------------------------------------------
class _Interrupt:
    """While active, the first Ctrl-C asks the loop to stop at the next step boundary."""

    def __init__(self) -> None:
        self.requested = False
        self._previous = None

    def __enter__(self) -> _Interrupt:
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


@contextlib.contextmanager
def _torch_settings(config: TrainConfig, device: torch.device) -> Iterator[None]:
    """Deterministic algorithms and torch's CPU thread count as ``config`` asks; the previous ones after."""
    previous_deterministic = torch.are_deterministic_algorithms_enabled()
    previous_threads = torch.get_num_threads()
    if config.deterministic:
        torch.use_deterministic_algorithms(True, warn_only=True)
    if config.threads is not None and device.type == "cpu":
        torch.set_num_threads(int(config.threads))
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(previous_deterministic)
        torch.set_num_threads(previous_threads)


@dataclass
class _Run:
    """One call of :meth:`Trainer.fit`: what it set up, and what the loop advances."""

    model: Trainable
    ctx: StepContext
    sampler: WindowSampler
    scorer: Callable | None
    state: TrainingState
    best: Weights | None
    meta: dict
    log: TrainingLog
    total: int
    warmup: int
    budget: float | None
    history: list[dict] = field(default_factory=list)
    last_losses: dict[str, float] = field(default_factory=dict)
    stopped: str | None = None

    def __post_init__(self) -> None:
        self.elapsed_before = self.state.elapsed  # by the run resumed
        self.started = time.perf_counter()

    def clock(self) -> None:
        self.state.elapsed = self.elapsed_before + time.perf_counter() - self.started


class Trainer:
    """Trains a :class:`~synthmarket.trainable.Trainable` model on :class:`~synthmarket.training_data.TrainingData`.

    Parameters
    ----------
    config : TrainConfig
        How to train.
    score : callable, optional
        ``score(sample_fn) -> (float, dict)`` used for model selection; by default a
        :class:`~synthmarket.validation_score.ValidationScore` on the data's validation split.
    callbacks : sequence of callables, optional
        ``callback(step, losses)`` after every step (for notebooks and tests).
    console : rich Console, optional
        Where the progress bar goes.
    """

    def __init__(
        self, config: TrainConfig | dict | None = None, *, score=None, callbacks: Sequence[Callable] = (), console=None
    ):
        self.config = TrainConfig.from_any(config)
        self.score = score
        self.callbacks = list(callbacks)
        self.console = console

    def fit(self, model: Trainable, dataset: TrainingData) -> TrainReport:
        """Train ``model`` and return what happened; the model ends with its best weights.

        Raises
        ------
        TrainingDiverged
            When a loss becomes NaN/inf or exceeds ``max_loss`` (the last checkpoint is kept).
        ConfigError, ModelFileError
            For an impossible configuration or an unusable checkpoint when resuming.
        """
        run = self._set_up(model, dataset)
        with (
            _torch_settings(self.config, run.ctx.device),
            _Interrupt() as interrupt,
            progress_bar(self.config.progress, run.total, run.budget, run.state, self.console) as bar,
        ):
            while run.stopped is None and run.state.step < run.total:
                if self._time_is_up(run):
                    run.stopped = "time budget"
                else:
                    losses = self._step(run)
                    bar(losses)
                    for callback in self.callbacks:
                        callback(run.state.step, losses)
                    self._validate_if_due(run)
                    if interrupt.requested and run.stopped is None:
                        run.stopped = "interrupted"
                self._checkpoint_if_due(run)
        return self._finish(run)

    # -- the steps of a fit ----------------------------------------------------------------------------
    def _set_up(self, model: Trainable, dataset: TrainingData) -> _Run:
        """Device, windows, length, validation score, networks, noise and log; the checkpoint resumed from."""
        cfg = self.config
        device = resolve_device(cfg.device)
        plan = model.training_plan()
        for key, least in (("window", 2), ("batch_size", 1), ("steps", 1)):
            if not isinstance(plan[key], (int, np.integer)) or plan[key] < least:
                raise ConfigError(
                    f"{model.name}: the hyper-parameter {key} must be a whole number, at least {least}; "
                    f"got {plan[key]!r}."
                )
        window = min(int(plan["window"]), dataset.longest_segment)
        batch_size = int(cfg.batch_size or plan["batch_size"])
        sampler = WindowSampler(dataset, window, batch_size, device, cfg.seed)
        total = self._total_steps(plan, sampler)
        warmup = total // 3 if cfg.select_after is None else min(int(cfg.select_after), total)
        budget = cfg.time_budget
        if budget is None and cfg.steps is None and cfg.epochs is None:
            budget = parse_duration(plan.get("time_budget"))  # the model's default length comes with a time cap
        scorer = self.score
        if scorer is None and ValidationScore.usable(dataset):
            context = getattr(model, "min_context", 0)  # a model that starts from a context is judged on forecasts too
            scorer = ValidationScore(dataset, n_paths=cfg.validation_paths, seed=cfg.seed, context_length=context)

        model.prepare(device)
        noise = torch.Generator(device=device)
        noise.manual_seed(int(cfg.seed))
        amp = bool(cfg.amp and device.type == "cuda")
        ctx = StepContext(device=device, noise=noise, amp=amp)
        meta = {
            "model": model.checkpoint_meta(),
            "data_fingerprint": dataset.fingerprint,
            "window": window,
            "batch_size": batch_size,
        }
        state, best = TrainingState(), None
        if cfg.resume:
            state, best = load_checkpoint(cfg.out_dir, model, ctx, sampler.rng, meta)
        log = TrainingLog(cfg.log_file, append=cfg.resume)
        log.write(
            event="resume" if cfg.resume else "start",
            step=state.step,
            total_steps=total,
            warmup_steps=warmup,
            device=str(device),
            amp=amp,
            window=window,
            batch_size=batch_size,
            config=cfg.to_dict(),
            model=meta["model"],
        )
        return _Run(
            model=model,
            ctx=ctx,
            sampler=sampler,
            scorer=scorer,
            state=state,
            best=best,
            meta=meta,
            log=log,
            total=total,
            warmup=warmup,
            budget=budget,
        )

    def _time_is_up(self, run: _Run) -> bool:
        """Whether the time budget is spent (the elapsed time brought up to date)."""
        run.clock()
        return run.budget is not None and run.state.elapsed >= run.budget

    def _step(self, run: _Run) -> dict[str, float]:
        """One optimisation step on a batch of random windows; its losses, checked and logged."""
        state = run.state
        run.ctx.step = state.step
        losses = run.model.train_step(run.sampler.next(), run.ctx)
        self._guard(losses, state, run.model)
        state.step += 1
        run.last_losses = losses
        if state.step % self.config.log_every == 0 or state.step == 1:
            run.log.write(event="step", step=state.step, elapsed=round(state.elapsed, 3), **losses)
        return losses

    def _validate_if_due(self, run: _Run) -> None:
        """Score the model every ``validate_every`` steps and at the end; keep the best weights; stop early."""
        cfg = self.config
        if run.scorer is None or (run.state.step % cfg.validate_every != 0 and run.state.step != run.total):
            return
        row, improved = self._validate(run.model, run.scorer, run.state, run.log, self._warmup(run))
        run.history.append(row)
        if improved:
            run.best = copy_weights(run.model)
        elif cfg.patience is not None and run.state.bad_validations >= cfg.patience:
            run.stopped = "early stopping"

    def _warmup(self, run: _Run) -> int:
        """The selection warm-up: a third of the steps the run will make, the planned steps or,
        with a time budget, as many as it allows at the pace so far (``select_after`` fixes it)."""
        if self.config.select_after is not None or run.budget is None or run.state.elapsed <= 0:
            return run.warmup
        return min(run.warmup, int(run.state.step * run.budget / run.state.elapsed) // 3)

    def _checkpoint_if_due(self, run: _Run) -> None:
        """A checkpoint every ``checkpoint_every`` steps, at the end, and whenever the run stops."""
        step = run.state.step
        if step % self.config.checkpoint_every == 0 or step == run.total or run.stopped is not None:
            run.clock()
            if self.config.out_dir is not None:
                save_checkpoint(self.config.out_dir, run.model, run.ctx, run.sampler.rng, run.state, run.best, run.meta)

    def _finish(self, run: _Run) -> TrainReport:
        """Put the best weights back, log the stop, and report."""
        from .generator import TrainReport

        if run.best is not None:
            load_weights(run.model, run.best)
        run.clock()
        state, stopped = run.state, run.stopped or "finished"
        run.log.write(
            event="stop",
            step=state.step,
            reason=stopped,
            elapsed=round(state.elapsed, 3),
            best_score=state.best_score,
            best_step=state.best_step,
            **run.last_losses,
        )
        return TrainReport(
            generator=run.model.name,
            seconds=round(state.elapsed, 3),
            device=str(run.ctx.device),
            steps=state.step,
            stopped=stopped,
            best_score=state.best_score,
            best_step=state.best_step,
            history=run.history,
        )

    # -- helpers -------------------------------------------------------------------------------------
    def _total_steps(self, plan: dict, sampler: WindowSampler) -> int:
        if self.config.steps is not None:
            return int(self.config.steps)
        if self.config.epochs is not None:
            return max(1, int(round(self.config.epochs * sampler.steps_per_epoch)))
        return int(plan["steps"])

    def _guard(self, losses: dict[str, float], state: TrainingState, model: Trainable) -> None:
        for key, value in losses.items():
            if not math.isfinite(value) or abs(value) > self.config.max_loss:
                where = "no checkpoint was written yet"
                if state.last_checkpoint is not None and self.config.out_dir is not None:
                    where = (
                        f"the last good checkpoint (step {state.last_checkpoint}) is kept in "
                        f"{Path(self.config.out_dir) / CHECKPOINT_DIR}"
                    )
                problem = "is not finite" if not math.isfinite(value) else f"exceeds max_loss={self.config.max_loss:g}"
                raise TrainingDiverged(
                    f"{model.name}: training diverged at step {state.step + 1}: loss {key!r} = {value!r} {problem}; "
                    f"{where}. Lower the learning rate (a -H lr... hyper-parameter), change the seed, or resume "
                    f"from the checkpoint with --resume."
                )

    def _validate(
        self, model: Trainable, scorer, state: TrainingState, log: TrainingLog, warmup: int
    ) -> tuple[dict, bool]:
        """Score the model; the warm-up's best gives way to the first validation after it."""
        score, distances = scorer(model.sample_scaled)
        past_warmup = state.step >= warmup
        best_in_warmup = state.best_step is not None and state.best_step < warmup
        improved = math.isfinite(score) and (
            state.best_score is None or score < state.best_score or (past_warmup and best_in_warmup)
        )
        if improved:
            state.best_score, state.best_step, state.bad_validations = float(score), state.step, 0
        elif past_warmup:
            state.bad_validations += 1
        row = {
            "step": state.step,
            "validation": score if math.isfinite(score) else None,
            "best": improved,
            **{k: round(v, 6) for k, v in distances.items()},
        }
        log.write(event="validation", **row)
        return row, improved
