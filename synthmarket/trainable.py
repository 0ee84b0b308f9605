"""What the training loop and a model hand each other.

A model honours :class:`Trainable` (its networks, its optimisers, and
``train_step(batch, ctx) -> losses``); the loop (:class:`synthmarket.training.Trainer`)
hands it a :class:`Batch` of real windows (drawn by a :class:`WindowSampler`) and a
:class:`StepContext` with the device, the noise generator and mixed precision.
"""

from __future__ import annotations

import contextlib
import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np
import torch
from torch import nn

if TYPE_CHECKING:
    from .training_data import TrainingData


@dataclass
class Batch:
    """Real training windows: ``x`` (B, L, C) scaled features, ``labels`` (B, L) regimes or None."""

    x: torch.Tensor
    labels: torch.Tensor | None = None


class WindowSampler:
    """Random training windows (B, L, C) and their labels, from a numpy generator (checkpointed).

    A window never spans two training stretches (``TrainingData.window_starts``)."""

    def __init__(self, dataset: TrainingData, window: int, batch_size: int, device, seed: int):
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
    """What :class:`~synthmarket.training.Trainer` needs from a model (``TorchGenerator`` implements it)."""

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

    def sample_scaled(
        self, n: int, labels: np.ndarray | None, rng: np.random.Generator, n_steps: int, context=None
    ) -> np.ndarray:
        """Scaled features (n, n_steps, C) for validation; from the scaled real bars ``context``
        (at least ``min_context`` of them) when the model has a positive ``min_context``."""

    def checkpoint_meta(self) -> dict:
        """JSON describing the model (name, hyper-parameters), checked on resume."""
