"""Building blocks over time: causal convolutions, decaying averages, regime inputs, critic features.

Tensors are channel-last, (batch, time, channels), unless a class says otherwise. Every
layer here is causal: its output at step t reads inputs up to step t only, so a network
built from them generates paths of any length by rolling forward (:data:`TIME_CHUNK`
bounds one call's stretch of time when sampling very long paths).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from synthmarket.errors import ConfigError

#: Longest stretch of time one network call covers when sampling very long paths.
TIME_CHUNK = 1 << 16


class CausalConv1d(nn.Conv1d):
    """A 1-D convolution whose output at t sees inputs t - (kernel-1)*dilation .. t only."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, dilation: int = 1) -> None:
        super().__init__(in_channels, out_channels, kernel_size, dilation=dilation)
        self.left_pad = (kernel_size - 1) * dilation

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(F.pad(x, (self.left_pad, 0)))


class TemporalConvNet(nn.Module):
    """Dilated causal convolutions with residual connections (Quant GANs' TCN, slimmed).

    Input and output are channel-first, (batch, channels, time). Each block is one causal
    convolution, a leaky ReLU and a residual connection; the receptive field is
    ``1 + (kernel - 1) * sum(dilations)``.
    """

    def __init__(self, in_channels: int, hidden: int, dilations: tuple[int, ...], kernel_size: int = 2) -> None:
        super().__init__()
        self.blocks = nn.ModuleList()
        self.skips = nn.ModuleList()
        channels = in_channels
        for dilation in dilations:
            self.blocks.append(CausalConv1d(channels, hidden, kernel_size, dilation))
            self.skips.append(nn.Conv1d(channels, hidden, 1) if channels != hidden else nn.Identity())
            channels = hidden
        self.receptive_field = 1 + (kernel_size - 1) * sum(dilations)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for conv, skip in zip(self.blocks, self.skips):
            x = F.leaky_relu(conv(x), 0.2) + skip(x)
        return x

    def stream(self, x: torch.Tensor, chunk: int = TIME_CHUNK) -> torch.Tensor:
        """The same as ``forward`` for any length, in time chunks with exact causal context."""
        steps = x.shape[-1]
        if steps <= chunk:
            return self.forward(x)
        context = self.receptive_field - 1
        parts = []
        for start in range(0, steps, chunk):
            lo = max(0, start - context)
            out = self.forward(x[..., lo : start + chunk])
            parts.append(out[..., start - lo :])
        return torch.cat(parts, dim=-1)


def decay_logits(n: int, half_lives: tuple[float, ...]) -> torch.Tensor:
    """Logits of ``n`` decays per step with half-lives ``half_lives`` (cycled, doubled on each pass)."""
    lives = torch.tensor([half_lives[j % len(half_lives)] * (1 + j // len(half_lives)) for j in range(n)])
    decay = torch.exp(-math.log(2.0) / lives)
    return torch.log(decay / (1 - decay))


class DecayingAverages(nn.Module):
    """Causal exponentially decaying averages, one learned decay per channel.

    Channel j at step t averages the past of its input with weights ``d_j^k`` at lag k
    (truncated at ``length`` lags), normalised either to sum to one (``unit_variance``
    false: a running level) or to unit sum of squares (true: white noise in, unit-variance
    noise out). The decays start at half-lives ``half_lives`` (cycled, doubled on each pass)
    and are learned. One causal depthwise convolution; channel-last (B, T, n) -> (B, T, n).
    """

    def __init__(self, n: int, length: int, half_lives: tuple[float, ...], unit_variance: bool) -> None:
        super().__init__()
        self.n, self.length, self.unit_variance = n, int(length), unit_variance
        self.decay_logit = nn.Parameter(decay_logits(n, half_lives))

    def kernel(self) -> torch.Tensor:
        decay = torch.sigmoid(self.decay_logit)[:, None]
        lags = torch.arange(self.length, device=decay.device, dtype=decay.dtype)[None, :]
        if self.unit_variance:
            weights = decay**lags
            weights = weights / weights.pow(2).sum(dim=1, keepdim=True).sqrt()
        else:
            weights = (1 - decay) * decay**lags
        return weights.flip(-1)[:, None, :]  # (n, 1, length): conv1d correlates, so oldest lag first

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        g = x.transpose(1, 2)
        out = F.conv1d(F.pad(g, (self.length - 1, 0)), self.kernel().to(g.dtype), groups=self.n)
        return out.transpose(1, 2)


class ShockMemory(DecayingAverages):
    """Decaying averages of past shock features: an EGARCH-like volatility memory.

    ``m`` learned features of the inputs (e.g. yesterday's shock and its size) are averaged
    over the past (weights ``(1 - d_j) d_j^k``, starting at half-lives of 3, 15, 60 days).
    This gives the generator a persistent volatility state from the first step of training;
    the rest of the network only has to shape it. Channel-last: (B, T, in_dim) -> (B, T, m).
    """

    def __init__(self, in_dim: int, m: int, length: int, half_lives: tuple[float, ...] = (3.0, 15.0, 60.0)) -> None:
        super().__init__(m, length, half_lives, unit_variance=False)
        self.mix = nn.Linear(in_dim, m)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(self.mix(x))


class SlowNoise(DecayingAverages):
    """Latent factors that persist: white noise smoothed over weeks or months, at unit variance.

    Each of ``k`` channels of white noise is averaged over its past (weights ``d_j^k``,
    starting at half-lives of 20 and 120 days) and scaled back to unit variance: a
    stationary factor. In the volatility this is the slow, shock-independent part of a
    stochastic-volatility model, which past shocks alone (:class:`ShockMemory`) do not
    give. Channel-last: white (B, T, k) -> slow (B, T, k).
    """

    def __init__(self, k: int, length: int, half_lives: tuple[float, ...] = (20.0, 120.0)) -> None:
        super().__init__(k, length, half_lives, unit_variance=True)


class RegimeEmbedding(nn.Module):
    """Regime index per step -> a learned vector per step; no-op without regimes."""

    def __init__(self, n_regimes: int, dim: int) -> None:
        super().__init__()
        self.n_regimes = n_regimes
        self.dim = dim if n_regimes else 0
        self.table = nn.Embedding(n_regimes, dim) if n_regimes else None

    def forward(self, labels: torch.Tensor | None, batch: int, steps: int) -> torch.Tensor | None:
        """(batch, steps, dim) embeddings, or None for an unconditioned model."""
        if self.table is None:
            return None
        if labels is None:
            raise ConfigError("This model was trained with regimes; sampling it needs regime labels.")
        return self.table(labels).expand(batch, steps, self.dim)


def with_regimes(x: torch.Tensor, embedded: torch.Tensor | None) -> torch.Tensor:
    """Concatenate per-step regime embeddings to channel-last features."""
    return x if embedded is None else torch.cat([x, embedded.to(x.dtype)], dim=-1)


def pad_labels(
    labels: torch.Tensor | None, burn_in: int, fill: int | torch.Tensor | None = None
) -> torch.Tensor | None:
    """Labels (B, S) -> (B, burn_in + S), the burn-in steps taking regime ``fill`` (one, or (B,) of
    them; by default the first step's): a context's own regime when paths start from one."""
    if labels is None or burn_in == 0:
        return labels
    head = labels[:, :1] if fill is None else torch.as_tensor(fill).to(labels).reshape(-1, 1)
    return torch.cat([head.expand(labels.shape[0], burn_in), labels], dim=1)


class ShockInputs(nn.Module):
    """Splits generator noise into latent ``z``, return shocks ``eps`` and noise ``eta`` of the other channels.

    The recurrent/convolutional core reads, at step t, ``z_t``, yesterday's shock
    ``eps_{t-1}`` and its size, and the regime embedding of step t; all noise is drawn
    up front, so the core never waits on its own output and runs over all steps at once.
    With ``bound`` b > 0 the core reads ``b * tanh(eps / b)`` instead: a shock beyond a few
    standard deviations moves the state no further, which limits how far a context's filter
    can run away (it does not rule it out; see :func:`~synthmarket.deep.check_readable`).
    """

    def __init__(self, z_dim: int, eta_dim: int, n_regimes: int, embed_dim: int, bound: float = 0.0) -> None:
        super().__init__()
        if bound < 0:
            raise ConfigError(f"shock_bound must be 0 (no bound) or positive; got {bound}.")
        self.z_dim, self.eta_dim, self.bound = z_dim, eta_dim, bound
        self.noise_dim = z_dim + 1 + eta_dim
        self.embed = RegimeEmbedding(n_regimes, embed_dim)
        self.core_dim = z_dim + 2 + self.embed.dim

    def forward(self, noise: torch.Tensor, labels: torch.Tensor | None, burn_in: int):
        """(core (B, W+S, core_dim), eps (B, S, 1), eta (B, S, eta_dim), regimes (B, S, embed) or None).

        Channel-last. The regime embedding of the kept steps comes back separately too, so
        the output layer can read the regime directly.
        """
        z, eps, eta = noise.split([self.z_dim, 1, self.eta_dim], dim=-1)
        eps_prev = F.pad(eps, (0, 0, 1, 0))[:, :-1]
        if self.bound:
            eps_prev = self.bound * torch.tanh(eps_prev / self.bound)
        core = torch.cat([z, eps_prev, eps_prev.abs()], dim=-1)
        embedded = self.embed(labels, noise.shape[0], noise.shape[1])
        core = with_regimes(core, embedded)
        kept = None if embedded is None else embedded[:, burn_in:]
        return core, eps[:, burn_in:], eta[:, burn_in:], kept


class VolatilityFeatures(nn.Module):
    """What a critic reads: the features, |return|, and causal averages of |return| (fixed, not learned).

    The averages have half-lives ``half_lives`` (days), so a critic sees at every step how
    today's move compares with recent volatility: the footprint of volatility clustering,
    which a critic finds slowly on its own. Channel-last: (B, L, C) -> (B, L, C + 1 + k).
    """

    def __init__(self, half_lives: tuple[float, ...] = (5.0, 20.0, 60.0), length: int = 256) -> None:
        super().__init__()
        decay = torch.exp(-math.log(2.0) / torch.tensor(half_lives))[:, None]
        weights = (1 - decay) * decay ** torch.arange(length, dtype=torch.float32)[None, :]
        self.register_buffer(
            "kernel", (weights / weights.sum(dim=1, keepdim=True)).flip(-1)[:, None, :], persistent=False
        )
        self.n_features = 1 + len(half_lives)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        size = x[..., :1].abs().transpose(1, 2)  # (B, 1, L)
        k = self.kernel.shape[0]
        padded = F.pad(size, (self.kernel.shape[-1], 0))[..., :-1]  # averages of the steps before t
        averages = F.conv1d(padded.expand(-1, k, -1), self.kernel.to(x.dtype), groups=k)
        return torch.cat([x, size.transpose(1, 2), averages.transpose(1, 2)], dim=-1)
