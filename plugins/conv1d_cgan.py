"""Conditional Conv1D GAN: dilated causal convolutions over time (Quant GANs' TCN, conditional).

The generator is fully convolutional over time, so it makes paths of any length in one
pass (or in exact causal time chunks for very long ones). At every step t it reads latent
noise ``z_t``, yesterday's return shock ``eps_{t-1}`` (and its size), and the embedding of
step t's regime. Its output layer reads the TCN's hidden state, a few learned
exponentially decaying averages of past shocks (an EGARCH-like volatility memory) and the
regime, and sets a volatility and a drift: the return is ``vol_t * eps_t + drift_t`` with a
fresh shock of a learned shape (a standardised piecewise-linear map of a normal; the
stochastic-volatility form trained better here than a plain output). The log volatility
also moves with a few slow latent factors (noise averaged over weeks to months), so
volatility has a persistent life of its own besides its response to past shocks. Gap,
wicks and volume get their own noise, scaled and shifted the same way. Regime labels are
embedded per step, so a schedule may switch the regime mid-path. Its facts term also asks
for the data's variance ratios of 5-, 20- and 60-day sums (the days partly revert) and
for how much its volatility moves from week to week within a month (``facts_block_spread``).

The discriminator is a TCN too; it reads the features plus causal averages of |return|
and gives a verdict for every time step (a dense training signal). Training uses the
shared recipe of :class:`synthmarket.deep.AdversarialGenerator`. A sample from a context fills
the burn-in with the shocks filtered from it; ``context_window=64`` also teaches this in
training (the 64 bars before each window filtered into the burn-in), at about half the
training steps a minute holds, so the default trains without.
"""

from __future__ import annotations

import torch
from torch import nn

from synthmarket.deep import (
    GAN_HYPERPARAMETERS,
    TRAINING_HYPERPARAMETERS,
    AdversarialGenerator,
    HyperParameter,
    RegimeEmbedding,
    ShockInputs,
    ShockMemory,
    SlowNoise,
    TemporalConvNet,
    VolatilityFeatures,
    VolatilityHead,
    with_defaults,
    with_regimes,
)
from synthmarket.errors import ConfigError


def parse_dilations(text: str | list | tuple) -> tuple[int, ...]:
    """``"1,3,9,27"`` (or a list) -> (1, 3, 9, 27); every dilation a positive integer.

    (The ``dilations`` hyper-parameters are already lists; this checks them, and reads text too.)"""
    items = text.split(",") if isinstance(text, str) else list(text)
    try:
        out = tuple(int(str(d).strip()) for d in items if str(d).strip())
    except ValueError:
        raise ConfigError(f"Dilations are comma-separated whole numbers like '1,3,9,27'; got {text!r}.") from None
    if not out or min(out) < 1:
        raise ConfigError(f"Dilations must be positive whole numbers; got {text!r}.")
    return out


class TCNGenerator(nn.Module):
    """Noise (B, burn_in + S, noise_dim) and labels -> scaled features (B, S, C)."""

    def __init__(
        self,
        n_channels: int,
        n_regimes: int,
        *,
        z_dim: int,
        hidden: int,
        dilations: tuple[int, ...],
        kernel: int,
        embed_dim: int,
        memory: int,
        vol_factors: int = 0,
        tail_floor: float = 0.0,
        shock_knots: int = 0,
        shock_bound: float = 0.0,
    ) -> None:
        super().__init__()
        self.inputs = ShockInputs(z_dim, n_channels - 1, n_regimes, embed_dim, bound=shock_bound)
        self.vol_factors = vol_factors
        self.noise_dim = self.inputs.noise_dim + vol_factors
        self.tcn = TemporalConvNet(self.inputs.core_dim, hidden, dilations, kernel)
        self.memory = ShockMemory(self.inputs.core_dim, memory, self.tcn.receptive_field) if memory else None
        self.slow = SlowNoise(vol_factors, self.tcn.receptive_field) if vol_factors else None
        self.head = VolatilityHead(
            hidden + memory + self.inputs.embed.dim,
            n_channels,
            vol_factors=vol_factors,
            tail_floor=tail_floor,
            shock_knots=shock_knots,
        )
        self.burn_in = self.tcn.receptive_field - 1

    def _inputs(self, noise: torch.Tensor, labels: torch.Tensor | None, burn_in: int):
        """ShockInputs' (core, eps, eta, regimes) and the kept steps' slow factors (or None)."""
        noise, white = noise.split([self.inputs.noise_dim, self.vol_factors], dim=-1)
        factors = None if self.slow is None else self.slow(white)[:, burn_in:]
        return (*self.inputs(noise, labels, burn_in), factors)

    def head_inputs(self, noise: torch.Tensor, labels: torch.Tensor | None, burn_in: int):
        """What the output layer reads at the steps after ``burn_in``: (h, eps, eta, factors)."""
        core, eps, eta, regimes, factors = self._inputs(noise, labels, burn_in)
        h = self.tcn(core.transpose(1, 2))[..., burn_in:].transpose(1, 2)
        if self.memory is not None:
            h = torch.cat([h, self.memory(core)[:, burn_in:]], dim=-1)
        return with_regimes(h, regimes), eps, eta, factors

    def forward(self, noise: torch.Tensor, labels: torch.Tensor | None) -> torch.Tensor:
        return self.head(*self.head_inputs(noise, labels, self.burn_in))

    def rollout(self, noise: torch.Tensor, labels: torch.Tensor | None) -> torch.Tensor:
        """As ``forward``, for sampling: faster, with flat memory for any length.

        The paths are laid end to end in one long sequence: each path's burn-in is the
        receptive field minus one, so every kept step still sees only its own path, and the
        result is the same as ``forward``'s (convolutions over one long sequence run about
        twice as fast on a CPU as over many short ones). The sequence is convolved in exact
        causal time chunks.
        """
        core, eps, eta, regimes, factors = self._inputs(noise, labels, self.burn_in)
        b, t, d = core.shape
        folded = core.reshape(1, b * t, d)
        h = self.tcn.stream(folded.transpose(1, 2)).transpose(1, 2)
        if self.memory is not None:
            h = torch.cat([h, self.memory(folded)], dim=-1)
        h = h.reshape(b, t, -1)[:, self.burn_in :]
        return self.head(with_regimes(h, regimes), eps, eta, factors)


class TCNDiscriminator(nn.Module):
    """Features (B, L, C) and labels -> one logit per time step (B, L)."""

    def __init__(
        self, n_channels: int, n_regimes: int, *, hidden: int, dilations: tuple[int, ...], kernel: int, embed_dim: int
    ) -> None:
        super().__init__()
        self.embed = RegimeEmbedding(n_regimes, embed_dim)
        self.features = VolatilityFeatures()
        self.tcn = TemporalConvNet(n_channels + self.features.n_features + self.embed.dim, hidden, dilations, kernel)
        self.out = nn.Conv1d(hidden, 1, 1)

    def forward(self, x: torch.Tensor, labels: torch.Tensor | None) -> torch.Tensor:
        inputs = with_regimes(self.features(x), self.embed(labels, x.shape[0], x.shape[1]))
        return self.out(self.tcn(inputs.transpose(1, 2))).squeeze(1)


class Conv1DCGAN(AdversarialGenerator):
    """Conditional Conv1D GAN: dilated causal convolutions over time, stochastic-volatility output."""

    name = "conv1d_cgan"
    conditional = True
    hyperparameters = (
        *with_defaults(TRAINING_HYPERPARAMETERS, window=256),
        HyperParameter("hidden", int, 16, "channels of the generator's TCN"),
        HyperParameter("dilations", list[int], [1, 3, 9, 27, 81], "dilations of the generator's TCN layers"),
        HyperParameter("kernel", int, 3, "kernel size of every TCN layer"),
        HyperParameter("z_dim", int, 3, "latent noise per step"),
        HyperParameter("embed_dim", int, 4, "size of the regime embedding"),
        HyperParameter("memory", int, 4, "decaying averages of past shocks the output layer reads"),
        HyperParameter("vol_factors", int, 2, "slow latent factors of the log volatility"),
        HyperParameter("d_hidden", int, 32, "channels of the discriminator's TCN"),
        HyperParameter("d_dilations", list[int], [1, 3, 9, 27, 81], "dilations of the discriminator's TCN layers"),
        *with_defaults(
            GAN_HYPERPARAMETERS,
            lr_g=2e-3,
            lr_d=2e-3,
            tail_floor=-0.5,
            shock_knots=12,
            facts_weight=1.0,
            facts_acf_lags=240,
            facts_unbiased=True,
            facts_window_spread=1.0,
            facts_horizons=[5, 20, 60],
            facts_block_spread=10.0,
        ),
    )
    added_later = {
        "context_window": 0,
        "shock_knots": 0,
        "shock_bound": 0.0,
        "forecast_weight": 0.0,
        "likelihood_weight": 0.0,
        "vol_factors": 0,
        "tail_floor": 0.0,
        "facts_acf_lags": 0,
        "facts_quantiles": False,
        "facts_unbiased": False,
        "facts_window_spread": 0.0,
        "facts_horizons": [],
        "facts_block_spread": 0.0,
    }

    def build_pair(self, n_channels: int, n_regimes: int) -> tuple[nn.Module, nn.Module]:
        h = self.hparams
        generator = TCNGenerator(
            n_channels,
            n_regimes,
            z_dim=int(h["z_dim"]),
            hidden=int(h["hidden"]),
            dilations=parse_dilations(h["dilations"]),
            kernel=int(h["kernel"]),
            embed_dim=int(h["embed_dim"]),
            memory=int(h["memory"]),
            vol_factors=int(h["vol_factors"]),
            tail_floor=float(h["tail_floor"]),
            shock_knots=int(h["shock_knots"]),
            shock_bound=float(h["shock_bound"]),
        )
        discriminator = TCNDiscriminator(
            n_channels,
            n_regimes,
            hidden=int(h["d_hidden"]),
            dilations=parse_dilations(h["d_dilations"]),
            kernel=int(h["kernel"]),
            embed_dim=int(h["embed_dim"]),
        )
        return generator, discriminator


__all__ = ["Conv1DCGAN", "TCNDiscriminator", "TCNGenerator", "parse_dilations"]
