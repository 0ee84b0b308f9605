"""Recurrent GAN (RGAN; RCGAN when trained with regimes): GRU generator and GRU discriminator.

After Esteban, Hyland and Rätsch (2017): a recurrent generator driven by fresh noise at
every step, and a recurrent discriminator that gives a verdict at every step. Here the
generator reads at step t the latent noise ``z_t``, yesterday's return shock and the
embedded regime of step t; its GRU state, a few decaying averages of past shocks and the
regime set the volatility and drift of today's return (``vol_t * eps_t + drift_t``) and the
scale and mean of the gap, wicks and volume (the output layer of the Conv1D GAN). All noise
is drawn up front, so one ``nn.GRU`` call runs over every step; long paths roll forward in
time chunks carrying the GRU state, so any length comes out natively. The discriminator
reads the features plus causal averages of |return|. Training is the shared recipe of
:class:`synthmarket.deep.AdversarialGenerator`, with each training window's 100 bars before it
filtered into the burn-in (``context_window``), as a sample from a context is.
"""

from __future__ import annotations

import torch
from torch import nn

from synthmarket.deep import (
    GAN_HYPERPARAMETERS,
    TIME_CHUNK,
    TRAINING_HYPERPARAMETERS,
    AdversarialGenerator,
    HyperParameter,
    RegimeEmbedding,
    ShockInputs,
    ShockMemory,
    VolatilityFeatures,
    VolatilityHead,
    with_defaults,
    with_regimes,
)


class GRUGenerator(nn.Module):
    """Noise (B, burn_in + S, noise_dim) and labels -> scaled features (B, S, C)."""

    def __init__(
        self,
        n_channels: int,
        n_regimes: int,
        *,
        z_dim: int,
        hidden: int,
        layers: int,
        embed_dim: int,
        burn_in: int,
        memory: int = 0,
        tail_floor: float = 0.0,
        shock_knots: int = 0,
        shock_bound: float = 0.0,
    ) -> None:
        super().__init__()
        self.inputs = ShockInputs(z_dim, n_channels - 1, n_regimes, embed_dim, bound=shock_bound)
        self.noise_dim = self.inputs.noise_dim
        self.gru = nn.GRU(self.inputs.core_dim, hidden, num_layers=layers, batch_first=True)
        self.memory = ShockMemory(self.inputs.core_dim, memory, burn_in + 1) if memory else None
        self.head = VolatilityHead(
            hidden + memory + self.inputs.embed.dim, n_channels, tail_floor=tail_floor, shock_knots=shock_knots
        )
        self.burn_in = burn_in

    def _output(self, h: torch.Tensor, core: torch.Tensor, burn_in: int, regimes) -> torch.Tensor:
        """What the output layer reads at the steps after ``burn_in``, from the GRU's states ``h``."""
        h = h[:, burn_in:]
        if self.memory is not None:
            h = torch.cat([h, self.memory(core)[:, burn_in:]], dim=-1)
        return with_regimes(h, regimes)

    def head_inputs(self, noise: torch.Tensor, labels: torch.Tensor | None, burn_in: int):
        """What the output layer reads at the steps after ``burn_in``: (h, eps, eta, factors=None)."""
        core, eps, eta, regimes = self.inputs(noise, labels, burn_in)
        h, _ = self.gru(core)
        return self._output(h, core, burn_in, regimes), eps, eta, None

    def forward(self, noise: torch.Tensor, labels: torch.Tensor | None) -> torch.Tensor:
        return self.head(*self.head_inputs(noise, labels, self.burn_in))

    def rollout(self, noise: torch.Tensor, labels: torch.Tensor | None) -> torch.Tensor:
        """As ``forward``, for sampling: rolling the GRU state across time chunks (flat memory for long paths)."""
        core, eps, eta, regimes = self.inputs(noise, labels, self.burn_in)
        state, parts = None, []
        for lo in range(0, core.shape[1], TIME_CHUNK):
            h, state = self.gru(core[:, lo : lo + TIME_CHUNK], state)
            parts.append(h)
        return self.head(self._output(torch.cat(parts, dim=1), core, self.burn_in, regimes), eps, eta)


class GRUDiscriminator(nn.Module):
    """Features (B, L, C) and labels -> one logit per time step (B, L)."""

    def __init__(self, n_channels: int, n_regimes: int, *, hidden: int, layers: int, embed_dim: int) -> None:
        super().__init__()
        self.embed = RegimeEmbedding(n_regimes, embed_dim)
        self.features = VolatilityFeatures()
        self.gru = nn.GRU(
            n_channels + self.features.n_features + self.embed.dim, hidden, num_layers=layers, batch_first=True
        )
        self.out = nn.Linear(hidden, 1)

    def forward(self, x: torch.Tensor, labels: torch.Tensor | None) -> torch.Tensor:
        inputs = with_regimes(self.features(x), self.embed(labels, x.shape[0], x.shape[1]))
        h, _ = self.gru(inputs)
        return self.out(h).squeeze(-1)


class RGAN(AdversarialGenerator):
    """Recurrent (conditional) GAN, RGAN/RCGAN: GRU generator and per-step GRU discriminator."""

    name = "rgan"
    conditional = True
    sample_positions = 1 << 20
    sample_batch_paths = 256
    hyperparameters = (
        *with_defaults(TRAINING_HYPERPARAMETERS, window=128),
        HyperParameter("hidden", int, 24, "GRU units of the generator"),
        HyperParameter("layers", int, 1, "GRU layers of the generator"),
        HyperParameter("z_dim", int, 3, "latent noise per step"),
        HyperParameter("embed_dim", int, 4, "size of the regime embedding"),
        HyperParameter("burn_in", int, 100, "steps a sample runs before its first bar (was: warmup)"),
        HyperParameter("memory", int, 4, "decaying averages of past shocks the output layer reads"),
        HyperParameter("d_hidden", int, 32, "GRU units of the discriminator"),
        HyperParameter("d_layers", int, 1, "GRU layers of the discriminator"),
        *with_defaults(
            GAN_HYPERPARAMETERS,
            lr_g=5e-4,
            lr_d=5e-4,
            r1_gamma=10.0,
            facts_weight=3.0,
            facts_quantiles=False,
            context_window=100,
        ),
    )
    renamed = {"warmup": "burn_in"}
    added_later = {"context_window": 0, "shock_bound": 0.0, "forecast_weight": 0.0, "likelihood_weight": 0.0}

    def build_pair(self, n_channels: int, n_regimes: int) -> tuple[nn.Module, nn.Module]:
        h = self.hparams
        generator = GRUGenerator(
            n_channels,
            n_regimes,
            z_dim=int(h["z_dim"]),
            hidden=int(h["hidden"]),
            layers=int(h["layers"]),
            embed_dim=int(h["embed_dim"]),
            burn_in=int(h["burn_in"]),
            memory=int(h["memory"]),
            tail_floor=float(h["tail_floor"]),
            shock_knots=int(h["shock_knots"]),
            shock_bound=float(h["shock_bound"]),
        )
        discriminator = GRUDiscriminator(
            n_channels,
            n_regimes,
            hidden=int(h["d_hidden"]),
            layers=int(h["d_layers"]),
            embed_dim=int(h["embed_dim"]),
        )
        return generator, discriminator


__all__ = ["GRUDiscriminator", "GRUGenerator", "RGAN"]
