"""The public torch base for generator authors; synthmarket's own deep models build on it.

To write a torch generator, subclass :class:`TorchGenerator` and write four methods:

- ``build(n_channels, n_regimes)`` returns the networks by name (they become ``self.nets``);
- ``make_optimizers()`` returns the optimisers over ``self.nets``, by name;
- ``train_step(batch, ctx)`` takes one optimisation step on ``batch.x``, real windows
  (B, L, C) of scaled features, with ``ctx.optimize(name, loss, optimizer)``, draws its
  noise from ``ctx.noise`` and returns the losses as floats;
- ``draw_batch(n, labels, rng, n_steps)`` returns one batch of scaled features
  (n, n_steps, C), every random number drawn from the numpy ``rng`` (:func:`numpy_noise`).

Give the class a ``name``, a docstring and ``hyperparameters`` (a tuple of
:class:`~synthmarket.hyperparameters.HyperParameter`) holding at least ``steps``,
``batch_size`` and ``window`` (:data:`TRAINING_HYPERPARAMETERS`); list in ``sampling_nets``
the networks a saved model keeps. Override ``burn_in()`` when a sample should first run
steps it discards.
The base class trains through :class:`synthmarket.training.Trainer` (device, seeds,
checkpoints, validation, early stopping), saves and loads the weights, and samples in
batches. :class:`AdversarialGenerator` is the GAN recipe of conv1d_cgan and rgan; the
layers, :class:`FactsMatching` and :class:`RegimeChain` are the parts they are made of.
docs/writing-a-generator.md shows a complete example.

(Named ``deep``, not ``torch``: a folder named torch here would be the real torch's double
for any Python started inside ``synthmarket/``.)
"""

from __future__ import annotations

from synthmarket.deep.base import (
    SAMPLE_POSITIONS,
    TRAINING_HYPERPARAMETERS,
    VOLUME_INDEX,
    ContextStart,
    TorchGenerator,
)
from synthmarket.deep.facts_loss import (
    FACTS_DEFAULTS,
    FACTS_HYPERPARAMETERS,
    FactsConfig,
    FactsMatching,
    parse_horizons,
)
from synthmarket.deep.gan import GAN_DEFAULTS, GAN_HYPERPARAMETERS, AdversarialGenerator, ema_update
from synthmarket.deep.heads import PiecewiseLinearShock, VolatilityHead, clamp_passing_gradient
from synthmarket.deep.layers import (
    TIME_CHUNK,
    CausalConv1d,
    DecayingAverages,
    RegimeEmbedding,
    ShockInputs,
    ShockMemory,
    SlowNoise,
    TemporalConvNet,
    VolatilityFeatures,
    decay_logits,
    pad_labels,
    with_regimes,
)
from synthmarket.deep.regime_chain import RegimeChain
from synthmarket.deep.weights import load_module_arrays, module_arrays, numpy_noise
from synthmarket.hyperparameters import Duration, HyperParameter, with_defaults
from synthmarket.trainable import Batch, StepContext

__all__ = [
    # the base classes, and what train_step receives
    "TorchGenerator",
    "AdversarialGenerator",
    "ContextStart",
    "Batch",
    "StepContext",
    "GAN_DEFAULTS",
    "SAMPLE_POSITIONS",
    "VOLUME_INDEX",
    # hyper-parameters
    "HyperParameter",
    "Duration",
    "with_defaults",
    "TRAINING_HYPERPARAMETERS",
    "GAN_HYPERPARAMETERS",
    "FACTS_HYPERPARAMETERS",
    # the stylized-facts loss
    "FactsMatching",
    "FactsConfig",
    "FACTS_DEFAULTS",
    "parse_horizons",
    # layers
    "CausalConv1d",
    "TemporalConvNet",
    "DecayingAverages",
    "ShockMemory",
    "SlowNoise",
    "RegimeEmbedding",
    "ShockInputs",
    "VolatilityFeatures",
    "VolatilityHead",
    "PiecewiseLinearShock",
    "TIME_CHUNK",
    "clamp_passing_gradient",
    "decay_logits",
    "pad_labels",
    "with_regimes",
    # regimes, weights and noise
    "RegimeChain",
    "module_arrays",
    "load_module_arrays",
    "numpy_noise",
    "ema_update",
]
