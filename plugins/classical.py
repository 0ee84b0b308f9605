"""Classical baselines: geometric Brownian motion, GARCH(1,1) and the stationary bootstrap.

These are the models a quant would otherwise reach for, registered exactly like the deep
generators so that every comparison (stylized facts, Monte-Carlo backtests) can include them.

- ``gbm``: i.i.d. normal log returns with the training mean and standard deviation.
- ``garch``: a constant-mean GARCH(1,1) fitted with ``arch`` on percent log returns, normal
  or standardised Student-t innovations, simulated here vectorised over paths. Each path
  starts in the variance of a random training day (the fitted conditional variances are a
  sample of the stationary distribution) and runs ``burn`` steps before its first bar.
- ``bootstrap``: Politis-Romano stationary block bootstrap of whole training bars
  (every channel at once); conditional on regimes when trained with them.

GBM and GARCH model the close return only. The other channels of a generated bar (open gap,
upper and lower wick, volume) are drawn *jointly* from one real training bar, chosen among
the bars whose standardised return ``z = (r - mu) / sigma_t`` falls in the same quantile
bucket as the generated one, and, for GARCH, whose conditional volatility ``sigma_t`` falls
in the same volatility bucket. GARCH then scales the donor's gap and wicks by
``sigma_generated / sigma_donor``, so bar ranges follow the simulated volatility
clustering. Volume (relative to its rolling level) is persistent in real data, so it is an
AR(1) whose innovation is the donor's own AR(1) residual: it keeps the real link between
volume and big moves and the real day-to-day persistence. See docs/generators-classical.md.
"""

from __future__ import annotations

import abc
import time
from typing import Any

import numpy as np
from scipy.signal import lfilter

from synthmarket.errors import ConfigError, TrainingDiverged
from synthmarket.generator import Generator, TrainReport
from synthmarket.hyperparameters import HyperParameter
from synthmarket.training_data import TrainingData

RET = 0  # index of the close-return channel
VOLUME = 3  # index of the volume channel among the other channels (gap, upper, lower, volume)

# Quantiles that cut the standardised return into buckets: fine in the tails so that a
# generated crash borrows the gap, wicks and volume of a real crash day.
Z_QUANTILES = (0.01, 0.03, 0.1, 0.2, 0.35, 0.5, 0.65, 0.8, 0.9, 0.97, 0.99)
VOL_QUANTILES = (0.25, 0.5, 0.75)
MIN_DONORS = 5


def _ar1(x: np.ndarray) -> tuple[float, float, np.ndarray]:
    """Least-squares AR(1) ``x_t = const + phi x_{t-1} + e_t``: (const, phi, e), ``e_0 = x_0 - mean``."""
    phi = float(np.clip(np.polyfit(x[:-1], x[1:], 1)[0], -0.99, 0.99))
    const = float(x.mean() * (1.0 - phi))
    residual = np.concatenate([[x[0] - x.mean()], x[1:] - const - phi * x[:-1]])
    return const, phi, residual


class CompanionRows:
    """Gap, wicks and volume for generated close returns, resampled jointly from real bars.

    Parameters
    ----------
    other : array (T, C - 1)
        The unscaled non-return channels of the training bars (gap, upper, lower[, volume]).
    z : array (T,)
        Each training bar's standardised return.
    sigma : array (T,), optional
        Each training bar's conditional volatility; when given, donors are also matched on
        its bucket and their gap and wicks are rescaled to the generated volatility.

    The volume channel follows an AR(1) fitted on the training volume channel, driven by
    the donors' residuals, so that generated volume is as persistent as the real one.
    """

    def __init__(self, other: np.ndarray, z: np.ndarray, sigma: np.ndarray | None = None) -> None:
        other, z = np.asarray(other, dtype=np.float64), np.asarray(z, dtype=np.float64)
        if other.ndim != 2 or z.shape != (len(other),) or len(other) < 2 * MIN_DONORS:
            raise ValueError(f"companion rows need (T, C) channels and (T,) scores; got {other.shape} and {z.shape}")
        if sigma is not None:
            sigma = np.asarray(sigma, dtype=np.float64)
            if sigma.shape != z.shape or not (sigma > 0).all():
                raise ValueError("companion volatilities must be positive, one per row")
        if not (np.isfinite(other).all() and np.isfinite(z).all()):
            raise ValueError("companion rows hold non-finite values")
        self.other, self.z, self.sigma = other, z, sigma
        self.volume_ar = _ar1(other[:, VOLUME]) if other.shape[1] > VOLUME else None
        self.z_edges = np.quantile(z, Z_QUANTILES)
        self.vol_edges = np.quantile(sigma, VOL_QUANTILES) if sigma is not None else np.empty(0)
        self._build_pools()

    def _build_pools(self) -> None:
        n_z, n_vol = len(self.z_edges) + 1, len(self.vol_edges) + 1
        z_bucket = np.searchsorted(self.z_edges, self.z)
        vol_bucket = np.searchsorted(self.vol_edges, self.sigma) if self.sigma is not None else np.zeros_like(z_bucket)
        pools = []
        for v in range(n_vol):
            for b in range(n_z):
                cell = np.flatnonzero((vol_bucket == v) & (z_bucket == b))
                if len(cell) < MIN_DONORS:  # a sparse cell: match on the return bucket alone
                    cell = np.flatnonzero(z_bucket == b)
                pools.append(cell)
        self.n_z = n_z
        self.pool = np.concatenate(pools)
        self.count = np.array([len(p) for p in pools], dtype=np.int64)
        self.start = np.concatenate([[0], np.cumsum(self.count)[:-1]])

    def draw(self, z: np.ndarray, sigma: np.ndarray | None, rng: np.random.Generator) -> np.ndarray:
        """Unscaled non-return channels, shape ``z.shape + (C - 1,)``, for generated scores."""
        cell = np.searchsorted(self.z_edges, z)
        if self.sigma is not None:
            cell += self.n_z * np.searchsorted(self.vol_edges, sigma)
        offset = (rng.random(z.shape) * self.count[cell]).astype(np.int64)
        donor = self.pool[self.start[cell] + offset]
        out = self.other[donor]
        if self.sigma is not None:
            out[..., :VOLUME] *= (sigma / self.sigma[donor])[..., None]  # gap, upper, lower
        if self.volume_ar is not None:
            const, phi, residual = self.volume_ar
            before = self.other[rng.integers(0, len(self.other), size=z.shape[:-1]), VOLUME]
            out[..., VOLUME] = lfilter(
                [1.0], [1.0, -phi], const + residual[donor], axis=-1, zi=phi * before[..., None]
            )[0]
        return out

    def state(self) -> dict[str, np.ndarray]:
        state = {"companion.other": self.other, "companion.z": self.z}
        if self.sigma is not None:
            state["companion.sigma"] = self.sigma
        return state

    @classmethod
    def from_state(cls, state: dict[str, np.ndarray], n_channels: int) -> CompanionRows:
        other = state["companion.other"]
        if other.ndim != 2 or other.shape[1] != n_channels - 1:
            raise ValueError(f"companion rows have shape {other.shape}; this model has {n_channels} channels")
        return cls(other, state["companion.z"], state.get("companion.sigma"))


class _ReturnModel(Generator):
    """A model of the close return; the other channels come from :class:`CompanionRows`."""

    companion: CompanionRows

    def _fit(self, dataset: TrainingData, config: Any) -> TrainReport:
        began = time.perf_counter()
        raw = dataset.scaler.inverse_transform(dataset.train.astype(np.float64))
        z, sigma, history = self._fit_returns(raw[:, RET])
        self.companion = CompanionRows(raw[:, RET + 1 :], z, sigma)
        return TrainReport(self.name, time.perf_counter() - began, steps=1, history=[history])

    def _sample_scaled(
        self, n: int, labels: np.ndarray | None, rng: np.random.Generator, n_steps: int, context=None
    ) -> np.ndarray:
        returns, z, sigma = self._simulate(n, n_steps, rng, context)
        other = self.companion.draw(z, sigma, rng)
        raw = np.concatenate([returns[..., None], other], axis=-1)
        return self.scaler.transform(raw).astype(np.float32)

    @abc.abstractmethod
    def _fit_returns(self, returns: np.ndarray) -> tuple[np.ndarray, np.ndarray | None, dict]:
        """Fit on training log returns; give each bar's standardised return and volatility."""

    @abc.abstractmethod
    def _simulate(
        self, n: int, n_steps: int, rng: np.random.Generator, context: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
        """Log returns, standardised returns and volatilities, each of shape (n, n_steps); from
        the state at the end of ``context`` (unscaled features) when the model uses one."""

    def _check_fitted_arrays(self, state: dict[str, np.ndarray], keys: tuple[str, ...]) -> None:
        missing = [k for k in keys if k not in state]
        if missing:
            raise ValueError(f"the weights lack {', '.join(missing)}")
        for key in keys:
            if not np.isfinite(state[key]).all():
                raise ValueError(f"{key} holds non-finite values")


class Gbm(_ReturnModel):
    """Geometric Brownian motion: i.i.d. normal log returns (classical baseline; no market state,
    so a context is left unused)."""

    name = "gbm"
    hyperparameters = ()

    def _fit_returns(self, returns):
        self.mu, self.sigma = float(returns.mean()), float(returns.std(ddof=1))
        if not self.sigma > 0:
            raise ConfigError("GBM needs returns that vary; the training closes are constant.")
        return (returns - self.mu) / self.sigma, None, {"mu": self.mu, "sigma": self.sigma}

    def _simulate(self, n, n_steps, rng, context=None):
        z = rng.standard_normal((n, n_steps))
        return self.mu + self.sigma * z, z, None

    def _state(self):
        return {"mu": np.array([self.mu]), "sigma": np.array([self.sigma]), **self.companion.state()}

    def _load_state(self, state):
        self._check_fitted_arrays(state, ("mu", "sigma"))
        self.mu, self.sigma = float(state["mu"][0]), float(state["sigma"][0])
        if not self.sigma > 0:
            raise ValueError("sigma must be positive")
        self.companion = CompanionRows.from_state(state, len(self.scaler.channels))


GARCH_DISTS = {"normal": "normal", "t": "studentst"}


def garch_recursion(
    mu: float,
    omega: float,
    alpha: float,
    beta: float,
    innovations: np.ndarray,
    burn: int = 0,
    initial_variance: float | np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Run GARCH(1,1) over standardised innovations of shape (burn + S, n), all paths at once.

    The first variance is ``initial_variance`` (a number, or one per path); by default the
    unconditional variance, as in ``arch``'s ``GARCH.simulate``. The first ``burn`` steps
    are dropped. Returns the series ``mu + eps_t`` and the variances ``sigma2_t``, each of
    shape (S, n) (same units as ``mu``, here percent).
    """
    total = innovations.shape[0]
    sigma2 = np.empty(innovations.shape)
    eps = np.empty(innovations.shape)
    sigma2[0] = omega / (1.0 - alpha - beta) if initial_variance is None else initial_variance
    eps[0] = np.sqrt(sigma2[0]) * innovations[0]
    for t in range(1, total):
        s2 = sigma2[t]
        np.multiply(eps[t - 1], eps[t - 1], out=s2)
        s2 *= alpha
        s2 += beta * sigma2[t - 1]
        s2 += omega
        np.sqrt(s2, out=eps[t])
        eps[t] *= innovations[t]
    return mu + eps[burn:], sigma2[burn:]


class Garch(_ReturnModel):
    """GARCH(1,1) log returns fitted with arch, normal or Student-t (classical baseline).

    With a context, each path starts from the conditional variance that the fitted model
    filters over the context's returns (arch's one-step forecast at its last bar); without one,
    from the volatility of a random training bar, after ``burn`` steps."""

    name = "garch"
    uses_context = True
    min_context = 20
    hyperparameters = (
        HyperParameter("dist", str, "t", "innovations: Student-t (standardised) or normal", choices=tuple(GARCH_DISTS)),
        HyperParameter("burn", int, 100, "steps each path runs before its first bar"),
    )

    def __init__(self, **hparams: Any) -> None:
        super().__init__(**hparams)
        if self.hparams["dist"] not in GARCH_DISTS:
            raise ConfigError(f"garch: dist must be one of {', '.join(GARCH_DISTS)}; got {self.hparams['dist']!r}.")
        burn = self.hparams["burn"]
        if isinstance(burn, bool) or not isinstance(burn, int) or burn < 0:
            raise ConfigError(f"garch: burn must be a whole number of steps >= 0; got {burn!r}.")

    def _arch_model(self, returns: np.ndarray):
        """arch's constant-mean GARCH(1,1) of ``returns`` (log returns) in percent."""
        from arch import arch_model

        return arch_model(
            100.0 * np.asarray(returns, dtype=np.float64),
            mean="Constant",
            vol="GARCH",
            p=1,
            q=1,
            dist=GARCH_DISTS[self.hparams["dist"]],
            rescale=False,
        )

    def _fit_returns(self, returns):
        result = self._arch_model(returns).fit(disp="off", show_warning=False)
        if result.convergence_flag != 0:
            raise TrainingDiverged(
                f"garch: arch's optimiser did not converge ({result.optimization_result.message}); "
                f"train on a longer or less extreme date range, or try dist='normal'."
            )
        params = result.params
        self.params = {
            "mu": float(params["mu"]),
            "omega": float(params["omega"]),
            "alpha": float(params["alpha[1]"]),
            "beta": float(params["beta[1]"]),
            "nu": float(params["nu"]) if "nu" in params else 0.0,
        }
        self._check_params()
        sigma = np.asarray(result.conditional_volatility) / 100.0
        z = np.asarray(result.std_resid)
        return z, sigma, {**self.params, "loglikelihood": float(result.loglikelihood)}

    def _check_params(self) -> None:
        p = self.params
        if not (p["omega"] > 0 and p["alpha"] >= 0 and p["beta"] >= 0 and p["alpha"] + p["beta"] < 1):
            raise TrainingDiverged(f"garch: the fitted parameters {p} are not a stationary GARCH(1,1).")
        if self.hparams["dist"] == "t" and not p["nu"] > 2:
            raise TrainingDiverged(f"garch: the fitted Student-t shape nu={p['nu']:.3g} must exceed 2.")

    def innovations(self, shape: tuple[int, ...], rng: np.random.Generator) -> np.ndarray:
        """Standardised (unit-variance) innovations of the fitted distribution."""
        if self.hparams["dist"] == "normal":
            return rng.standard_normal(shape)
        nu = self.params["nu"]
        return rng.standard_t(nu, shape) / np.sqrt(nu / (nu - 2.0))

    def filtered_variance(self, returns: np.ndarray) -> float:
        """The conditional variance of the next return (in percent squared) after ``returns``
        (log returns), filtered with the fitted parameters: arch's own one-step forecast."""
        model = self._arch_model(returns)
        p = self.params
        fixed = [p["mu"], p["omega"], p["alpha"], p["beta"]] + ([p["nu"]] if self.hparams["dist"] == "t" else [])
        forecast = model.fix(fixed).forecast(horizon=1, reindex=False)
        return float(forecast.variance.to_numpy()[-1, 0])

    def _simulate(self, n, n_steps, rng, context=None):
        if context is None:
            burn = int(self.hparams["burn"])
            start = (100.0 * self.companion.sigma[rng.integers(0, len(self.companion.sigma), size=n)]) ** 2
        else:
            burn, start = 0, self.filtered_variance(context[:, RET])
        z = self.innovations((burn + n_steps, n), rng)
        p = self.params
        returns_pct, sigma2 = garch_recursion(p["mu"], p["omega"], p["alpha"], p["beta"], z, burn, start)
        return returns_pct.T / 100.0, z[burn:].T, np.sqrt(sigma2.T) / 100.0

    def _state(self):
        return {**{k: np.array([v]) for k, v in self.params.items()}, **self.companion.state()}

    def _load_state(self, state):
        keys = ("mu", "omega", "alpha", "beta", "nu")
        self._check_fitted_arrays(state, keys)
        self.params = {k: float(state[k][0]) for k in keys}
        try:
            self._check_params()
        except TrainingDiverged as exc:
            raise ValueError(str(exc)) from None
        self.companion = CompanionRows.from_state(state, len(self.scaler.channels))


class Fhs(Garch):
    """Filtered historical simulation (Barone-Adesi et al. 1999): GARCH(1,1)-filtered standardised
    residuals of the training data, bootstrapped and rescaled by the conditional volatility.

    The risk industry's standard: the volatility follows the fitted GARCH from the context's
    state, while the shocks are the market's own, tails and skew included."""

    name = "fhs"

    def innovations(self, shape: tuple[int, ...], rng: np.random.Generator) -> np.ndarray:
        """Standardised residuals of the training data, drawn with replacement."""
        return self.companion.z[rng.integers(0, len(self.companion.z), size=shape)]


class Bootstrap(Generator):
    """Stationary block bootstrap of whole real bars, optionally per regime (Politis-Romano)."""

    name = "bootstrap"
    conditional = True
    hyperparameters = (HyperParameter("block_length", float, 20.0, "mean block length in bars (>= 1)"),)

    def __init__(self, **hparams: Any) -> None:
        super().__init__(**hparams)
        length = self.hparams["block_length"]
        if isinstance(length, bool) or not isinstance(length, (int, float)) or not length >= 1:
            raise ConfigError(f"bootstrap: block_length is the mean block length in bars, >= 1; got {length!r}.")
        self.hparams["block_length"] = float(length)

    def _fit(self, dataset: TrainingData, config: Any) -> TrainReport:
        began = time.perf_counter()
        self.rows = np.asarray(dataset.train, dtype=np.float32)
        self.labels = None if dataset.train_labels is None else np.asarray(dataset.train_labels, dtype=np.int64)
        return TrainReport(self.name, time.perf_counter() - began, steps=1, history=[{"rows": len(self.rows)}])

    def _pools(self, labels: np.ndarray | None, n_steps: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The row pool, and per step the offset and size of the pool its regime draws from."""
        if labels is None:
            return np.arange(len(self.rows)), np.zeros(n_steps, np.int64), np.full(n_steps, len(self.rows))
        names = self.scheme.names
        pools = [np.flatnonzero(self.labels == k) for k in range(len(names))]
        for k in np.unique(labels):
            if len(pools[k]) == 0:
                raise ConfigError(
                    f"No training bar is in regime {names[k]!r}, so the bootstrap cannot draw from it; "
                    f"choose another regime or train on a longer date range."
                )
        sizes = np.array([len(p) for p in pools], dtype=np.int64)
        offsets = np.concatenate([[0], np.cumsum(sizes)[:-1]])
        return np.concatenate(pools), offsets[labels], sizes[labels]

    def _sample_scaled(self, n: int, labels: np.ndarray | None, rng: np.random.Generator, n_steps: int) -> np.ndarray:
        pool, offset, size = self._pools(labels, n_steps)
        new_block = rng.random((n, n_steps)) < 1.0 / self.hparams["block_length"]
        new_block[:, 0] = True
        if labels is not None:
            new_block[:, 1:] |= labels[1:] != labels[:-1]  # a regime switch starts a block
        start = (rng.random((n, n_steps)) * size).astype(np.int64)
        step = np.arange(n_steps)
        block_began = np.maximum.accumulate(np.where(new_block, step, 0), axis=1)
        position = np.take_along_axis(start, block_began, axis=1) + (step - block_began)
        return self.rows[pool[offset + position % size]]

    def _state(self) -> dict[str, np.ndarray]:
        state = {"rows": self.rows}
        if self.labels is not None:
            state["labels"] = self.labels
        return state

    def _load_state(self, state: dict[str, np.ndarray]) -> None:
        rows = state["rows"]
        if rows.ndim != 2 or rows.shape[1] != len(self.scaler.channels) or len(rows) == 0:
            raise ValueError(f"rows have shape {rows.shape}; this model has {len(self.scaler.channels)} channels")
        if not np.isfinite(rows).all():
            raise ValueError("rows hold non-finite values")
        labels = state.get("labels")
        if (labels is None) != (self.scheme is None):
            raise ValueError("regime labels and the regime scheme in config.json disagree")
        if labels is not None and (
            labels.shape != (len(rows),) or labels.min() < 0 or labels.max() >= len(self.scheme.names)
        ):
            raise ValueError("regime labels do not match the rows or the regime scheme")
        self.rows, self.labels = rows.astype(np.float32), None if labels is None else labels.astype(np.int64)
