"""(Conditional) sequence VAE with a latent variable per time step.

- Encoder: a bidirectional GRU over the window (and the regime embedding) gives a Gaussian
  posterior ``q(z_t | x)`` for every step.
- Prior: a learned AR(1) per latent dimension, ``z_t = a z_{t-1} + sqrt(1 - a^2) e_t`` with
  unit stationary variance and decays ``a`` that start at 0.5, 0.9, 0.97 and 0.99: a slow
  latent is cheap under this prior, so the model can carry a persistent volatility state
  (with an i.i.d. prior, pilots learned no volatility clustering at all).
- Decoder: a GRU over ``(z_t, regime_t, bar_{t-1})`` whose state gives every channel's
  log-scale and the means of gap, wicks and volume at step t; the mean return is a linear
  function of the latents' innovations (white noise under the prior, so slow latents cannot
  give a path a lasting drift) and of a few decaying averages of the past returns
  (``reversion``: the S&P 500's days partly revert, its 20-day sums have about 0.7 of the
  variance of 20 independent days). A bar is the mean plus scale times fresh noise; its gap,
  wicks and volume also read the day's standardised return shock and its size (big days,
  big wicks, more volume), and the bar is fed to the next step (``feedback``): the decoder
  is autoregressive, so yesterday's fall can raise today's volatility (the leverage effect;
  without the feedback only the latents could carry a shock forward, and the leverage
  stayed near GARCH's). Training feeds the real bars (teacher forcing, one GRU pass);
  sampling rolls out one step at a time.
  The prior's decays belong to the decoder (they are needed to sample). Because the
  decoder reads the latents at every step and is recurrent, it generates any number of
  steps, rolling its state across time chunks.
- From a context (the real bars before a scenario): the encoder reads it, the decoder runs over
  its last ``burn_in`` bars with their posterior latents and the real bars fed back, as in
  training, and the latents go on from the last one under the prior.
- Loss: Gaussian negative log-likelihood + beta x KL(q(z_t | x) || p(z_t | z_{t-1})) (one
  posterior sample of ``z_{t-1}``), beta annealed linearly from 0 to ``kl_weight`` over the
  first ``kl_anneal_steps`` steps; plus the stylized-facts term on windows rolled out from prior
  latents, as sampling makes them, including the correlation of |r| with volume
  (``facts_volume``) and the variance ratios of 5-, 20- and 60-day sums (``facts_horizons``).
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from scipy.signal import lfilter
from torch import nn

from synthmarket.deep import (
    FACTS_HYPERPARAMETERS,
    TIME_CHUNK,
    TRAINING_HYPERPARAMETERS,
    VOLUME_INDEX,
    Batch,
    HyperParameter,
    RegimeEmbedding,
    StepContext,
    TorchGenerator,
    decay_logits,
    numpy_noise,
    pad_labels,
    with_defaults,
    with_regimes,
)
from synthmarket.errors import ConfigError

LOG_SCALE_LIMIT = 5.0
PRIOR_DECAYS = (0.5, 0.9, 0.97, 0.99)
REVERSION_HALF_LIVES = (5.0, 20.0, 60.0)


class Encoder(nn.Module):
    """Features (B, L, C) and labels -> posterior mean and log-variance (B, L, latent)."""

    def __init__(self, n_channels: int, n_regimes: int, *, hidden: int, latent: int, embed_dim: int) -> None:
        super().__init__()
        self.embed = RegimeEmbedding(n_regimes, embed_dim)
        self.gru = nn.GRU(n_channels + self.embed.dim, hidden, batch_first=True, bidirectional=True)
        self.out = nn.Linear(2 * hidden, 2 * latent)

    def forward(self, x: torch.Tensor, labels: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
        h, _ = self.gru(with_regimes(x, self.embed(labels, x.shape[0], x.shape[1])))
        mean, log_var = self.out(h).chunk(2, dim=-1)
        return mean, log_var.clamp(-12.0, 8.0)


class Decoder(nn.Module):
    """Latents (B, T, latent) and labels -> per-step mean and log-scale of every channel (B, T, C)."""

    def __init__(
        self,
        n_channels: int,
        n_regimes: int,
        *,
        hidden: int,
        latent: int,
        embed_dim: int,
        burn_in: int,
        feedback: bool = False,
        reversion: int = 0,
    ) -> None:
        super().__init__()
        if reversion and not feedback:
            raise ConfigError(
                "reversion reads the past returns, which only a decoder with feedback sees; "
                "set feedback=true or reversion=0."
            )
        self.latent, self.n_channels, self.burn_in, self.feedback = latent, n_channels, burn_in, feedback
        self.reversion = int(reversion)
        if self.reversion:  # the mean return reads decaying averages of past returns (half-lives 5, 20, 60, ...)
            self.reversion_logit = nn.Parameter(decay_logits(self.reversion, REVERSION_HALF_LIVES))
            self.revert = nn.Linear(self.reversion, 1, bias=False)
            nn.init.zeros_(self.revert.weight)
        decays = torch.tensor([PRIOR_DECAYS[j % len(PRIOR_DECAYS)] for j in range(latent)])
        self.decay_logit = nn.Parameter(torch.log(decays / (1 - decays)))
        self.embed = RegimeEmbedding(n_regimes, embed_dim)
        self.gru = nn.GRU(latent + self.embed.dim + (n_channels if feedback else 0), hidden, batch_first=True)
        self.out = nn.Linear(hidden, 2 * n_channels - 1)  # means of the non-return channels, every log-scale
        self.drift = nn.Linear(latent, 1)  # the mean return, from the latents' innovations
        if feedback:  # today's return shock and its size move the other channels (big days, big wicks)
            self.within = nn.Linear(2, 2 * (n_channels - 1))
            nn.init.zeros_(self.within.weight)
            nn.init.zeros_(self.within.bias)

    def decays(self) -> torch.Tensor:
        """The AR(1) coefficients of the prior, one per latent dimension, in (0, 1)."""
        return torch.sigmoid(self.decay_logit)

    def past_averages(self, returns: torch.Tensor) -> torch.Tensor:
        """Exponentially decaying averages of the returns before each step, (B, T) -> (B, T, reversion).

        ``e_t = d e_{t-1} + (1 - d) r_{t-1}`` from ``e_0 = 0``, exactly as :meth:`roll` updates it
        (untruncated, unlike :class:`DecayingAverages`, so the two agree at any length).
        """
        d = torch.sigmoid(self.reversion_logit).to(returns.dtype)
        steps = returns.shape[1]
        lag = torch.arange(steps, device=returns.device, dtype=returns.dtype)
        gap = lag[:, None] - lag[None, :] - 1  # step t reads r_s, s < t, with weight (1 - d) d^(t - 1 - s)
        weights = torch.where(gap >= 0, (1 - d)[:, None, None] * d[:, None, None] ** gap.clamp(min=0), 0.0)
        return torch.einsum("kts,bs->btk", weights, returns)

    def prior_kl(self, z: torch.Tensor, mean_q: torch.Tensor, log_var_q: torch.Tensor) -> torch.Tensor:
        """KL(q(z_t) || p(z_t | z_{t-1})) per step and dimension, for a posterior sample ``z``."""
        a = self.decays()
        mean_p = torch.cat([torch.zeros_like(z[:, :1]), a * z[:, :-1]], dim=1)
        var_p = torch.cat([torch.ones_like(z[:, :1]), (1 - a * a).expand_as(z[:, 1:])], dim=1)
        return 0.5 * (torch.log(var_p) - log_var_q + (log_var_q.exp() + (mean_q - mean_p) ** 2) / var_p - 1)

    def prior_sample_torch(self, e: torch.Tensor) -> torch.Tensor:
        """As :meth:`prior_sample`, differentiable in torch (a causal convolution; for training windows)."""
        a = self.decays()
        steps = e.shape[1]
        shocks = torch.cat([e[:, :1], e[:, 1:] * torch.sqrt(1 - a * a)], dim=1).transpose(1, 2)  # (B, latent, T)
        powers = a[:, None] ** torch.arange(steps - 1, -1, -1, device=e.device, dtype=e.dtype)[None, :]
        out = F.conv1d(F.pad(shocks, (steps - 1, 0)), powers[:, None, :], groups=self.latent)
        return out.transpose(1, 2)

    def prior_sample(self, e: np.ndarray, previous: np.ndarray | None = None) -> torch.Tensor:
        """AR(1) latents (n, T, latent) from standard normal ``e`` of the same shape: stationary, or
        continuing the latents ``previous`` (1 or n, latent) of the step before."""
        a = self.decays().detach().cpu().double().numpy()
        out = np.empty_like(e)
        for j, coef in enumerate(a):
            scale = math.sqrt(1 - coef * coef)
            shocks = e[..., j].astype(np.float64) * scale
            if previous is None:
                shocks[:, 0] = e[:, 0, j]  # the first step draws from the stationary N(0, 1)
            else:
                shocks[:, 0] += coef * previous[:, j]
            out[..., j] = lfilter([1.0], [1.0, -coef], shocks, axis=1)
        return torch.from_numpy(out)

    def innovations(self, z: torch.Tensor, previous: torch.Tensor | None = None) -> torch.Tensor:
        """The prior's standardised innovations ``(z_t - a z_{t-1}) / sqrt(1 - a^2)``: white noise under the prior.

        ``previous`` is the latent of the step before ``z`` (None: ``z`` starts the path,
        whose first latent is drawn from the stationary N(0, 1)).
        """
        a = self.decays()
        scale = torch.sqrt(1 - a * a)
        if previous is None:
            return torch.cat([z[:, :1], (z[:, 1:] - a * z[:, :-1]) / scale], dim=1)
        return (z - a * torch.cat([previous, z[:, :-1]], dim=1)) / scale

    def forward(
        self,
        z: torch.Tensor,
        labels: torch.Tensor | None,
        state=None,
        previous: torch.Tensor | None = None,
        x: torch.Tensor | None = None,
    ):
        """Per-step means and log-scales (B, T, C) for latents ``z`` (and the GRU state).

        With ``feedback`` the decoder is autoregressive and needs the bars ``x`` (B, T, C)
        whose likelihood it gives (teacher forcing): step t reads the bar before it (zeros
        before the first), so a fall in price can raise the next days' volatility directly
        (the leverage effect), and the other channels of bar t read its return shock. The
        mean return is a linear function of the latents' innovations, so it cannot persist
        (slow latents would otherwise give paths a lasting drift), and, with ``reversion``,
        of decaying averages of the returns before it.
        """
        inputs = with_regimes(z, self.embed(labels, z.shape[0], z.shape[1]))
        if self.feedback:
            inputs = torch.cat([inputs, torch.cat([torch.zeros_like(x[:, :1]), x[:, :-1]], dim=1)], dim=-1)
        h, state = self.gru(inputs, state)
        other_mean, log_scale = self.out(h).split([self.n_channels - 1, self.n_channels], dim=-1)
        mean_return = self.drift(self.innovations(z, previous))
        if self.reversion:
            mean_return = mean_return + self.revert(self.past_averages(x[..., 0]))
        mean = torch.cat([mean_return, other_mean], dim=-1)
        if self.feedback:  # the other channels read the bar's standardised return shock and its size
            shock = (x[..., :1] - mean[..., :1]) * torch.exp(
                -log_scale[..., :1].clamp(-LOG_SCALE_LIMIT, LOG_SCALE_LIMIT)
            )
            move_mean, move_scale = self.within(torch.cat([shock, shock.abs()], dim=-1)).chunk(2, dim=-1)
            mean = torch.cat([mean[..., :1], mean[..., 1:] + move_mean], dim=-1)
            log_scale = torch.cat([log_scale[..., :1], log_scale[..., 1:] + move_scale], dim=-1)
        return mean, log_scale.clamp(-LOG_SCALE_LIMIT, LOG_SCALE_LIMIT), state

    def roll(
        self, z: torch.Tensor, labels: torch.Tensor | None, eta: torch.Tensor, forced: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Bars (B, T, C) rolled out one step at a time from latents ``z`` and noise ``eta`` (both T steps).

        Each step's bar is fed to the next (``feedback``), its return noise to its other
        channels; the GRU recurrence is written out so that only the previous bar's share of
        the input gates is computed per step. The first steps' bars are ``forced`` (1 or B, F, C)
        when given: real bars, as training feeds them (teacher forcing).
        """
        gru, c, hidden = self.gru, self.n_channels, self.gru.hidden_size
        static_dim = z.shape[-1] + self.embed.dim
        w_static, w_bar = gru.weight_ih_l0[:, :static_dim], gru.weight_ih_l0[:, static_dim:]
        b, steps = z.shape[0], z.shape[1]
        # One output layer for the whole bar, laid out as (means, log-scales); the mean return's
        # row is zero: it is the drift, added with the moves the day's shock makes in the
        # other channels, all known before the step (the shock is the return channel's noise).
        w_out = torch.cat([self.out.weight.new_zeros(1, hidden), self.out.weight])
        b_out = torch.cat([self.out.bias.new_zeros(1), self.out.bias])
        state = z.new_zeros(b, hidden)
        bar = z.new_zeros(b, c)
        drift = self.drift(self.innovations(z))
        if self.reversion:
            d = torch.sigmoid(self.reversion_logit).to(z.dtype)
            averages = z.new_zeros(b, self.reversion)
        out = []
        for lo in range(0, steps, TIME_CHUNK):
            chunk_labels = None if labels is None else labels[:, lo : lo + TIME_CHUNK]
            zc, noise = z[:, lo : lo + TIME_CHUNK], eta[:, lo : lo + TIME_CHUNK]
            static = F.linear(with_regimes(zc, self.embed(chunk_labels, b, zc.shape[1])), w_static, gru.bias_ih_l0)
            shock = noise[..., :1]
            move_mean, move_scale = self.within(torch.cat([shock, shock.abs()], dim=-1)).chunk(2, dim=-1)
            added = torch.cat([drift[:, lo : lo + TIME_CHUNK], move_mean, torch.zeros_like(shock), move_scale], dim=-1)
            for t in range(zc.shape[1]):
                gi = static[:, t] + F.linear(bar, w_bar)
                gh = F.linear(state, gru.weight_hh_l0, gru.bias_hh_l0)
                gates = torch.sigmoid(gi[:, : 2 * hidden] + gh[:, : 2 * hidden])  # reset, update
                candidate = torch.tanh(gi[:, 2 * hidden :] + gates[:, :hidden] * gh[:, 2 * hidden :])
                state = torch.lerp(candidate, state, gates[:, hidden:])
                outputs = F.linear(state, w_out, b_out) + added[:, t]
                if self.reversion:
                    averages = d * averages + (1 - d) * bar[:, :1]
                    outputs = torch.cat([outputs[:, :1] + self.revert(averages), outputs[:, 1:]], dim=1)
                if forced is not None and lo + t < forced.shape[1]:
                    bar = forced[:, lo + t].expand(b, c)
                else:
                    bar = (
                        outputs[:, :c]
                        + torch.exp(outputs[:, c:].clamp(-LOG_SCALE_LIMIT, LOG_SCALE_LIMIT)) * noise[:, t]
                    )
                out.append(bar)
        return torch.stack(out, dim=1)

    def rollout(
        self, z: torch.Tensor, labels: torch.Tensor | None, eta: torch.Tensor, forced: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Bars for sampling, for latents ``z`` (B, burn_in + S, latent) and output noise ``eta``
        (B, S, C; with ``feedback`` B, burn_in + S, C: the burn-in's bars are drawn too, or
        ``forced``: the context's)."""
        if self.feedback:
            return self.roll(z, labels, eta, forced)[:, self.burn_in :]
        state, means, scales = None, [], []
        for lo in range(0, z.shape[1], TIME_CHUNK):
            chunk_labels = None if labels is None else labels[:, lo : lo + TIME_CHUNK]
            previous = None if lo == 0 else z[:, lo - 1 : lo]
            mean, log_scale, state = self.forward(z[:, lo : lo + TIME_CHUNK], chunk_labels, state, previous)
            means.append(mean)
            scales.append(log_scale)
        mean = torch.cat(means, dim=1)[:, self.burn_in :]
        log_scale = torch.cat(scales, dim=1)[:, self.burn_in :]
        return mean + torch.exp(log_scale) * eta


class SequenceVAE(TorchGenerator):
    """(Conditional) sequence VAE: a latent per step with a learned AR(1) prior, GRU encoder and decoder."""

    name = "vae"
    conditional = True
    sampling_nets = ("decoder",)
    #: Paths start from a context: the encoder reads it, the decoder runs over it (:meth:`context_start`).
    context_nets = ("encoder",)
    uses_context = True
    sample_positions = 1 << 20  # about 1,000 paths of 1,000 steps: a step of the rollout is a few small kernels
    hyperparameters = (
        *with_defaults(TRAINING_HYPERPARAMETERS, window=128),
        HyperParameter("hidden", int, 16, "GRU units of the decoder"),
        HyperParameter("encoder_hidden", int, 32, "GRU units of the (bidirectional) encoder"),
        HyperParameter("latent", int, 4, "latent dimensions per step"),
        HyperParameter("embed_dim", int, 4, "size of the regime embedding"),
        HyperParameter("burn_in", int, 32, "steps a sample runs before its first bar (was: warmup)"),
        HyperParameter("lr", float, 2e-3, "learning rate (Adam)"),
        HyperParameter("kl_weight", float, 1.0, "final weight (beta) of the KL term"),
        HyperParameter("kl_anneal_steps", int, 200, "steps over which beta rises linearly from 0 (was: kl_warmup)"),
        HyperParameter("facts_weight", float, 3.0, "weight of the stylized-facts term in the loss (0: none)"),
        *with_defaults(FACTS_HYPERPARAMETERS, facts_unbiased=True, facts_horizons=[5, 20, 60]),
        HyperParameter("feedback", bool, True, "the decoder reads the previous bar (autoregressive)"),
        HyperParameter("facts_volume", bool, True, "facts term: also match corr(|r|, volume)"),
        HyperParameter("reversion", int, 3, "decaying averages of past returns the mean return reads (needs feedback)"),
    )
    added_later = {
        "facts_quantiles": False,
        "facts_unbiased": False,
        "feedback": False,
        "facts_volume": False,
        "reversion": 0,
        "facts_horizons": [],
    }
    renamed = {"warmup": "burn_in", "kl_warmup": "kl_anneal_steps"}

    def build(self, n_channels: int, n_regimes: int) -> dict[str, nn.Module]:
        h = self.hparams
        return {
            "encoder": Encoder(
                n_channels,
                n_regimes,
                hidden=int(h["encoder_hidden"]),
                latent=int(h["latent"]),
                embed_dim=int(h["embed_dim"]),
            ),
            "decoder": Decoder(
                n_channels,
                n_regimes,
                hidden=int(h["hidden"]),
                latent=int(h["latent"]),
                embed_dim=int(h["embed_dim"]),
                burn_in=int(h["burn_in"]),
                feedback=bool(h["feedback"]),
                reversion=int(h["reversion"]),
            ),
        }

    def make_optimizers(self) -> dict[str, torch.optim.Optimizer]:
        params = list(self.nets["encoder"].parameters()) + list(self.nets["decoder"].parameters())
        return {"vae": torch.optim.Adam(params, lr=float(self.hparams["lr"]))}

    def burn_in(self) -> int:
        return int(self.hparams["burn_in"])

    def prior_facts_loss(self, batch: Batch, ctx: StepContext) -> torch.Tensor:
        """The facts distance of windows decoded from prior latents, as sampling makes them."""
        decoder = self.nets["decoder"]
        b, steps = batch.x.shape[0], batch.x.shape[1]
        warm = decoder.burn_in
        e = torch.randn((b, warm + steps, decoder.latent), generator=ctx.noise, device=ctx.device)
        labels = pad_labels(batch.labels, warm)
        if decoder.feedback:
            eta = torch.randn((b, warm + steps, decoder.n_channels), generator=ctx.noise, device=ctx.device)
            bars = decoder.roll(decoder.prior_sample_torch(e), labels, eta)[:, warm:]
            volume = bars[..., VOLUME_INDEX] if bars.shape[-1] > VOLUME_INDEX else None
            return self.facts.loss(bars[..., 0], batch.labels, volume)
        eta = torch.randn((b, steps, 1), generator=ctx.noise, device=ctx.device)
        mean, log_scale, _ = decoder(decoder.prior_sample_torch(e), labels)
        returns = mean[:, warm:, 0] + torch.exp(log_scale[:, warm:, 0]) * eta[..., 0]
        return self.facts.loss(returns, batch.labels)

    def kl_beta(self, step: int) -> float:
        """The KL weight at ``step``: linear from 0 to ``kl_weight`` over ``kl_anneal_steps`` steps."""
        anneal = int(self.hparams["kl_anneal_steps"])
        ramp = 1.0 if anneal <= 0 else min(1.0, step / anneal)
        return float(self.hparams["kl_weight"]) * ramp

    def train_step(self, batch: Batch, ctx: StepContext) -> dict[str, float]:
        encoder, decoder = self.nets["encoder"], self.nets["decoder"]
        encoder.train()
        decoder.train()
        x, labels = batch.x, batch.labels
        with ctx.autocast():
            mean_q, log_var_q = encoder(x, labels)
            noise = torch.randn(mean_q.shape, generator=ctx.noise, device=ctx.device)
            z = mean_q + torch.exp(0.5 * log_var_q) * noise
            mean, log_scale, _ = decoder(z, labels, x=x)
        mean, log_scale = mean.float(), log_scale.float()
        mean_q, log_var_q = mean_q.float(), log_var_q.float()
        nll = (0.5 * ((x - mean) * torch.exp(-log_scale)) ** 2 + log_scale + 0.5 * math.log(2 * math.pi)).sum(-1).mean()
        kl = decoder.prior_kl(z.float(), mean_q, log_var_q).sum(-1).mean()
        beta = self.kl_beta(ctx.step)
        loss = nll + beta * kl
        losses = {"nll": float(nll.detach()), "kl": float(kl.detach()), "beta": beta}
        if self.facts is not None:
            with ctx.autocast():
                facts = self.prior_facts_loss(batch, ctx)
            loss = loss + float(self.hparams["facts_weight"]) * facts.float()
            losses["facts"] = float(facts.detach())
        ctx.optimize("vae", loss, self.optimizers["vae"])
        return {"loss": float(loss.detach()), **losses}

    @property
    def min_context(self) -> int:
        """The encoder reads a training window's worth of context (at least the burn-in)."""
        return max(self.burn_in(), int(self.hparams["window"])) if self.uses_context else 0

    def context_start(self, context: torch.Tensor, labels: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
        """The posterior mean of the latents over each context (B, L, latent), and the contexts: the
        decoder runs over their last burn-in steps as in training, and the latents go on from the last."""
        mean_q, _ = self.nets["encoder"](context, labels)
        return mean_q, context

    def draw_batch(
        self, n: int, labels: torch.Tensor | None, rng: np.random.Generator, n_steps: int, start=None
    ) -> torch.Tensor:
        decoder = self.nets["decoder"]
        warm = decoder.burn_in
        e = rng.standard_normal((n, warm + n_steps, decoder.latent), dtype=np.float32)
        if start is None:
            z, forced = decoder.prior_sample(e).to(self.device, torch.float32), None
        else:
            posterior, context = start.value
            known, forced = posterior[:, posterior.shape[1] - warm :], context[:, context.shape[1] - warm :]
            ahead = decoder.prior_sample(e[:, warm:], previous=posterior[:, -1].cpu().double().numpy())
            z = torch.cat([known, ahead.to(self.device, known.dtype)], dim=1)  # start.value: a row per path
        eta = numpy_noise(rng, (n, (warm if decoder.feedback else 0) + n_steps, decoder.n_channels)).to(self.device)
        if labels is not None:
            labels = pad_labels(labels.expand(n, n_steps), warm, None if start is None else start.regime)
        return decoder.rollout(z, labels, eta, forced)


__all__ = ["Decoder", "Encoder", "SequenceVAE"]
