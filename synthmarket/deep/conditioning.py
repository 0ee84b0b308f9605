"""Start a shock-driven generator from the market's state: its own recursion run over the real context.

A generator built on :class:`~synthmarket.deep.ShockInputs` and
:class:`~synthmarket.deep.VolatilityHead` makes each return from a standard normal shock,
``vol_t * shock(eps_t) + drift_t``, where ``vol_t`` and ``drift_t`` read only the shocks
before ``t`` (and latent noise). Run backwards over real returns, the same network gives
the shocks that would have produced them: the analogue of a GARCH filter. Its burn-in is
then filled with those shocks (and zero latent noise), so every path starts from the state
the network reaches at the context's last bar, and the paths differ from their first bar on.

The net must have ``noise_dim``, ``burn_in``, ``inputs`` (a ShockInputs), ``head`` (a
VolatilityHead) and ``head_inputs(noise, labels, burn_in)`` returning what the head reads.
"""

from __future__ import annotations

import torch
from torch import nn


def context_noise(net: nn.Module, shocks: torch.Tensor) -> torch.Tensor:
    """Noise (1, L, noise_dim) that is zero but for the return shocks ``shocks`` (L,)."""
    noise = shocks.new_zeros(1, shocks.shape[0], net.noise_dim)
    noise[0, :, net.inputs.z_dim] = shocks  # ShockInputs' layout: z, then the return shock
    return noise


@torch.no_grad()
def filtered_shocks(
    net: nn.Module, returns: torch.Tensor, labels: torch.Tensor | None = None, *, tol: float = 1e-5
) -> torch.Tensor:
    """The shocks (L,) that make ``net``, with zero latent noise, give the scaled ``returns`` (L,).

    Each shock depends on the ones before it only, so sweeping all steps at once from zero
    settles at least one more step per sweep: exact after L sweeps, and in practice after
    a few, as a step's volatility hardly moves with any single earlier shock.
    ``labels`` (1, L) are the regimes of the context's steps, for a conditional model.
    """
    shocks = torch.zeros_like(returns)
    for _ in range(returns.shape[0] + 1):
        h, _, _, factors = net.head_inputs(context_noise(net, shocks), labels, 0)
        log_vol, drift = net.head.log_vol_drift(h, factors)
        target = (returns - drift[0, :, 0]) * torch.exp(-log_vol[0, :, 0])
        new = net.head.inverse_shock(target)
        moved = float((new - shocks).abs().max())
        shocks = new
        if moved < tol:
            break
    return shocks
