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

import torch
from torch import nn


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
    for a conditional model.
    """
    shocks = torch.zeros_like(returns)
    for _ in range(returns.shape[1] + 1):
        h, _, _, factors = net.head_inputs(context_noise(net, shocks, lead), labels, lead)
        log_vol, drift = net.head.log_vol_drift(h, factors)
        new = net.head.inverse_shock((returns - drift[..., 0]) * torch.exp(-log_vol[..., 0]))
        moved = float((new - shocks).abs().max())
        shocks = new
        if moved < tol:
            break
    return shocks
