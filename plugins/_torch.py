"""Shared torch plumbing of the deep generators: devices, weights as numpy, layers, a base class.

- :func:`resolve_device` (from :mod:`synthmarket.training`): ``auto`` picks cuda, then mps, then cpu.
- :func:`module_arrays` / :func:`load_module_arrays`: ``state_dict`` <-> named numpy arrays
  (what :meth:`synthmarket.generator.Generator.save` writes as safetensors).
- Layers: :class:`CausalConv1d`, :class:`TemporalConvNet` (dilated causal convolutions, exact
  streaming over time), :class:`RegimeEmbedding`, :class:`VolatilityHead` (the
  stochastic-volatility output: return = volatility x fresh noise + drift).
- :class:`RegimeChain`: a Markov chain of regimes fitted on the training labels, so a
  conditional model sampled without a regime draws realistic regime paths itself.
- :class:`TorchGenerator`: the :class:`~synthmarket.generator.Generator` subclass every deep
  model builds on. It trains through :class:`synthmarket.training.Trainer`, saves only the
  networks sampling needs, and samples in ``torch.inference_mode`` in batches whose size
  keeps memory flat, with all noise drawn from the numpy generator it is given.
- :class:`AdversarialGenerator`: the GAN recipe the two GANs share — non-saturating loss
  with per-time-step discriminator verdicts, a lazy R1 penalty, Adam(0.5, 0.9) and an
  exponential moving average (EMA) of the generator's weights, which is what samples.
"""

from __future__ import annotations

import abc
import contextlib
import copy
import math
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from synthmarket.bars import PRICE_CHANNELS
from synthmarket.errors import ConfigError
from synthmarket.generator import Dataset, Generator, TrainReport, window_starts
from synthmarket.training import Batch, StepContext, TrainConfig, Trainer, resolve_device  # noqa: F401  (re-exported)

#: How many (path x step) positions one sampling batch holds; bounds sampling memory.
SAMPLE_POSITIONS = 1 << 18
#: Longest stretch of time one network call covers when sampling very long paths.
TIME_CHUNK = 1 << 16
#: Where the volume channel sits among the features, when the data have volume.
VOLUME_INDEX = len(PRICE_CHANNELS)


# -- weights as numpy ---------------------------------------------------------------------------
def module_arrays(modules: dict[str, nn.Module]) -> dict[str, np.ndarray]:
    """Every parameter and buffer of ``modules`` as ``"<module>.<tensor>"`` numpy arrays."""
    out = {}
    for name, module in modules.items():
        for key, tensor in module.state_dict().items():
            out[f"{name}.{key}"] = tensor.detach().to("cpu").numpy().copy()
    return out


def load_module_arrays(modules: dict[str, nn.Module], arrays: dict[str, np.ndarray], *, strict: bool = True) -> None:
    """Load what :func:`module_arrays` wrote; shapes, names and finiteness are checked.

    Raises
    ------
    ValueError
        When a tensor is missing, unexpected, of the wrong shape or not finite.
    """
    claimed = set()
    for name, module in modules.items():
        own = module.state_dict()
        state = {}
        for key, current in own.items():
            full = f"{name}.{key}"
            if full not in arrays:
                raise ValueError(f"the weights lack {full!r}")
            value = np.asarray(arrays[full])
            if tuple(value.shape) != tuple(current.shape):
                raise ValueError(f"{full!r} has shape {tuple(value.shape)}, expected {tuple(current.shape)}")
            if value.dtype.kind == "f" and not np.isfinite(value).all():
                raise ValueError(f"{full!r} holds NaN or infinite values")
            state[key] = torch.from_numpy(np.array(value)).to(current.dtype)
            claimed.add(full)
        module.load_state_dict(state, strict=True)
    if strict:
        extra = sorted(k for k in arrays if k.split(".", 1)[0] in modules and k not in claimed)
        if extra:
            raise ValueError(f"the weights hold unexpected tensors {extra[:5]}")


def numpy_noise(rng: np.random.Generator, shape: tuple[int, ...]) -> torch.Tensor:
    """Standard normal float32 noise drawn from ``rng`` (so a seed fixes every sample)."""
    return torch.from_numpy(rng.standard_normal(shape, dtype=np.float32))


# -- layers ------------------------------------------------------------------------------------
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
            weights = decay ** lags
            weights = weights / weights.pow(2).sum(dim=1, keepdim=True).sqrt()
        else:
            weights = (1 - decay) * decay ** lags
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


def clamp_passing_gradient(x: torch.Tensor, low: float, high: float) -> torch.Tensor:
    """``x`` clamped to [low, high] in value, with the gradient of ``x`` itself.

    A plain clamp has no gradient outside its range, so a learned parameter that steps past
    a limit stays there for good; this one keeps hearing which way the loss wants it to go.
    """
    return x + (x.clamp(low, high) - x).detach()


def _expm1_ratio(x: torch.Tensor) -> torch.Tensor:
    """(exp(x) - 1) / x, smooth through x = 0 (value and gradient)."""
    small = x.abs() < 1e-4
    safe = torch.where(small, torch.ones_like(x), x)
    return torch.where(small, 1 + 0.5 * x, torch.expm1(safe) / safe)


def _tukey(eps: torch.Tensor, g: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
    """Tukey's g-and-h transform ``(exp(g eps) - 1) / g * exp(h eps^2 / 2)`` (h >= 0)."""
    return eps * _expm1_ratio(g * eps) * torch.exp(0.5 * h * eps * eps)


def _g_and_h(eps: torch.Tensor, g: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
    """Tukey's transform for h >= 0; for h < 0 (lighter tails than normal) the skew acts on
    ``y = eps (1 + eps^2)^(h / 2)`` instead, ``(exp(g y) - 1) / g``.

    Tukey's form with h < 0 turns back towards zero in the tails (at 4.5 standard
    deviations for h = -0.05); this one, a chain of increasing maps, never does. Both are
    ``(exp(g eps) - 1) / g`` at h = 0.
    """
    light = eps * torch.pow(1 + eps * eps, 0.5 * h.clamp(max=0))
    return torch.where(h >= 0, _tukey(eps, g, h.clamp(min=0)), light * _expm1_ratio(g * light))


class PiecewiseLinearShock(nn.Module):
    """A learned increasing map of a standard normal ``eps``, standardised: a shock of any shape.

    The map is linear on ``segments`` equal pieces of [-RANGE, RANGE] and beyond them (with
    its own slope on each side), and passes through 0 at eps = 0; every slope is positive, so
    the map is increasing and its quantiles are those of ``eps`` mapped. Unlike one skew and
    one tail number, it can give the centre of the distribution one asymmetry and the tails
    another (the S&P 500's small falls are smaller than its small rises, while its big falls
    are the bigger ones). The result has mean 0 and variance 1 (integrated on a grid), so
    the volatility stays the day's standard deviation. All slopes start at 1: the identity.
    """

    RANGE = 3.0
    LOG_SLOPE_LIMIT = 3.0

    def __init__(self, segments: int) -> None:
        super().__init__()
        self.segments = int(segments)
        self.register_buffer("knots", torch.linspace(-self.RANGE, self.RANGE, self.segments + 1), persistent=False)
        grid = torch.linspace(-12.0, 12.0, 8001)  # beyond 12 the normal density is below 1e-31
        self.register_buffer("grid", grid, persistent=False)
        self.register_buffer("density", torch.exp(-0.5 * grid * grid) / math.sqrt(2 * math.pi), persistent=False)
        self.log_slopes = nn.Parameter(torch.zeros(self.segments + 2))  # left tail, the pieces, right tail

    def _map(self, eps: torch.Tensor) -> torch.Tensor:
        limit = self.LOG_SLOPE_LIMIT
        slopes = torch.exp(clamp_passing_gradient(self.log_slopes, -limit, limit)).to(eps.dtype)
        knots = self.knots.to(eps.dtype)
        inner = slopes[1:-1] * (knots[1:] - knots[:-1])
        values = torch.cat([inner.new_zeros(1), torch.cumsum(inner, 0)])
        values = values - values[self.segments // 2]  # through 0 at eps = 0
        # piece 0: the left tail; piece p in 1..segments: (knots[p - 1], knots[p]]; segments + 1: the right tail
        piece = torch.bucketize(eps.detach().contiguous(), knots)
        start_knots = torch.cat([knots[:1], knots])  # where piece p starts, and its value there
        start_values = torch.cat([values[:1], values])
        return start_values[piece] + slopes[piece] * (eps - start_knots[piece])

    def forward(self, eps: torch.Tensor) -> torch.Tensor:
        grid = self.grid.float()
        weights = self.density.float()
        on_grid = self._map(grid)
        mean = torch.trapezoid(on_grid * weights, grid)
        variance = torch.trapezoid((on_grid - mean) ** 2 * weights, grid)
        return (self._map(eps) - mean.to(eps.dtype)) / torch.sqrt(variance).to(eps.dtype)


class VolatilityHead(nn.Module):
    """Stochastic-volatility output layer shared by the generators.

    From a hidden state ``h_t`` (built only from the past), the return is
    ``exp(log_vol_t) * s_t + drift_t`` with a fresh shock ``s_t``: Tukey's g-and-h transform
    of a standard normal ``eps_t``, ``(exp(g eps) - 1) / g * exp(h eps^2 / 2)`` less its mean, whose
    two learned numbers give the shock a skew (g < 0: crashes bigger than rallies, which a
    symmetric shock cannot make however its volatility moves) and heavier tails (h > 0) or,
    with ``tail_floor`` < 0, lighter ones down to h = ``tail_floor`` (see :func:`_g_and_h`):
    a volatility that moves more needs a shock with lighter tails for the same kurtosis.
    With ``shock_knots`` > 0 the shock is a :class:`PiecewiseLinearShock` instead, of any
    increasing shape. Every other channel (gap, wicks, volume) is
    ``exp(log_scale_t) * eta_t + mean_t`` with its own noise, its scale and mean read from
    ``h_t`` and today's shock and its size, so big days have big wicks and gaps follow the
    return's sign. The output layers start at zero and the shock as the identity: an
    untrained generator is exactly i.i.d. standard normal, a random walk in prices.
    """

    LOG_SCALE_LIMIT = 6.0
    SKEW_LIMIT, TAIL_LIMIT = 0.5, 0.2

    def __init__(self, hidden: int, n_channels: int, width: int = 16, vol_factors: int = 0,
                 tail_floor: float = 0.0, shock_knots: int = 0) -> None:
        super().__init__()
        if not -1.0 < tail_floor <= 0.0:
            raise ConfigError(f"tail_floor must lie in (-1, 0] (below 0 the shock may have lighter tails than "
                              f"normal); got {tail_floor}.")
        if shock_knots < 0 or shock_knots % 2:
            raise ConfigError(f"shock_knots must be 0 (Tukey's g-and-h shock) or an even number of segments; "
                              f"got {shock_knots}.")
        self.tail_floor = float(tail_floor)
        self.shock_map = PiecewiseLinearShock(shock_knots) if shock_knots else None
        if self.tail_floor < 0:  # where the shock's mean is integrated: beyond 12 the density is below 1e-31
            grid = torch.linspace(0.0, 12.0, 4001)
            self.register_buffer("mean_grid", grid, persistent=False)
            self.register_buffer("mean_density", torch.exp(-0.5 * grid * grid) / math.sqrt(2 * math.pi),
                                 persistent=False)
        self.vol = nn.Linear(hidden, 2)
        self.vol_factors = nn.Linear(vol_factors, 1, bias=False) if vol_factors else None
        self.n_other = n_channels - 1
        self.other = nn.Sequential(nn.Linear(hidden + 2, width), nn.LeakyReLU(0.2), nn.Linear(width, 2 * self.n_other))
        for layer in (self.vol, self.other[-1], self.vol_factors):
            if layer is not None:
                nn.init.zeros_(layer.weight)
                if layer.bias is not None:
                    nn.init.zeros_(layer.bias)
        self.shock_shape = nn.Parameter(torch.zeros(2))  # Tukey's g (skew) and h (tails)

    def shock(self, eps: torch.Tensor) -> torch.Tensor:
        """The g-and-h transform of standard normal ``eps``, centred (the identity while g = h = 0).

        Centred, so that ``drift_t`` stays the day's expected return: a skewed shock's own
        mean, ``(exp(g^2 / (2 (1 - h))) - 1) / (g sqrt(1 - h))`` for h >= 0 (integrated
        numerically when h may be negative), would otherwise scale with the volatility and
        tie the trend of a path to its turbulence.
        """
        if self.shock_map is not None:
            return self.shock_map(eps)
        g = clamp_passing_gradient(self.shock_shape[0], -self.SKEW_LIMIT, self.SKEW_LIMIT)
        h = clamp_passing_gradient(self.shock_shape[1], self.tail_floor, self.TAIL_LIMIT)
        if self.tail_floor == 0.0:
            mean = g / (2 * (1 - h)) * _expm1_ratio(g * g / (2 * (1 - h))) / torch.sqrt(1 - h)
            return _tukey(eps, g, h) - mean
        grid = self.mean_grid.to(eps.dtype)
        mean = torch.trapezoid((_g_and_h(grid, g, h) + _g_and_h(-grid, g, h)) * self.mean_density.to(eps.dtype), grid)
        return _g_and_h(eps, g, h) - mean

    def forward(self, h: torch.Tensor, eps: torch.Tensor, eta: torch.Tensor,
                factors: torch.Tensor | None = None) -> torch.Tensor:
        """``h`` (B, T, H), ``eps`` (B, T, 1), ``eta`` (B, T, C - 1) -> features (B, T, C).

        ``factors`` (B, T, vol_factors), for a head built with ``vol_factors``, move the log
        volatility only (linearly), never the drift.
        """
        limit = self.LOG_SCALE_LIMIT
        log_vol, drift = self.vol(h).split(1, dim=-1)
        if self.vol_factors is not None:
            log_vol = log_vol + self.vol_factors(factors)
        eps = self.shock(eps)
        ret = torch.exp(log_vol.clamp(-limit, limit)) * eps + drift
        log_scale, mean = self.other(torch.cat([h, eps, eps.abs()], dim=-1)).chunk(2, dim=-1)
        other = torch.exp(log_scale.clamp(-limit, limit)) * eta + mean
        return torch.cat([ret, other], dim=-1)


class ShockInputs(nn.Module):
    """Splits generator noise into latent ``z``, return shocks ``eps`` and noise ``eta`` of the other channels.

    The recurrent/convolutional core reads, at step t, ``z_t``, yesterday's shock
    ``eps_{t-1}`` and its size, and the regime embedding of step t; all noise is drawn
    up front, so the core never waits on its own output and runs over all steps at once.
    """

    def __init__(self, z_dim: int, eta_dim: int, n_regimes: int, embed_dim: int) -> None:
        super().__init__()
        self.z_dim, self.eta_dim = z_dim, eta_dim
        self.noise_dim = z_dim + 1 + eta_dim
        self.embed = RegimeEmbedding(n_regimes, embed_dim)
        self.core_dim = z_dim + 2 + self.embed.dim

    def forward(self, noise: torch.Tensor, labels: torch.Tensor | None, warmup: int):
        """(core (B, W+S, core_dim), eps (B, S, 1), eta (B, S, eta_dim), regimes (B, S, embed) or None).

        Channel-last. The regime embedding of the kept steps comes back separately too, so
        the output layer can read the regime directly.
        """
        z, eps, eta = noise.split([self.z_dim, 1, self.eta_dim], dim=-1)
        eps_prev = F.pad(eps, (0, 0, 1, 0))[:, :-1]
        core = torch.cat([z, eps_prev, eps_prev.abs()], dim=-1)
        embedded = self.embed(labels, noise.shape[0], noise.shape[1])
        core = with_regimes(core, embedded)
        kept = None if embedded is None else embedded[:, warmup:]
        return core, eps[:, warmup:], eta[:, warmup:], kept


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
        self.register_buffer("kernel", (weights / weights.sum(dim=1, keepdim=True)).flip(-1)[:, None, :], persistent=False)
        self.n_features = 1 + len(half_lives)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        size = x[..., :1].abs().transpose(1, 2)  # (B, 1, L)
        k = self.kernel.shape[0]
        padded = F.pad(size, (self.kernel.shape[-1], 0))[..., :-1]  # averages of the steps before t
        averages = F.conv1d(padded.expand(-1, k, -1), self.kernel.to(x.dtype), groups=k)
        return torch.cat([x, size.transpose(1, 2), averages.transpose(1, 2)], dim=-1)


# -- stylized facts as a training signal -------------------------------------------------------
def _lagged_products(x: torch.Tensor, y: torch.Tensor, max_lag: int) -> torch.Tensor:
    """sum_t x[b, t] * y[b, t + k] summed over the batch, for k = 0..max_lag (FFT; x, y are (B, L))."""
    n = 2 * x.shape[-1]
    spectrum = torch.fft.rfft(x, n=n).conj() * torch.fft.rfft(y, n=n)
    return torch.fft.irfft(spectrum, n=n)[:, : max_lag + 1].sum(dim=0)


def parse_horizons(text: str | Sequence[int]) -> tuple[int, ...]:
    """``"5,20"`` (or a list) -> (5, 20): the horizons of the variance-ratio fact ("" for none)."""
    items = text.split(",") if isinstance(text, str) else list(text)
    try:
        return tuple(int(str(k).strip()) for k in items if str(k).strip())
    except ValueError:
        raise ConfigError(f"facts_horizons are comma-separated day counts like '5,20'; got {text!r}.") from None


class FactsMatching:
    """How far a batch of return windows is from the real data's stylized facts (differentiable).

    For windows ``r`` (B, L) of scaled log returns it measures, pooled over the batch: the
    drift (the mean times sqrt(L): a window's drift in units of its noise, so that a small
    daily bias that compounds over a window counts as much as it matters), the log standard
    deviation, the skewness (losses bigger than gains), the log kurtosis (heavy tails), the
    autocorrelation of ``|r|`` at lags 1..``acf_lags`` (volatility clustering; default half
    the window, at most fifteen sixteenths of it), ``corr(r_t, r_{t+k}^2)`` at lags
    1..``leverage_lags`` (the leverage effect) and, with ``quantiles``, the quantiles of the returns at ``QUANTILE_LEVELS`` (the whole
    shape of the day's return: a peaked centre and long tails, not only their moments) and,
    with ``window_spread`` > 0, the variance over the windows of each window's log standard
    deviation (how much volatility differs between windows, which pooled facts cannot see),
    counted as a relative error times ``window_spread``, with ``block_spread`` > 0 the
    variance of the weekly log standard deviation within each month of a window, averaged
    (how much volatility moves from week to week: what makes the day's return peaked for
    its variance), a relative error times ``block_spread``, with ``horizons`` the variance ratio
    of the windows' overlapping k-day sums at each horizon k up to half the window (how days
    add up to weeks and months: below 1 where returns partly revert, as index returns do),
    and, given the ``volume`` channel of the real returns' bars, the correlation of ``|r|``
    with the volume channel (big days trade more: the volume-volatility fact).
    Given regime ``labels`` (T,) with the real returns, it also measures the drift and the
    log standard deviation under each regime, so a conditional model learns each regime's
    drift and volatility, not only the pooled ones. The targets are the same estimators over
    real training windows of the same length (every eighth of a window apart, none spanning
    two of the stretches of lengths ``segments`` that make up ``real``), so the small-window
    bias is the same on both sides. The loss is the sum of squared errors (a regime absent
    from a batch does not count), those of acf(|r|) at lags 1..``SHORT_LAGS`` times
    ``short_acf_weight``; with ``unbiased``, estimated without the batch's own variability
    (see :meth:`loss`).

    A GAN's critic learns these slowly from short windows (realism.md: volatility clustering
    lagged far behind the marginals); this term gives the generator the signal directly.
    """

    QUANTILE_LEVELS = tuple(float(q) for q in np.linspace(0.005, 0.995, 41))
    #: The first lags of acf(|r|), whose errors count ``short_acf_weight`` times.
    SHORT_LAGS = 10
    #: The ``block_spread`` fact: the variance of the weekly (``BLOCK`` days) log volatility
    #: within each month (``SPAN`` days).
    BLOCK, SPAN = 5, 20

    def __init__(
        self,
        real: np.ndarray,
        window: int,
        acf_lags: int | None = None,
        leverage_lags: int = 20,
        labels: np.ndarray | None = None,
        n_regimes: int = 0,
        segments: Sequence[int] | None = None,
        quantiles: bool = True,
        short_acf_weight: float = 1.0,
        unbiased: bool = False,
        window_spread: float = 0.0,
        volume: np.ndarray | None = None,
        horizons: Sequence[int] = (),
        block_spread: float = 0.0,
    ) -> None:
        self.window = int(window)
        horizons = tuple(int(k) for k in horizons)
        if any(k < 2 for k in horizons):
            raise ConfigError(f"facts_horizons are day counts of at least 2; got {','.join(map(str, horizons))}.")
        self.horizons = tuple(k for k in horizons if k <= self.window // 2)  # longer ones do not fit
        self.unbiased = bool(unbiased)
        self.quantile_levels = torch.tensor(self.QUANTILE_LEVELS) if quantiles else None
        self.acf_lags = max(1, min(int(acf_lags or self.window // 2), self.window - self.window // 16))
        #: Per-element weights of a fact's squared errors, where they are not all 1.
        self.error_weights: dict[str, torch.Tensor] = {}
        if float(short_acf_weight) != 1.0:
            weights = torch.ones(self.acf_lags)
            weights[: self.SHORT_LAGS] = float(short_acf_weight)
            self.error_weights["acf_abs"] = weights
        self.leverage_lags = max(1, min(int(leverage_lags), self.window // 2))
        self.n_regimes = int(n_regimes) if labels is not None else 0
        real = np.asarray(real, dtype=np.float32)
        starts = window_starts(segments or (len(real),), self.window, stride=max(1, self.window // 8))
        windows = torch.from_numpy(np.stack([real[s : s + self.window] for s in starts]))
        volume_windows = None
        if volume is not None:
            volume = np.asarray(volume, dtype=np.float32)
            volume_windows = torch.from_numpy(np.stack([volume[s : s + self.window] for s in starts]))
        self.with_volume = volume is not None
        window_labels = None
        if self.n_regimes:
            labels = np.asarray(labels, dtype=np.int64)
            window_labels = torch.from_numpy(np.stack([labels[s : s + self.window] for s in starts]))
        self.spread_weight = float(window_spread)
        self.block_spread_weight = float(block_spread) if self.window >= self.SPAN else 0.0  # else no month fits
        with torch.no_grad():
            self.target = {k: v.detach() for k, v in self.facts(windows, window_labels, volume_windows).items()}
        for key, weight in (("window_spread", self.spread_weight), ("block_spread", self.block_spread_weight)):
            if weight > 0:  # a relative error: (spread / target - 1)^2, times the weight
                self.error_weights[key] = weight / self.target[key] ** 2

    def facts(self, r: torch.Tensor, labels: torch.Tensor | None = None,
              volume: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        r = r.float()
        length = r.shape[-1]
        size = r.abs()
        size = size - size.mean()
        centred = r - r.mean()
        square = r * r
        square = square - square.mean()
        acf_counts = r.shape[0] * (length - torch.arange(self.acf_lags + 1, device=r.device, dtype=r.dtype))
        acf = _lagged_products(size, size, self.acf_lags) / acf_counts
        lev_counts = r.shape[0] * (length - torch.arange(self.leverage_lags + 1, device=r.device, dtype=r.dtype))
        cross = _lagged_products(centred, square, self.leverage_lags) / lev_counts
        scale = torch.sqrt(centred.pow(2).mean() * square.pow(2).mean()) + 1e-12
        second = centred.pow(2).mean()
        facts = {
            "drift": r.mean() * math.sqrt(self.window),
            "log_std": 0.5 * torch.log(second + 1e-24),
            "skewness": centred.pow(3).mean() / (second.pow(1.5) + 1e-24),
            "log_kurtosis": torch.log(centred.pow(4).mean() / (second * second + 1e-24) + 1e-12),
            "acf_abs": acf[1:] / (acf[0] + 1e-12),
            "leverage": cross[1:] / scale,
        }
        if self.quantile_levels is not None:
            facts["quantiles"] = torch.quantile(r.reshape(-1), self.quantile_levels.to(r.device))
        if self.spread_weight > 0:
            window_log_std = 0.5 * torch.log(centred.pow(2).mean(dim=-1) + 1e-24)
            facts["window_spread"] = window_log_std.var(dim=0) if r.shape[0] > 1 else r.new_tensor(float("nan"))
        if self.block_spread_weight > 0:
            n = length // self.SPAN * self.SPAN
            blocks = centred[:, :n].reshape(r.shape[0], -1, self.SPAN // self.BLOCK, self.BLOCK)
            block_log_std = 0.5 * torch.log(blocks.pow(2).mean(dim=-1) + 1e-24)
            facts["block_spread"] = block_log_std.var(dim=-1).mean()
        if self.horizons:
            facts["variance_ratio"] = self._variance_ratios(r, second)
        if self.with_volume and volume is not None:
            v = volume.float() - volume.float().mean()
            facts["volume_size"] = (size * v).mean() / (torch.sqrt(size.pow(2).mean() * v.pow(2).mean()) + 1e-12)
        if self.n_regimes and labels is not None:
            facts.update(self._regime_facts(r, labels))
        return facts

    def _variance_ratios(self, r: torch.Tensor, second: torch.Tensor) -> torch.Tensor:
        """Var of the windows' overlapping k-day sums over k times the day's variance, per horizon k
        (1 for independent days; below 1 where returns partly revert, as the S&P 500's do)."""
        cumulative = F.pad(torch.cumsum(r - r.mean(), dim=-1), (1, 0))
        ratios = []
        for k in self.horizons:
            sums = cumulative[:, k:] - cumulative[:, :-k]
            ratios.append(sums.pow(2).mean() / (k * second + 1e-24))
        return torch.stack(ratios)

    def _regime_facts(self, r: torch.Tensor, labels: torch.Tensor) -> dict[str, torch.Tensor]:
        """Per regime (NaN where a regime is absent): the log standard deviation and the drift."""
        onehot = F.one_hot(labels.to(r.device).long(), self.n_regimes).to(r.dtype)  # (B, L, k)
        counts = onehot.sum(dim=(0, 1))
        present = counts > 0
        mean = (r[..., None] * onehot).sum(dim=(0, 1)) / counts.clamp(min=1)
        second = ((r[..., None] - mean).pow(2) * onehot).sum(dim=(0, 1)) / counts.clamp(min=1)
        nan = torch.full_like(mean, float("nan"))
        return {
            "regime_log_std": torch.where(present, 0.5 * torch.log(second + 1e-24), nan),
            "regime_drift": torch.where(present, mean * math.sqrt(self.window), nan),
        }

    def loss(self, r: torch.Tensor, labels: torch.Tensor | None = None, volume: torch.Tensor | None = None) -> torch.Tensor:
        """Squared distance of the windows' facts to the real ones (a scalar).

        Plainly, the squared error of the batch's facts, whose expectation is the squared
        bias plus the estimates' variance, so it also charges a model for facts that vary
        from batch to batch (rare big days, bursts of volatility). With ``unbiased`` the
        squared error is estimated as the product of the errors of the batch's two halves,
        whose expectation is the squared bias alone; the per-regime drift and volatility stay
        squared errors of the whole batch (halves would double the noise of the conditioning
        signal: a briefly trained VAE then no longer ordered its regimes).
        """
        def target(key: str) -> torch.Tensor:
            return self.target[key].to(r.device)

        if self.unbiased and r.shape[0] >= 2:
            half = r.shape[0] // 2
            first = self.facts(r[:half], volume=None if volume is None else volume[:half])
            second = self.facts(r[half:], volume=None if volume is None else volume[half:])
            errors = {key: (value - target(key)) * (second[key] - target(key)) for key, value in first.items()}
            if self.n_regimes and labels is not None:
                errors.update({key: (value - target(key)) ** 2
                               for key, value in self._regime_facts(r.float(), labels).items()})
        else:
            errors = {key: (value - target(key)) ** 2 for key, value in self.facts(r, labels, volume).items()}
        total = r.new_zeros((), dtype=torch.float32)
        for key, error in errors.items():
            if key in self.error_weights:
                error = error * self.error_weights[key].to(error.device)
            total = total + torch.nansum(error)  # NaN: a regime absent from the batch or the data
        return total


# -- regimes without a schedule ----------------------------------------------------------------
class RegimeChain:
    """A first-order Markov chain over regime indices, fitted on the training labels.

    A conditional model asked for paths without a regime or schedule draws one regime path
    per sample path from this chain, so its output mixes regimes as the data did.
    """

    def __init__(self, transition: np.ndarray, initial: np.ndarray) -> None:
        self.transition = np.asarray(transition, dtype=np.float64)
        self.initial = np.asarray(initial, dtype=np.float64)

    @classmethod
    def fit(cls, labels: np.ndarray, n_regimes: int) -> "RegimeChain":
        labels = np.asarray(labels, dtype=np.int64)
        counts = np.ones((n_regimes, n_regimes))  # add-one smoothing: every move stays possible
        np.add.at(counts, (labels[:-1], labels[1:]), 1.0)
        initial = np.bincount(labels, minlength=n_regimes) + 1.0
        return cls(counts / counts.sum(axis=1, keepdims=True), initial / initial.sum())

    def sample(self, n_paths: int, n_steps: int, rng: np.random.Generator) -> np.ndarray:
        """(n_paths, n_steps) regime indices."""
        cumulative = np.cumsum(self.transition, axis=1)
        out = np.empty((n_paths, n_steps), dtype=np.int64)
        out[:, 0] = rng.choice(len(self.initial), size=n_paths, p=self.initial)
        u = rng.random((n_paths, n_steps))
        for t in range(1, n_steps):
            row = cumulative[out[:, t - 1]]
            out[:, t] = np.minimum((u[:, t, None] > row).sum(axis=1), len(self.initial) - 1)
        return out

    def to_array(self) -> np.ndarray:
        return np.vstack([self.transition, self.initial[None, :]]).astype(np.float64)

    @classmethod
    def from_array(cls, array: np.ndarray) -> "RegimeChain":
        array = np.asarray(array, dtype=np.float64)
        if array.ndim != 2 or array.shape[0] != array.shape[1] + 1 or not np.isfinite(array).all():
            raise ValueError(f"regime chain has shape {array.shape}; expected (k + 1, k)")
        return cls(array[:-1], array[-1])


# -- the base class of the deep generators ------------------------------------------------------
class TorchGenerator(Generator):
    """A :class:`Generator` made of torch networks and trained by :class:`~synthmarket.training.Trainer`.

    Subclasses implement :meth:`build` (create ``self.nets``), :meth:`make_optimizers`,
    :meth:`train_step` and :meth:`generate`, and list in ``sampling_nets`` the networks a
    saved model needs. Hyper-parameters ``steps``, ``batch_size`` and ``window`` set the
    default training length, batch size and training window; ``time_budget`` caps the
    default length (it does not apply when a length is given).
    """

    conditional = True
    sampling_nets: tuple[str, ...] = ("generator",)
    #: (path x step) positions per sampling batch; recurrent models like bigger batches.
    sample_positions: int = SAMPLE_POSITIONS
    #: At most this many paths per sampling batch (None: no cap); a GRU runs fastest on a few hundred.
    sample_batch_paths: int | None = None
    #: The stylized-facts term of the loss (set by :meth:`learn_targets` when ``facts_weight`` > 0).
    facts: FactsMatching | None = None

    def __init__(self, **hparams: Any) -> None:
        super().__init__(**hparams)
        self.nets: dict[str, nn.Module] = {}
        self.optimizers: dict[str, torch.optim.Optimizer] = {}
        self.chain: RegimeChain | None = None
        self.n_regimes = 0
        self.n_channels = 0
        self.device = torch.device("cpu")
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
    def generate(self, n: int, labels: torch.Tensor | None, rng: np.random.Generator, n_steps: int) -> torch.Tensor:
        """Scaled features (n, n_steps, C) on CPU; ``labels`` is None or (n, n_steps). Runs in inference mode."""

    # -- Trainer protocol -------------------------------------------------------------------
    def training_plan(self) -> dict[str, Any]:
        return {"steps": int(self.hparams["steps"]), "batch_size": int(self.hparams["batch_size"]),
                "window": int(self.hparams["window"]), "time_budget": self.hparams.get("time_budget")}

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
            given = ", ".join(f"{k}={v!r}" for k, v in self.hparams.items() if self.defaults.get(k) != v) or "the defaults"
            raise ConfigError(f"{self.name}: these hyper-parameters do not make a model ({given}): {exc}. "
                              f"`synthmarket plugins` lists each generator's defaults.") from None

    def checkpoint_meta(self) -> dict:
        return {"generator": self.name, "hyperparameters": self.hparams}

    def sample_scaled(self, n: int, labels: np.ndarray | None, rng: np.random.Generator, n_steps: int) -> np.ndarray:
        return self._sample(n, labels, rng, n_steps)

    # -- Generator methods ----------------------------------------------------------------------
    def _build_all(self, n_channels: int, n_regimes: int, seed: int) -> None:
        self.n_regimes, self.n_channels = n_regimes, n_channels
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            self.nets = self.build(n_channels, n_regimes)

    def _fit(self, dataset: Dataset, config: Any) -> TrainReport:
        config = TrainConfig.from_any(config)
        n_regimes = 0 if dataset.scheme is None else len(dataset.scheme.names)
        with self.hyperparameters_at_work():
            self._build_all(dataset.n_channels, n_regimes, config.seed)
            self.chain = RegimeChain.fit(dataset.train_labels, n_regimes) if n_regimes else None
            self.learn_targets(dataset)
        report = Trainer(config, callbacks=self.callbacks).fit(self, dataset)
        self.prepare_for_sampling()
        return report

    def learn_targets(self, dataset: Dataset) -> None:
        """What a model derives from the training data before training: the targets of the
        stylized-facts term, when the model has a positive ``facts_weight`` (with the quantiles
        of the day's return unless ``facts_quantiles`` is false; acf(|r|) up to lag
        ``facts_acf_lags``, 0 for half the window; the variance ratios at ``facts_horizons``,
        e.g. "5,20,60"; the week-to-week spread of volatility with ``facts_block_spread``;
        with ``facts_volume`` and data with volume, the correlation of |r| with the volume
        channel)."""
        self.facts = None
        if float(self.hparams.get("facts_weight", 0)) > 0:
            window = min(int(self.hparams["window"]), dataset.longest_segment)
            with_volume = bool(self.hparams.get("facts_volume")) and dataset.n_channels > VOLUME_INDEX
            self.facts = FactsMatching(
                dataset.train[:, 0], window, labels=dataset.train_labels, n_regimes=self.n_regimes,
                segments=dataset.train_segments, quantiles=bool(self.hparams.get("facts_quantiles", True)),
                acf_lags=int(self.hparams.get("facts_acf_lags", 0)),
                short_acf_weight=float(self.hparams.get("facts_short_acf_weight", 1.0)),
                unbiased=bool(self.hparams.get("facts_unbiased", False)),
                window_spread=float(self.hparams.get("facts_window_spread", 0.0)),
                horizons=parse_horizons(self.hparams.get("facts_horizons", "")),
                block_spread=float(self.hparams.get("facts_block_spread", 0.0)),
                volume=dataset.train[:, VOLUME_INDEX] if with_volume else None,
            )

    def prepare_for_sampling(self) -> None:
        """Move the networks to the CPU, in eval mode (samples are then the same on every machine)."""
        self.device = torch.device("cpu")
        for net in self.nets.values():
            net.to(self.device).eval()
        self.optimizers = {}

    def _state(self) -> dict[str, np.ndarray]:
        state = module_arrays({k: self.nets[k] for k in self.sampling_nets})
        if self.chain is not None:
            state["regime_chain"] = self.chain.to_array()
        return state

    def _load_state(self, state: dict[str, np.ndarray]) -> None:
        n_regimes = 0 if self.scheme is None else len(self.scheme.names)
        self._build_all(len(self.scaler.channels), n_regimes, 0)
        load_module_arrays({k: self.nets[k] for k in self.sampling_nets}, state)
        known = {k for k in state if k.split(".", 1)[0] in self.sampling_nets}
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

    def _sample(self, n: int, labels: np.ndarray | None, rng: np.random.Generator, n_steps: int) -> np.ndarray:
        per_batch = max(1, self.sample_positions // (n_steps + self.warmup()))
        if self.sample_batch_paths:
            per_batch = min(per_batch, self.sample_batch_paths)
        out = np.empty((n, n_steps, self.n_channels), dtype=np.float32)
        for net in self.nets.values():
            net.eval()
        starts = range(0, n, per_batch)
        fixed = None if labels is None else torch.as_tensor(np.asarray(labels, dtype=np.int64))[None, :]

        def run(lo: int, batch_rng: np.random.Generator) -> None:
            m = min(per_batch, n - lo)
            if fixed is not None:
                batch_labels = fixed.to(self.device)
            elif self.chain is not None:
                batch_labels = torch.as_tensor(self.chain.sample(m, n_steps, batch_rng)).to(self.device)
            else:
                batch_labels = None
            with torch.inference_mode():
                out[lo : lo + m] = self.generate(m, batch_labels, batch_rng, n_steps).float().cpu().numpy()

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
            with ThreadPoolExecutor(min(threads, len(starts)), initializer=torch.set_num_threads, initargs=(1,)) as pool:
                list(pool.map(run, starts, rngs))
        finally:
            torch.set_num_threads(threads)
        return out

    def warmup(self) -> int:
        """Steps a sample burns in before its first bar (so it starts mid-stream, like real data)."""
        return 0


def pad_labels(labels: torch.Tensor | None, warmup: int) -> torch.Tensor | None:
    """Labels (B, S) -> (B, warmup + S), the warm-up steps taking the first step's regime."""
    if labels is None or warmup == 0:
        return labels
    return torch.cat([labels[:, :1].expand(labels.shape[0], warmup), labels], dim=1)


# -- the GAN recipe shared by conv1d_cgan and rgan --------------------------------------------
#: The stylized-facts term's options every deep model shares (see :class:`FactsMatching`).
FACTS_DEFAULTS: dict[str, Any] = {"facts_quantiles": True, "facts_acf_lags": 0, "facts_short_acf_weight": 1.0,
                                  "facts_unbiased": False, "facts_window_spread": 0.0, "facts_horizons": "",
                                  "facts_block_spread": 0.0}

GAN_DEFAULTS: dict[str, Any] = {
    "lr_g": 2e-4,
    "lr_d": 2e-4,
    "r1_gamma": 1.0,
    "r1_every": 4,
    "ema_decay": 0.995,
    "tail_floor": 0.0,
    "shock_knots": 0,
    "facts_weight": 0.0,
    **FACTS_DEFAULTS,
}


class AdversarialGenerator(TorchGenerator):
    """Non-saturating GAN with per-step verdicts, lazy R1, Adam(0.5, 0.9) and an EMA generator.

    Subclasses build ``generator`` and ``discriminator`` in :meth:`build_pair`; the
    generator takes noise (B, warmup + S, noise_dim) and labels and returns (B, S, C); the
    discriminator returns one logit per time step, (B, S).
    """

    sampling_nets = ("generator_ema",)
    #: The R1 penalty of the latest step that computed it (it is lazy: every ``r1_every`` steps).
    last_r1: float | None = None

    @abc.abstractmethod
    def build_pair(self, n_channels: int, n_regimes: int) -> tuple[nn.Module, nn.Module]:
        """(generator, discriminator)."""

    def build(self, n_channels: int, n_regimes: int) -> dict[str, nn.Module]:
        generator, discriminator = self.build_pair(n_channels, n_regimes)
        ema = copy.deepcopy(generator)
        for p in ema.parameters():
            p.requires_grad_(False)
        return {"generator": generator, "discriminator": discriminator, "generator_ema": ema}

    def make_optimizers(self) -> dict[str, torch.optim.Optimizer]:
        return {
            "generator": torch.optim.Adam(self.nets["generator"].parameters(), lr=float(self.hparams["lr_g"]), betas=(0.5, 0.9)),
            "discriminator": torch.optim.Adam(self.nets["discriminator"].parameters(), lr=float(self.hparams["lr_d"]), betas=(0.5, 0.9)),
        }

    def warmup(self) -> int:
        return self.nets["generator"].warmup

    def _fake(self, net: nn.Module, labels: torch.Tensor | None, noise: torch.Tensor) -> torch.Tensor:
        return net(noise, pad_labels(labels, net.warmup))

    def train_step(self, batch: Batch, ctx: StepContext) -> dict[str, float]:
        G, D = self.nets["generator"], self.nets["discriminator"]
        G.train()
        D.train()
        x, labels = batch.x, batch.labels
        b, steps = x.shape[0], x.shape[1]
        noise = torch.randn((b, G.warmup + steps, G.noise_dim), generator=ctx.noise, device=ctx.device)

        with ctx.autocast():
            fake = self._fake(G, labels, noise)
            d_real = D(x, labels).float()
            d_fake = D(fake.detach(), labels).float()
            loss_d = F.softplus(-d_real).mean() + F.softplus(d_fake).mean()
        losses = {"d": float(loss_d.detach())}
        every = int(self.hparams["r1_every"])
        if float(self.hparams["r1_gamma"]) > 0 and ctx.step % every == 0:
            real = x.detach().float().requires_grad_(True)
            # R1 on each window's mean verdict: the loss averages the per-step verdicts, so must the penalty.
            # cuDNN's recurrent kernels have no double backward; R1 needs one through the critic.
            with torch.backends.cudnn.flags(enabled=False):
                verdict = D(real, labels).float().mean(dim=1).sum()
            (grad,) = torch.autograd.grad(verdict, real, create_graph=True)
            r1 = grad.pow(2).sum(dim=(1, 2)).mean()
            loss_d = loss_d + 0.5 * float(self.hparams["r1_gamma"]) * every * r1
            self.last_r1 = float(r1.detach())
        if self.last_r1 is not None:
            losses["r1"] = self.last_r1  # the latest lazy penalty, so every logged step shows one
        ctx.optimize("discriminator", loss_d, self.optimizers["discriminator"])

        for p in D.parameters():
            p.requires_grad_(False)
        with ctx.autocast():
            loss_g = F.softplus(-D(fake, labels).float()).mean()
        if self.facts is not None:
            facts = self.facts.loss(fake[..., 0], labels)
            loss_g = loss_g + float(self.hparams["facts_weight"]) * facts
            losses["facts"] = float(facts.detach())
        ctx.optimize("generator", loss_g, self.optimizers["generator"])
        for p in D.parameters():
            p.requires_grad_(True)
        losses["g"] = float(loss_g.detach())
        ema_update(self.nets["generator_ema"], G, float(self.hparams["ema_decay"]))
        return losses

    def generate(self, n: int, labels: torch.Tensor | None, rng: np.random.Generator, n_steps: int) -> torch.Tensor:
        net = self.nets["generator_ema"]
        noise = numpy_noise(rng, (n, net.warmup + n_steps, net.noise_dim)).to(self.device)
        if labels is not None:
            labels = labels.expand(n, n_steps)
        return net.sample(noise, pad_labels(labels, net.warmup))


@torch.no_grad()
def ema_update(target: nn.Module, source: nn.Module, decay: float) -> None:
    """target <- decay * target + (1 - decay) * source, parameter by parameter."""
    for t, s in zip(target.parameters(), source.parameters()):
        t.lerp_(s.detach(), 1.0 - decay)
    for t, s in zip(target.buffers(), source.buffers()):
        t.copy_(s)
