"""Stylized facts as a training signal: :class:`FactsMatching` and its options, :class:`FactsConfig`.

A GAN's critic learns the stylized facts slowly from short windows (volatility clustering
lags far behind the marginals); this term gives a generator the signal directly. A model
adds ``facts_weight * facts.loss(returns)`` to its loss; :class:`~synthmarket.deep.TorchGenerator`
builds ``facts`` from the model's ``facts_*`` hyper-parameters (:data:`FACTS_DEFAULTS`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from synthmarket.errors import ConfigError
from synthmarket.hyperparameters import HyperParameter
from synthmarket.training_data import window_starts

#: The ``facts_*`` hyper-parameters every deep model shares, declared once
#: (:meth:`FactsConfig.from_hparams` reads them; a model may give some other defaults).
FACTS_HYPERPARAMETERS: tuple[HyperParameter, ...] = (
    HyperParameter("facts_quantiles", bool, True, "facts term: also match the quantiles of the day's return"),
    HyperParameter("facts_acf_lags", int, 0, "facts term: lags of acf(|r|) matched (0: half the window)"),
    HyperParameter("facts_short_acf_weight", float, 1.0, "facts term: weight of the errors of acf(|r|) at lags 1-10"),
    HyperParameter("facts_unbiased", bool, False, "facts term: squared errors without the batch's own variability"),
    HyperParameter("facts_window_spread", float, 0.0, "facts term: weight of the spread of volatility between windows"),
    HyperParameter("facts_horizons", list[int], [], "facts term: horizons (days) of the variance ratios matched"),
    HyperParameter("facts_block_spread", float, 0.0, "facts term: weight of the week-to-week volatility spread"),
)
#: The defaults of :data:`FACTS_HYPERPARAMETERS`, by name.
FACTS_DEFAULTS: dict[str, Any] = {hp.name: hp.default for hp in FACTS_HYPERPARAMETERS}


def parse_horizons(text: str | Sequence[int]) -> tuple[int, ...]:
    """``"5,20"`` (or a list) -> (5, 20): the horizons of the variance-ratio fact ("" for none).

    (A model's ``facts_horizons`` is already a list; this reads the old text form too.)"""
    items = text.split(",") if isinstance(text, str) else list(text)
    try:
        return tuple(int(str(k).strip()) for k in items if str(k).strip())
    except ValueError:
        raise ConfigError(f"facts_horizons are comma-separated day counts like '5,20'; got {text!r}.") from None


@dataclass(frozen=True)
class FactsConfig:
    """Which facts :class:`FactsMatching` measures, over windows of how many days, and how errors count."""

    #: Length of the return windows the loss compares (the training window).
    window: int
    #: acf(|r|) at lags 1..acf_lags (0: half the window; at most fifteen sixteenths of it).
    acf_lags: int = 0
    #: corr(r_t, r_{t+k}^2) at lags 1..leverage_lags (at most half the window).
    leverage_lags: int = 20
    #: Also match the quantiles of the day's return at ``FactsMatching.QUANTILE_LEVELS``.
    quantiles: bool = True
    #: How many times the errors of acf(|r|) at lags 1..``FactsMatching.SHORT_LAGS`` count.
    short_acf_weight: float = 1.0
    #: Estimate the squared error without the batch's own variability (see :meth:`FactsMatching.loss`).
    unbiased: bool = False
    #: > 0: match the variance over windows of each window's log volatility, a relative error times this.
    window_spread: float = 0.0
    #: > 0: match the variance of the weekly log volatility within each month, a relative error times this.
    block_spread: float = 0.0
    #: Match the variance ratio of k-day sums at each horizon k (those up to half the window).
    horizons: tuple[int, ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "horizons", tuple(int(k) for k in self.horizons))
        if any(k < 2 for k in self.horizons):
            raise ConfigError(f"facts_horizons are day counts of at least 2; got {','.join(map(str, self.horizons))}.")

    @classmethod
    def from_hparams(cls, hparams: Mapping[str, Any], window: int) -> FactsConfig:
        """The options a model's ``facts_*`` hyper-parameters set (their declared defaults where absent)."""

        def get(key: str) -> Any:
            return hparams.get(key, FACTS_DEFAULTS[key])

        return cls(
            window=window,
            acf_lags=int(get("facts_acf_lags")),
            quantiles=bool(get("facts_quantiles")),
            short_acf_weight=float(get("facts_short_acf_weight")),
            unbiased=bool(get("facts_unbiased")),
            window_spread=float(get("facts_window_spread")),
            block_spread=float(get("facts_block_spread")),
            horizons=parse_horizons(get("facts_horizons")),
        )


def _lagged_products(x: torch.Tensor, y: torch.Tensor, max_lag: int) -> torch.Tensor:
    """sum_t x[b, t] * y[b, t + k] summed over the batch, for k = 0..max_lag (FFT; x, y are (B, L))."""
    n = 2 * x.shape[-1]
    spectrum = torch.fft.rfft(x, n=n).conj() * torch.fft.rfft(y, n=n)
    return torch.fft.irfft(spectrum, n=n)[:, : max_lag + 1].sum(dim=0)


class FactsMatching:
    """How far a batch of return windows is from the real data's stylized facts (differentiable).

    For windows ``r`` (B, L) of scaled log returns it measures, pooled over the batch: the
    drift (the mean times sqrt(L): a window's drift in units of its noise, so that a small
    daily bias that compounds over a window counts as much as it matters), the log standard
    deviation, the skewness (losses bigger than gains), the log kurtosis (heavy tails), the
    autocorrelation of ``|r|`` (volatility clustering), ``corr(r_t, r_{t+k}^2)`` (the
    leverage effect) and, as ``config`` asks: the quantiles of the returns (the whole shape
    of the day's return: a peaked centre and long tails, not only their moments); the
    variance over the windows of each window's log standard deviation (how much volatility
    differs between windows, which pooled facts cannot see); the variance of the weekly log
    standard deviation within each month of a window, averaged (how much volatility moves
    from week to week: what makes the day's return peaked for its variance); the variance
    ratio of the windows' overlapping k-day sums at each horizon (how days add up to weeks
    and months: below 1 where returns partly revert, as index returns do). Given the
    ``volume`` channel of the real returns' bars, it also measures the correlation of
    ``|r|`` with the volume channel (big days trade more: the volume-volatility fact).
    Given regime ``labels`` (T,) with the real returns, it also measures the drift and the
    log standard deviation under each of the ``n_regimes`` regimes, so a conditional model
    learns each regime's drift and volatility, not only the pooled ones. The targets are the
    same estimators over real training windows of the same length (every eighth of a window
    apart, none spanning two of the stretches of lengths ``segments`` that make up
    ``real``), so the small-window bias is the same on both sides. The loss is the sum of
    squared errors (a regime absent from a batch does not count), weighted as
    :class:`FactsConfig` says.
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
        config: FactsConfig,
        *,
        segments: Sequence[int] | None = None,
        labels: np.ndarray | None = None,
        n_regimes: int = 0,
        volume: np.ndarray | None = None,
    ) -> None:
        self.config = config
        self.window = int(config.window)
        self.horizons = tuple(k for k in config.horizons if k <= self.window // 2)  # longer ones do not fit
        self.unbiased = bool(config.unbiased)
        self.quantile_levels = torch.tensor(self.QUANTILE_LEVELS) if config.quantiles else None
        self.acf_lags = max(1, min(int(config.acf_lags or self.window // 2), self.window - self.window // 16))
        #: Per-element weights of a fact's squared errors, where they are not all 1.
        self.error_weights: dict[str, torch.Tensor] = {}
        if float(config.short_acf_weight) != 1.0:
            weights = torch.ones(self.acf_lags)
            weights[: self.SHORT_LAGS] = float(config.short_acf_weight)
            self.error_weights["acf_abs"] = weights
        self.leverage_lags = max(1, min(int(config.leverage_lags), self.window // 2))
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
        self.spread_weight = float(config.window_spread)
        self.block_spread_weight = float(config.block_spread) if self.window >= self.SPAN else 0.0  # else no month fits
        with torch.no_grad():
            self.target = {k: v.detach() for k, v in self.facts(windows, window_labels, volume_windows).items()}
        for key, weight in (("window_spread", self.spread_weight), ("block_spread", self.block_spread_weight)):
            if weight > 0:  # a relative error: (spread / target - 1)^2, times the weight
                self.error_weights[key] = weight / self.target[key] ** 2

    def facts(
        self, r: torch.Tensor, labels: torch.Tensor | None = None, volume: torch.Tensor | None = None
    ) -> dict[str, torch.Tensor]:
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

    def loss(
        self, r: torch.Tensor, labels: torch.Tensor | None = None, volume: torch.Tensor | None = None
    ) -> torch.Tensor:
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
                errors.update(
                    {key: (value - target(key)) ** 2 for key, value in self._regime_facts(r.float(), labels).items()}
                )
        else:
            errors = {key: (value - target(key)) ** 2 for key, value in self.facts(r, labels, volume).items()}
        total = r.new_zeros((), dtype=torch.float32)
        for key, error in errors.items():
            if key in self.error_weights:
                error = error * self.error_weights[key].to(error.device)
            total = total + torch.nansum(error)  # NaN: a regime absent from the batch or the data
        return total
