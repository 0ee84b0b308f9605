"""Start a shock-driven generator from the market's state: its own recursion run over the real context.

A generator built on :class:`~synthmarket.deep.ShockInputs` and
:class:`~synthmarket.deep.VolatilityHead` makes each return from a standard normal shock,
``vol_t * shock(eps_t) + drift_t``, where ``vol_t`` and ``drift_t`` read only the shocks
before ``t`` (and latent noise). Run backwards over real returns, the same network gives
the shocks that would have produced them: the analogue of a GARCH filter. Its burn-in is
then filled with those shocks (and zero latent noise) after a stretch of zeros, so every
path starts from the state the network reaches at the context's last bar, and the paths
differ from their first bar on. Training does the same with the real bars before each
training window (:class:`~synthmarket.deep.AdversarialGenerator`'s ``context_window``).

The net must have ``noise_dim``, ``inputs`` (a ShockInputs), ``head`` (a VolatilityHead) and
``head_inputs(noise, labels, burn_in)`` returning what the head reads after the burn-in.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from synthmarket.errors import ContextUnreadable

#: The largest shock, in standard deviations, a filter reads back (as the head's inverse).
INVERSE_BOUND = 12.0


def context_noise(net: nn.Module, shocks: torch.Tensor, lead: int = 0) -> torch.Tensor:
    """Noise (B, lead + L, noise_dim): zero, but for the return shocks ``shocks`` (B, L) after ``lead`` steps."""
    noise = shocks.new_zeros(shocks.shape[0], lead + shocks.shape[1], net.noise_dim)
    noise[:, lead:, net.inputs.z_dim] = shocks  # ShockInputs' layout: z, then the return shock
    return noise


@torch.no_grad()
def filtered_shocks(
    net: nn.Module,
    returns: torch.Tensor,
    labels: torch.Tensor | None = None,
    *,
    lead: int = 0,
    tol: float = 1e-5,
) -> torch.Tensor:
    """The shocks (B, L) that make ``net``, with zero latent noise, give the scaled ``returns`` (B, L)
    after ``lead`` steps of zero noise.

    Each shock depends on the ones before it only, so sweeping all steps at once from zero
    settles at least one more step per sweep: exact after L sweeps, and in practice after
    a few, as a step's volatility hardly moves with any single earlier shock; the sweeps stop
    when no shock moves by ``tol``. ``labels`` (B, lead + L) are the regimes of those steps,
    for a conditional model. Each sweep inverts the shock to a hundredth of ``tol``.
    """
    bisections = math.ceil(math.log2(2 * INVERSE_BOUND / (tol / 100)))
    shocks = torch.zeros_like(returns)
    for _ in range(returns.shape[1] + 1):
        h, _, _, factors = net.head_inputs(context_noise(net, shocks, lead), labels, lead)
        log_vol, drift = net.head.log_vol_drift(h, factors)
        new = net.head.inverse_shock((returns - drift[..., 0]) * torch.exp(-log_vol[..., 0]), INVERSE_BOUND, bisections)
        moved = float((new - shocks).abs().max())
        shocks = new
        if moved < tol:
            break
    return shocks


@torch.no_grad()
def check_readable(net: nn.Module, noise: torch.Tensor, labels: torch.Tensor | None, lead: int, name: str) -> None:
    """Raise :class:`ContextUnreadable` where the burn-in ``noise`` (B, burn_in, noise_dim) of a
    context (filtered after ``lead`` steps) drives ``net``'s volatility down to its floor.

    A network whose volatility falls after a large shock of one sign need not be invertible
    (as an EGARCH need not be): on a run of such days its filter asks for ever larger
    shocks, which lower the volatility further, until it sits at the output layer's floor.
    No real context needs that floor, and paths that start from it explode within weeks.
    """
    h, _, _, factors = net.head_inputs(noise, labels, lead)
    log_vol, _ = net.head.log_vol_drift(h, factors)
    floor = -net.head.LOG_SCALE_LIMIT
    collapsed = (log_vol[..., 0] <= floor).any(dim=1)
    if bool(collapsed.any()):
        raise ContextUnreadable(
            f"{name} cannot start from {int(collapsed.sum())} of {len(collapsed)} contexts: read back through "
            f"the network, their returns drive its volatility down to its floor (e^{floor:g} of the training "
            "data's), a runaway of its filter, and paths from that state explode within weeks. Sample with "
            "context=None (--context none), or use another model (garch and fhs read any context)."
        )
