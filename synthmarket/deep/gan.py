"""The GAN recipe conv1d_cgan and rgan share: :class:`AdversarialGenerator`.

Non-saturating loss with per-time-step discriminator verdicts, a lazy R1 penalty,
Adam(0.5, 0.9), the stylized-facts term when ``facts_weight`` > 0, and an exponential
moving average (EMA) of the generator's weights, which is what samples and is saved.

With ``context_window`` = K > 0 the GAN learns to continue the market's state: every training
window comes with the K real bars before it, the generator's burn-in ends with the shocks
filtered from them (:mod:`synthmarket.deep.conditioning`), and the critic judges each window
after reading its context, so a window that ignores a turbulent or calm past is told apart.
Sampling from a context fills the burn-in the same way. With ``forecast_weight`` > 0 the
generator is also scored as a forecaster: two futures of each context against the real one,
by the CRPS of their 1- to 5-bar returns (a proper scoring rule, so its minimum is the true
conditional distribution). With ``likelihood_weight`` > 0 it is also fitted as GARCH is: each
real window is read back through the generator (its filter, as a context is) and its first
bars are scored by the density that the generator's volatility, drift and shock give each of
them, the day before's state held fixed.
"""

from __future__ import annotations

import abc
import copy
import math
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from synthmarket.deep.base import TorchGenerator
from synthmarket.deep.conditioning import check_readable, context_noise, filtered_shocks
from synthmarket.deep.facts_loss import FACTS_HYPERPARAMETERS
from synthmarket.deep.layers import pad_labels
from synthmarket.deep.weights import numpy_noise
from synthmarket.errors import ConfigError
from synthmarket.hyperparameters import HyperParameter
from synthmarket.trainable import Batch, StepContext

#: Horizons, in bars, of the forecast score (``forecast_weight``).
FORECAST_BARS = 5
#: Bars after each training context whose likelihood is scored (``likelihood_weight``): the filter
#: that reads them back costs about the square of the bars it reads.
LIKELIHOOD_BARS = 32
#: Hyper-parameters of the recipe (and of :class:`~synthmarket.deep.VolatilityHead`'s shock), declared once.
GAN_HYPERPARAMETERS: tuple[HyperParameter, ...] = (
    HyperParameter("lr_g", float, 2e-4, "generator learning rate (Adam, betas 0.5, 0.9)"),
    HyperParameter("lr_d", float, 2e-4, "discriminator learning rate (Adam, betas 0.5, 0.9)"),
    HyperParameter("r1_gamma", float, 1.0, "weight of the R1 penalty on the discriminator (0: none)"),
    HyperParameter("r1_every", int, 4, "steps between R1 penalties (lazy R1)"),
    HyperParameter("ema_decay", float, 0.995, "decay of the moving average of the generator's weights that samples"),
    HyperParameter("tail_floor", float, 0.0, "lower bound of the learned shock's log tail scale"),
    HyperParameter("shock_knots", int, 0, "knots of the learned shock's shape (0: a normal shock)"),
    HyperParameter(
        "shock_bound",
        float,
        0.0,
        "the core reads past shocks as b*tanh(eps/b), so a run of large shocks moves the volatility only so far "
        "(0: unbounded)",
    ),
    HyperParameter("facts_weight", float, 0.0, "weight of the stylized-facts term in the loss (0: none)"),
    HyperParameter(
        "forecast_weight",
        float,
        0.0,
        "weight of the forecast score in the generator's loss: the CRPS of its 1- to 5-bar returns after each "
        "training context against the real ones, from two samples per context (0: none; needs context_window)",
    ),
    HyperParameter(
        "likelihood_weight",
        float,
        0.0,
        "weight of the one-step likelihood in the generator's loss: the mean negative log density of the first "
        f"{LIKELIHOOD_BARS} real returns of each training window, each given the generator's state read back from the bars before it "
        "(0: none)",
    ),
    HyperParameter(
        "context_window",
        int,
        0,
        "bars before each training window the burn-in is filtered from and the critic reads (0: the whole "
        "burn-in at sampling, none in training)",
    ),
    *FACTS_HYPERPARAMETERS,
)
#: The defaults of :data:`GAN_HYPERPARAMETERS`, by name.
GAN_DEFAULTS: dict[str, Any] = {hp.name: hp.default for hp in GAN_HYPERPARAMETERS}


class AdversarialGenerator(TorchGenerator):
    """Non-saturating GAN with per-step verdicts, lazy R1, Adam(0.5, 0.9) and an EMA generator.

    Subclasses build ``generator`` and ``discriminator`` in :meth:`build_pair`; the
    generator takes noise (B, burn_in + S, noise_dim) and labels and returns (B, S, C), has
    the attributes ``burn_in`` and ``noise_dim`` and a method ``rollout(noise, labels)`` that
    computes the same as its ``forward`` (sampling calls it; it may stream long paths); the
    discriminator returns one logit per time step, (B, S).
    """

    sampling_nets = ("generator_ema",)
    #: Paths start from a context: its shocks fill the generator's burn-in (:meth:`context_start`).
    uses_context = True
    #: The R1 penalty of the latest step that computed it (it is lazy: every ``r1_every`` steps).
    last_r1: float | None = None

    @abc.abstractmethod
    def build_pair(self, n_channels: int, n_regimes: int) -> tuple[nn.Module, nn.Module]:
        """(generator, discriminator)."""

    def build(self, n_channels: int, n_regimes: int) -> dict[str, nn.Module]:
        weight = float(self.hparams["forecast_weight"])
        if weight < 0 or (weight > 0 and int(self.hparams["context_window"]) <= 0):
            raise ConfigError(
                f"forecast_weight scores forecasts made from a context: it must be 0, or positive with "
                f"context_window > 0; got forecast_weight={weight:g}, context_window={self.hparams['context_window']}."
            )
        if float(self.hparams["likelihood_weight"]) < 0:
            raise ConfigError(
                f"likelihood_weight must be 0 (none) or positive; got {self.hparams['likelihood_weight']}."
            )
        generator, discriminator = self.build_pair(n_channels, n_regimes)
        ema = copy.deepcopy(generator)
        for p in ema.parameters():
            p.requires_grad_(False)
        return {"generator": generator, "discriminator": discriminator, "generator_ema": ema}

    def make_optimizers(self) -> dict[str, torch.optim.Optimizer]:
        return {
            "generator": torch.optim.Adam(
                self.nets["generator"].parameters(), lr=float(self.hparams["lr_g"]), betas=(0.5, 0.9)
            ),
            "discriminator": torch.optim.Adam(
                self.nets["discriminator"].parameters(), lr=float(self.hparams["lr_d"]), betas=(0.5, 0.9)
            ),
        }

    def burn_in(self) -> int:
        return self.nets["generator"].burn_in

    def context_length(self) -> int:
        """Bars of context the burn-in is filtered from: ``context_window``, or the whole burn-in."""
        window = int(self.hparams["context_window"])
        return min(window, self.burn_in()) if window > 0 else self.burn_in()

    @property
    def min_context(self) -> int:
        return self.context_length()

    def training_plan(self) -> dict[str, Any]:
        """Windows ``context_window`` bars longer: each comes with the real bars before it."""
        plan = super().training_plan()
        extra = self.context_length() if int(self.hparams["context_window"]) > 0 else 0
        return {**plan, "window": int(plan["window"]) + extra}

    def _fake(self, net: nn.Module, labels: torch.Tensor | None, noise: torch.Tensor) -> torch.Tensor:
        return net(noise, pad_labels(labels, net.burn_in))

    def train_step(self, batch: Batch, ctx: StepContext) -> dict[str, float]:
        G, D = self.nets["generator"], self.nets["discriminator"]
        G.train()
        D.train()
        whole, all_labels = batch.x, batch.labels
        # the first bars of each window are its context (context_window), the rest what is generated
        k = min(int(self.hparams["context_window"]), G.burn_in, whole.shape[1] // 2)
        x, labels = whole[:, k:], None if all_labels is None else all_labels[:, k:]
        b, steps = x.shape[0], x.shape[1]
        noise = torch.randn((b, G.burn_in + steps, G.noise_dim), generator=ctx.noise, device=ctx.device)
        # the real bars read back through the generator: the context's shocks end its burn-in, the
        # window's give the likelihood (likelihood_weight); the burn-in's steps take the first regime
        likelihood = float(self.hparams["likelihood_weight"]) > 0
        scored = min(steps, LIKELIHOOD_BARS) if likelihood else 0
        lead, span = G.burn_in - k, k + scored
        real_labels = None if labels is None else pad_labels(labels[:, :scored], G.burn_in, labels[:, 0])
        if span:
            shocks = filtered_shocks(G, whole[:, :span, 0].float(), real_labels, lead=lead, tol=1e-2)
            real_noise = context_noise(G, shocks, lead)
        if k:
            noise[:, : G.burn_in] = real_noise[:, : G.burn_in]

        def critic(window: torch.Tensor) -> torch.Tensor:
            """Per-step verdicts on the generated stretch, after reading the context."""
            return D(torch.cat([whole[:, :k].to(window.dtype), window], dim=1), all_labels)[:, k:]

        with ctx.autocast():
            fake = self._fake(G, labels, noise)
            d_real = critic(x).float()
            d_fake = critic(fake.detach()).float()
            loss_d = F.softplus(-d_real).mean() + F.softplus(d_fake).mean()
        losses = {"d": float(loss_d.detach())}
        every = int(self.hparams["r1_every"])
        if float(self.hparams["r1_gamma"]) > 0 and ctx.step % every == 0:
            real = x.detach().float().requires_grad_(True)
            # R1 on each window's mean verdict: the loss averages the per-step verdicts, so must the penalty.
            # cuDNN's recurrent kernels have no double backward; R1 needs one through the critic.
            with torch.backends.cudnn.flags(enabled=False):
                verdict = critic(real).float().mean(dim=1).sum()
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
            loss_g = F.softplus(-critic(fake).float()).mean()
            if k and float(self.hparams["forecast_weight"]) > 0:
                forecast = self._forecast_score(G, fake, x, noise, labels, ctx)
                loss_g = loss_g + float(self.hparams["forecast_weight"]) * forecast
                losses["forecast"] = float(forecast.detach())
        if likelihood:
            nll = one_step_nll(G, real_noise, x[:, :scored, 0].float(), real_labels)
            loss_g = loss_g + float(self.hparams["likelihood_weight"]) * nll
            losses["nll"] = float(nll.detach())
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

    def _forecast_score(
        self,
        G: nn.Module,
        fake: torch.Tensor,
        real: torch.Tensor,
        noise: torch.Tensor,
        labels: torch.Tensor | None,
        ctx: StepContext,
    ) -> torch.Tensor:
        """Mean CRPS of the 1- to ``FORECAST_BARS``-bar scaled returns after each context: ``fake``
        and a second future drawn from the same burn-in against the ``real`` one, each horizon
        divided by its square root so that every horizon weighs alike."""
        h = min(FORECAST_BARS, real.shape[1])
        again = noise[:, : G.burn_in + h].clone()
        again[:, G.burn_in :] = torch.randn(again[:, G.burn_in :].shape, generator=ctx.noise, device=ctx.device)
        other = self._fake(G, None if labels is None else labels[:, :h], again)
        scale = torch.arange(1, h + 1, device=real.device, dtype=torch.float32).sqrt()
        first, second, outcome = (w[:, :h, 0].float().cumsum(dim=1) / scale for w in (fake, other, real))
        return pair_crps(first, second, outcome).mean()

    def context_start(self, context: torch.Tensor, labels: torch.Tensor | None) -> torch.Tensor:
        """The burn-in's noise (B, burn_in, noise_dim): each context's returns run backwards through
        the generator (:func:`~synthmarket.deep.conditioning.filtered_shocks`), in its regime;
        :class:`~synthmarket.errors.ContextUnreadable` where that filter runs away."""
        net = self.nets["generator_ema"]
        lead = net.burn_in - context.shape[1]
        steps = None if labels is None else labels[:, :1].expand(-1, net.burn_in)
        noise = context_noise(net, filtered_shocks(net, context[..., 0], steps, lead=lead, tol=1e-5), lead)
        check_readable(net, noise, steps, lead, self.name)
        return noise

    def draw_batch(
        self, n: int, labels: torch.Tensor | None, rng: np.random.Generator, n_steps: int, start=None
    ) -> torch.Tensor:
        net = self.nets["generator_ema"]
        noise = numpy_noise(rng, (n, net.burn_in + n_steps, net.noise_dim)).to(self.device)
        if start is not None:
            noise[:, : net.burn_in] = start.value
        if labels is not None:
            labels = labels.expand(n, n_steps)
        return net.rollout(noise, pad_labels(labels, net.burn_in, None if start is None else start.regime))


def one_step_nll(
    net: nn.Module, real_noise: torch.Tensor, returns: torch.Tensor, labels: torch.Tensor | None
) -> torch.Tensor:
    """Mean negative log density of the scaled ``returns`` (B, S), each given ``net``'s state
    before it, when the net runs on ``real_noise`` (B, burn_in + S, noise_dim): the shocks filtered
    from the real bars (:func:`~synthmarket.deep.conditioning.filtered_shocks`), held fixed, and
    zero latent noise. Each return's density is that of ``exp(log_vol) * shock(eps) + drift``.
    """
    h, _, _, factors = net.head_inputs(real_noise, labels, net.burn_in)
    log_vol, drift = (part[..., 0].float() for part in net.head.log_vol_drift(h, factors))
    eps = _inverse_with_gradient(net.head, (returns - drift) * torch.exp(-log_vol))
    (slope,) = torch.autograd.grad(net.head.shock(eps).sum(), eps, create_graph=True)
    return (0.5 * eps.square() + torch.log(slope) + log_vol).mean() + 0.5 * math.log(2 * math.pi)


def _inverse_with_gradient(head: nn.Module, y: torch.Tensor) -> torch.Tensor:
    """``head.inverse_shock(y)``, with the gradient of the inverse: one Newton step from the
    solution, which leaves its value and carries ``d eps = (dy - d shock) / shock'``."""
    root = head.inverse_shock(y.detach()).requires_grad_(True)
    with torch.enable_grad():
        value = head.shock(root)
        (slope,) = torch.autograd.grad(value.sum(), root, create_graph=True)
    return root - (value - y) / slope


def pair_crps(first: torch.Tensor, second: torch.Tensor, outcome: torch.Tensor) -> torch.Tensor:
    """The CRPS of a forecast known by two samples, elementwise: the unbiased (fair) estimate
    ``(|X - y| + |X' - y|) / 2 - |X - X'| / 2``, differentiable in both samples."""
    return 0.5 * ((first - outcome).abs() + (second - outcome).abs()) - 0.5 * (first - second).abs()


@torch.no_grad()
def ema_update(target: nn.Module, source: nn.Module, decay: float) -> None:
    """target <- decay * target + (1 - decay) * source, parameter by parameter."""
    for t, s in zip(target.parameters(), source.parameters()):
        t.lerp_(s.detach(), 1.0 - decay)
    for t, s in zip(target.buffers(), source.buffers()):
        t.copy_(s)
