"""The base class of torch generators: :class:`TorchGenerator`.

A subclass builds its networks, optimisers and one training step; the base class does the
rest: training through :class:`synthmarket.training.Trainer`, the stylized-facts term
(:class:`~synthmarket.deep.FactsMatching`) when ``facts_weight`` > 0, a
:class:`~synthmarket.deep.RegimeChain` for conditional models, saving only the networks
sampling needs, and sampling in ``torch.inference_mode`` in batches whose size keeps
memory flat, with all noise drawn from the numpy generator it is given.
"""

from __future__ import annotations

import abc
import contextlib
import hashlib
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from synthmarket.bars import PRICE_CHANNELS
from synthmarket.deep.facts_loss import FactsConfig, FactsMatching
from synthmarket.deep.regime_chain import RegimeChain
from synthmarket.deep.weights import load_module_arrays, module_arrays
from synthmarket.errors import ConfigError
from synthmarket.generator import Generator, TrainReport
from synthmarket.hyperparameters import Duration, HyperParameter
from synthmarket.train_config import TrainConfig
from synthmarket.trainable import Batch, StepContext
from synthmarket.training import Trainer
from synthmarket.training_data import TrainingData

#: How many (path x step) positions one sampling batch holds; bounds sampling memory.
SAMPLE_POSITIONS = 1 << 18
#: Where the volume channel sits among the features, when the data have volume.
VOLUME_INDEX = len(PRICE_CHANNELS)


@dataclass(frozen=True)
class ContextStart:
    """What :meth:`TorchGenerator.draw_batch` receives as ``start``: its model's
    :meth:`~TorchGenerator.context_start` of the contexts (``value``: a tensor, or a tuple of
    them, with one row per path), and the regime each context was read in (``regime``: (n,),
    or None without regimes), which the burn-in keeps (``pad_labels(..., fill=regime)``)."""

    value: Any
    regime: torch.Tensor | None

    def rows(self, index: torch.Tensor) -> ContextStart:
        """The start of paths whose contexts are ``index``, from the start of the contexts."""
        return ContextStart(_select(self.value, index), None if self.regime is None else _select(self.regime, index))


def _select(value: Any, index: torch.Tensor) -> Any:
    """Rows ``index`` of every tensor in ``value`` (a tensor or a tuple of them)."""
    if isinstance(value, tuple):
        return tuple(_select(v, index) for v in value)
    return value[index.to(value.device)]


#: The training length every torch generator declares (each may give other defaults with
#: :func:`~synthmarket.hyperparameters.with_defaults`).
TRAINING_HYPERPARAMETERS: tuple[HyperParameter, ...] = (
    HyperParameter("steps", int, 3000, "default number of training steps"),
    HyperParameter(
        "time_budget", Duration, "9.5m", "caps the default length (not a given --steps/--epochs); e.g. 90s, 5m"
    ),
    HyperParameter("batch_size", int, 32, "training windows per step"),
    HyperParameter("window", int, 128, "length of a training window in bars"),
)


class TorchGenerator(Generator):
    """A :class:`Generator` made of torch networks and trained by :class:`~synthmarket.training.Trainer`.

    Subclasses implement :meth:`build` (the networks, which become ``self.nets``), :meth:`make_optimizers`,
    :meth:`train_step` and :meth:`draw_batch`, and list in ``sampling_nets`` the networks a
    saved model needs. Hyper-parameters ``steps``, ``batch_size`` and ``window`` set the
    default training length, batch size and training window; ``time_budget`` caps the
    default length (it does not apply when a length is given).
    """

    conditional = True
    sampling_nets: tuple[str, ...] = ("generator",)
    #: Networks a saved model keeps besides ``sampling_nets`` to read a context (a model saved
    #: without them samples unconditionally).
    context_nets: tuple[str, ...] = ()
    #: (path x step) positions per sampling batch; recurrent models like bigger batches.
    sample_positions: int = SAMPLE_POSITIONS
    #: At most this many paths per sampling batch (None: no cap); a GRU runs fastest on a few hundred.
    sample_batch_paths: int | None = None
    #: The stylized-facts term of the loss (set by :meth:`learn_targets` when ``facts_weight`` > 0).
    facts: FactsMatching | None = None

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "generate" in cls.__dict__ and "draw_batch" not in cls.__dict__:
            cls.draw_batch = cls.__dict__["generate"]  # subclasses written before the hook was renamed
        if "warmup" in cls.__dict__ and "burn_in" not in cls.__dict__ and callable(cls.__dict__["warmup"]):
            cls.burn_in = cls.__dict__["warmup"]

    def __init__(self, **hparams: Any) -> None:
        super().__init__(**hparams)
        self.nets: dict[str, nn.Module] = {}
        self.optimizers: dict[str, torch.optim.Optimizer] = {}
        self.chain: RegimeChain | None = None
        self.n_regimes = 0
        self.n_channels = 0
        self.device = torch.device("cpu")
        self._start_cache: tuple | None = None  # (context digest and regime, context_start's result)
        #: ``callback(step, losses)`` functions the training loop calls after every step.
        self.callbacks: list = []

    # -- what subclasses implement --------------------------------------------------------
    @abc.abstractmethod
    def build(self, n_channels: int, n_regimes: int) -> dict[str, nn.Module]:
        """The networks, by name (called under a fixed torch seed)."""

    @abc.abstractmethod
    def make_optimizers(self) -> dict[str, torch.optim.Optimizer]:
        """Optimisers over ``self.nets`` (created after the nets moved to the device)."""

    @abc.abstractmethod
    def train_step(self, batch: Batch, ctx: StepContext) -> dict[str, float]:
        """One optimisation step on a batch of real windows; returns the losses."""

    @abc.abstractmethod
    def draw_batch(self, n: int, labels: torch.Tensor | None, rng: np.random.Generator, n_steps: int) -> torch.Tensor:
        """One batch of scaled features (n, n_steps, C); ``labels`` is None or (1 or n, n_steps).
        Runs in inference mode; :meth:`_sample_scaled` calls it batch by batch.

        Draw every random number from ``rng`` (e.g. with :func:`~synthmarket.deep.numpy_noise`).
        A context-aware model (``uses_context``) also takes ``start``, a :class:`ContextStart`,
        when paths continue a context."""

    # -- what context-aware subclasses implement ----------------------------------------------
    def context_start(self, context: torch.Tensor, labels: torch.Tensor | None) -> Any:
        """What :meth:`draw_batch` needs (its ``start.value``) to continue each of the scaled
        contexts ``context`` (B, L, C), the last :attr:`min_context` bars before the paths: a
        tensor, or a tuple of them, whose first axis has length B. ``labels`` (B, L) are
        their regimes for a conditional model. Only for ``uses_context`` models."""
        raise NotImplementedError(f"{type(self).__name__} does not start from a context")

    @property
    def min_context(self) -> int:
        """Bars of context a context-aware model reads: its burn-in, which the context replaces."""
        return self.burn_in() if self.uses_context else 0

    # -- Trainer protocol -------------------------------------------------------------------
    def training_plan(self) -> dict[str, Any]:
        return {
            "steps": self.hparams["steps"],
            "batch_size": self.hparams["batch_size"],
            "window": self.hparams["window"],
            "time_budget": self.hparams.get("time_budget"),
        }

    def training_modules(self) -> dict[str, nn.Module]:
        return self.nets

    def training_optimizers(self) -> dict[str, torch.optim.Optimizer]:
        return self.optimizers

    def prepare(self, device: torch.device) -> None:
        self.device = device
        for net in self.nets.values():
            net.to(device)
        with self.hyperparameters_at_work():
            self.optimizers = self.make_optimizers()

    @contextlib.contextmanager
    def hyperparameters_at_work(self):
        """Where hyper-parameters become networks and optimisers, torch's refusal of a value
        (a negative width, a negative learning rate) is the user's mistake: say which values."""
        try:
            yield
        except (RuntimeError, ValueError) as exc:
            given = (
                ", ".join(f"{k}={v!r}" for k, v in self.hparams.items() if self.defaults.get(k) != v) or "the defaults"
            )
            raise ConfigError(
                f"{self.name}: these hyper-parameters do not make a model ({given}): {exc}. "
                f"`synthmarket plugins` lists each generator's defaults."
            ) from None

    def checkpoint_meta(self) -> dict:
        return {"generator": self.name, "hyperparameters": self.hparams}

    def sample_scaled(
        self, n: int, labels: np.ndarray | None, rng: np.random.Generator, n_steps: int, context=None
    ) -> np.ndarray:
        """The Trainer's validation samples through the plugin hook, :meth:`_sample_scaled`; from
        scaled contexts (B, L, C), n paths from each (the weights have changed since the last
        call, so no start is reused)."""
        self._start_cache = None
        if context is not None:
            context = self.scaler.inverse_transform(np.asarray(context, dtype=np.float64))
        return self._sample_scaled(n, labels, rng, n_steps, context=context)

    # -- Generator methods ----------------------------------------------------------------------
    def _build_all(self, n_channels: int, n_regimes: int, seed: int) -> None:
        self.n_regimes, self.n_channels = n_regimes, n_channels
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            self.nets = self.build(n_channels, n_regimes)

    def _fit(self, dataset: TrainingData, config: Any) -> TrainReport:
        config = TrainConfig.from_any(config)
        n_regimes = 0 if dataset.scheme is None else len(dataset.scheme.names)
        with self.hyperparameters_at_work():
            self._build_all(dataset.n_channels, n_regimes, config.seed)
            self.chain = RegimeChain.fit(dataset.train_labels, n_regimes) if n_regimes else None
            self.learn_targets(dataset)
        report = Trainer(config, callbacks=self.callbacks).fit(self, dataset)
        self.prepare_for_sampling()
        return report

    def learn_targets(self, dataset: TrainingData) -> None:
        """What a model derives from the training data before training: the targets of the
        stylized-facts term, when the model has a positive ``facts_weight``, with the options
        its ``facts_*`` hyper-parameters set (:meth:`FactsConfig.from_hparams`) and, with
        ``facts_volume`` and data with volume, the correlation of |r| with the volume channel."""
        self.facts = None
        if self.hparams.get("facts_weight", 0) > 0:
            window = min(self.hparams["window"], dataset.longest_segment)
            with_volume = self.hparams.get("facts_volume", False) and dataset.n_channels > VOLUME_INDEX
            self.facts = FactsMatching(
                dataset.train[:, 0],
                FactsConfig.from_hparams(self.hparams, window),
                segments=dataset.train_segments,
                labels=dataset.train_labels,
                n_regimes=self.n_regimes,
                volume=dataset.train[:, VOLUME_INDEX] if with_volume else None,
            )

    def prepare_for_sampling(self) -> None:
        """Move the networks to the CPU, in eval mode (samples are then the same on every machine)."""
        self.device = torch.device("cpu")
        for net in self.nets.values():
            net.to(self.device).eval()
        self.optimizers = {}
        self._start_cache = None  # starts computed with other weights

    def _saved_nets(self) -> tuple[str, ...]:
        return (*self.sampling_nets, *self.context_nets)

    def _state(self) -> dict[str, np.ndarray]:
        state = module_arrays({k: self.nets[k] for k in self._saved_nets()})
        if self.chain is not None:
            state["regime_chain"] = self.chain.to_array()
        return state

    def _load_state(self, state: dict[str, np.ndarray]) -> None:
        n_regimes = 0 if self.scheme is None else len(self.scheme.names)
        self._build_all(len(self.scaler.channels), n_regimes, 0)
        saved = {k.split(".", 1)[0] for k in state}
        if not set(self.context_nets) <= saved:  # saved before this model read contexts
            self.uses_context = False
        nets = [k for k in self._saved_nets() if k in self.sampling_nets or self.uses_context]
        load_module_arrays({k: self.nets[k] for k in nets}, state)
        known = {k for k in state if k.split(".", 1)[0] in nets}
        extra = sorted(set(state) - known - {"regime_chain"})
        if extra:
            raise ValueError(f"unexpected tensors {extra[:5]}")
        if n_regimes:
            if "regime_chain" not in state:
                raise ValueError("the weights of a conditional model lack 'regime_chain'")
            self.chain = RegimeChain.from_array(state["regime_chain"])
            if self.chain.initial.shape[0] != n_regimes:
                raise ValueError("the regime chain does not match the model's regimes")
        self.prepare_for_sampling()

    def _sample_scaled(
        self, n: int, labels: np.ndarray | None, rng: np.random.Generator, n_steps: int, context=None
    ) -> np.ndarray:
        """``n`` paths in batches of :meth:`draw_batch` (in parallel on a CPU); flat memory.

        With a ``context`` (unscaled features (T, C), T >= :attr:`min_context`), every path
        starts from it: the context is read in its own last regime (each path gets its
        context's row of :meth:`context_start`, and the burn-in keeps that regime,
        :attr:`ContextStart.regime`), then the paths take the regimes asked for, or a chain goes
        on from the context's. With several contexts (B, T, C), ``n`` paths start from each,
        context by context: (B * n, n_steps, C)."""
        contexts = None if context is None else (context if np.ndim(context) == 3 else np.asarray(context)[None])
        total = n * (1 if contexts is None else len(contexts))
        per_batch = max(1, self.sample_positions // (n_steps + self.burn_in()))
        if self.sample_batch_paths:
            per_batch = min(per_batch, self.sample_batch_paths)
        out = np.empty((total, n_steps, self.n_channels), dtype=np.float32)
        for net in self.nets.values():
            net.eval()
        starts = range(0, total, per_batch)
        fixed = None if labels is None else torch.as_tensor(np.asarray(labels, dtype=np.int64))[None, :]
        regimes = None if contexts is None else self._context_regimes(contexts)
        start = None if contexts is None else self._context_start(contexts, regimes)

        def run(lo: int, batch_rng: np.random.Generator) -> None:
            m = min(per_batch, total - lo)
            of_context = np.arange(lo, lo + m) // n
            first = None if regimes is None else regimes[of_context]  # a chain goes on from each context's regime
            if fixed is not None:
                batch_labels = fixed.to(self.device)
            elif self.chain is not None:
                batch_labels = torch.as_tensor(self.chain.sample(m, n_steps, batch_rng, first=first)).to(self.device)
            else:
                batch_labels = None
            extra = {} if start is None else {"start": start.rows(torch.as_tensor(of_context))}
            with torch.inference_mode():
                out[lo : lo + m] = self.draw_batch(m, batch_labels, batch_rng, n_steps, **extra).float().cpu().numpy()

        # Each batch draws from its own child generator, so the paths do not depend on how
        # many batches run at once; on a CPU every batch runs on one thread, the batches in
        # parallel on all of them (the kernels release the GIL). That suits the small
        # recurrent networks far better than splitting each small matrix product across
        # threads, and it keeps the paths bit for bit the same whatever the number of
        # threads (a kernel split across threads may sum in another order). A new thread
        # starts with OpenMP's and MKL's default count (the machine's cores) until torch
        # first sets it there, so the pool's initializer pins each worker to one thread
        # before its first matrix product. A sample of one batch is small, so it loses
        # little by running on one thread.
        rngs = rng.spawn(len(starts))
        if self.device.type != "cpu":
            for lo, batch_rng in zip(starts, rngs):
                run(lo, batch_rng)
            return out
        threads = torch.get_num_threads()
        torch.set_num_threads(1)
        try:
            with ThreadPoolExecutor(
                min(threads, len(starts)), initializer=torch.set_num_threads, initargs=(1,)
            ) as pool:
                list(pool.map(run, starts, rngs))
        finally:
            torch.set_num_threads(threads)
        return out

    def burn_in(self) -> int:
        """Steps a sample burns in before its first bar (so it starts mid-stream, like real data)."""
        return 0

    def _context_regimes(self, contexts: np.ndarray) -> np.ndarray | None:
        """The regime of each context's last bar, where the chain starts (None without regimes);
        for regimes read from a data column, which a context does not carry, the most common one."""
        if self.chain is None:
            return None
        lasts = [self.scheme.last_label(context[:, 0]) for context in contexts]
        common = int(np.argmax(self.chain.initial))
        return np.array([common if last is None else last for last in lasts], dtype=np.int64)

    def _context_start(self, contexts: np.ndarray, regimes: np.ndarray | None) -> ContextStart | None:
        """:meth:`context_start` of the contexts' (B, T, C) last :attr:`min_context` bars, each read
        in its regime (computed once per set of contexts; None without a burn-in to fill)."""
        if self.min_context == 0:
            return None
        tail = np.ascontiguousarray(contexts[:, contexts.shape[1] - self.min_context :], dtype=np.float64)
        key = (hashlib.sha256(tail.tobytes()).hexdigest(), None if regimes is None else regimes.tobytes())
        cached = self._start_cache
        if cached is not None and cached[0] == key:
            return cached[1]
        scaled = torch.as_tensor(self.scaler.transform(tail), dtype=torch.float32, device=self.device)
        labels = None
        if regimes is not None:
            labels = torch.as_tensor(regimes, device=self.device)[:, None].expand(-1, tail.shape[1])
        with torch.inference_mode():
            value = self.context_start(scaled, labels)
        start = ContextStart(value, None if regimes is None else torch.as_tensor(regimes, device=self.device))
        self._start_cache = (key, start)
        return start
