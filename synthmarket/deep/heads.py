"""Output heads: the stochastic-volatility layer and the learned shapes of its return shock."""

from __future__ import annotations

import math

import torch
from torch import nn

from synthmarket.errors import ConfigError


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

    def _pieces(self, dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Each piece's slope, and where it starts (knot) and its value there. Piece 0 is the left
        tail; piece p in 1..segments covers (knots[p - 1], knots[p]]; segments + 1 is the right tail."""
        limit = self.LOG_SLOPE_LIMIT
        slopes = torch.exp(clamp_passing_gradient(self.log_slopes, -limit, limit)).to(dtype)
        knots = self.knots.to(dtype)
        inner = slopes[1:-1] * (knots[1:] - knots[:-1])
        values = torch.cat([inner.new_zeros(1), torch.cumsum(inner, 0)])
        values = values - values[self.segments // 2]  # through 0 at eps = 0
        return slopes, torch.cat([knots[:1], knots]), torch.cat([values[:1], values])

    def _map(self, eps: torch.Tensor) -> torch.Tensor:
        slopes, start_knots, start_values = self._pieces(eps.dtype)
        piece = torch.bucketize(eps.detach().contiguous(), self.knots.to(eps.dtype))
        return start_values[piece] + slopes[piece] * (eps - start_knots[piece])

    def _moments(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Mean and standard deviation of the map of a standard normal (on a grid)."""
        grid = self.grid.float()
        weights = self.density.float()
        on_grid = self._map(grid)
        mean = torch.trapezoid(on_grid * weights, grid)
        return mean, torch.sqrt(torch.trapezoid((on_grid - mean) ** 2 * weights, grid))

    def forward(self, eps: torch.Tensor) -> torch.Tensor:
        mean, sd = self._moments()
        return (self._map(eps) - mean.to(eps.dtype)) / sd.to(eps.dtype)

    @torch.no_grad()
    def inverse(self, y: torch.Tensor) -> torch.Tensor:
        """The ``eps`` whose shock is ``y``: the map is linear on each piece, so exactly."""
        mean, sd = self._moments()
        target = y * sd.to(y.dtype) + mean.to(y.dtype)
        slopes, start_knots, start_values = self._pieces(y.dtype)
        piece = torch.bucketize(target.contiguous(), start_values[1:].contiguous())
        return start_knots[piece] + (target - start_values[piece]) / slopes[piece]


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

    def __init__(
        self,
        hidden: int,
        n_channels: int,
        width: int = 16,
        vol_factors: int = 0,
        tail_floor: float = 0.0,
        shock_knots: int = 0,
    ) -> None:
        super().__init__()
        if not -1.0 < tail_floor <= 0.0:
            raise ConfigError(
                f"tail_floor must lie in (-1, 0] (below 0 the shock may have lighter tails than "
                f"normal); got {tail_floor}."
            )
        if shock_knots < 0 or shock_knots % 2:
            raise ConfigError(
                f"shock_knots must be 0 (Tukey's g-and-h shock) or an even number of segments; got {shock_knots}."
            )
        self.tail_floor = float(tail_floor)
        self.shock_map = PiecewiseLinearShock(shock_knots) if shock_knots else None
        if self.tail_floor < 0:  # where the shock's mean is integrated: beyond 12 the density is below 1e-31
            grid = torch.linspace(0.0, 12.0, 4001)
            self.register_buffer("mean_grid", grid, persistent=False)
            self.register_buffer(
                "mean_density", torch.exp(-0.5 * grid * grid) / math.sqrt(2 * math.pi), persistent=False
            )
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

    def log_vol_drift(self, h: torch.Tensor, factors: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """The return's log volatility (clamped as the output uses it) and drift, each (B, T, 1)."""
        log_vol, drift = self.vol(h).split(1, dim=-1)
        if self.vol_factors is not None:
            log_vol = log_vol + self.vol_factors(factors)
        return log_vol.clamp(-self.LOG_SCALE_LIMIT, self.LOG_SCALE_LIMIT), drift

    @torch.no_grad()
    def inverse_shock(self, y: torch.Tensor, bound: float = 12.0, iterations: int = 40) -> torch.Tensor:
        """The standard normal ``eps`` whose :meth:`shock` is ``y``, within [-bound, bound] (the
        shock is increasing; a ``y`` beyond the shock of ``bound`` gives ``bound``): exact for a
        piecewise-linear shock, by bisection for Tukey's."""
        if self.shock_map is not None:
            return self.shock_map.inverse(y).clamp(-bound, bound)
        lo, hi = torch.full_like(y, -bound), torch.full_like(y, bound)
        for _ in range(iterations):
            mid = 0.5 * (lo + hi)
            below = self.shock(mid) < y
            lo, hi = torch.where(below, mid, lo), torch.where(below, hi, mid)
        return 0.5 * (lo + hi)

    def forward(
        self, h: torch.Tensor, eps: torch.Tensor, eta: torch.Tensor, factors: torch.Tensor | None = None
    ) -> torch.Tensor:
        """``h`` (B, T, H), ``eps`` (B, T, 1), ``eta`` (B, T, C - 1) -> features (B, T, C).

        ``factors`` (B, T, vol_factors), for a head built with ``vol_factors``, move the log
        volatility only (linearly), never the drift.
        """
        limit = self.LOG_SCALE_LIMIT
        log_vol, drift = self.log_vol_drift(h, factors)
        eps = self.shock(eps)
        ret = torch.exp(log_vol) * eps + drift
        log_scale, mean = self.other(torch.cat([h, eps, eps.abs()], dim=-1)).chunk(2, dim=-1)
        other = torch.exp(log_scale.clamp(-limit, limit)) * eta + mean
        return torch.cat([ret, other], dim=-1)
