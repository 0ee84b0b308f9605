"""Distances between real daily log returns and a set of synthetic return paths.

Everything here is vectorised numpy (autocorrelations through the FFT), so a
1,000 x 2,500 set of paths is scored in about a second. These numbers are what a
training loop can monitor and what the scorecard reports beside the stylized facts.

- ``w1_k``: Wasserstein-1 distance between the real series' rolling (overlapping) k-day
  sums and the pooled k-day sums of every synthetic path.
- ``acf_r``, ``acf_abs``, ``acf_sq``: L2 norm, over lags 1..max_lag, of the real ACF of
  r, |r| and r^2 minus the mean synthetic ACF.
- ``leverage``: the same for corr(r_t, r_{t+k}^2), k = 1..max_lag.
- ``dy_k``: the DY metric of Quant GANs (Wiese et al., 2020) for k-day sums.

All autocorrelations use the sample convention of ``statsmodels.tsa.stattools.acf``
(demeaned, divided by the full-length variance, ``adjusted=False``).

Window scores (20-day windows, seeded, a few seconds on CPU; torch is imported only here):
:func:`memorisation_score` (nearest real window against real-to-real distances),
:func:`discriminative_score` (a GRU telling real from synthetic windows, as TimeGAN) and
:func:`predictive_score` (train on synthetic, test on real).
"""

from __future__ import annotations

from contextlib import contextmanager

import numpy as np
from scipy import fft as sp_fft

from .errors import DataError

DEFAULT_LAGS = (1, 5, 20, 100)
DEFAULT_MAX_LAG = 250
DY_OBSERVATIONS_PER_BIN = 5


def _as_real(real: np.ndarray) -> np.ndarray:
    real = np.asarray(real, dtype=float)
    if real.ndim != 1:
        raise DataError(f"Real returns must be a 1-D array; got shape {real.shape}.")
    if not np.isfinite(real).all():
        raise DataError("Real returns contain NaN or infinite values; drop or fill them first.")
    return real


def _as_synthetic(synthetic: np.ndarray) -> np.ndarray:
    synthetic = np.asarray(synthetic, dtype=float)
    if synthetic.ndim == 1:
        synthetic = synthetic[None, :]
    if synthetic.ndim != 2:
        raise DataError(f"Synthetic returns must be a (paths, steps) array; got shape {synthetic.shape}.")
    if not np.isfinite(synthetic).all():
        raise DataError("Synthetic returns contain NaN or infinite values.")
    return synthetic


def _spectra(x: np.ndarray, size: int) -> tuple[np.ndarray, np.ndarray]:
    """FFT of the demeaned series (zero-padded to ``size``) and its sum of squares."""
    centred = x - x.mean(axis=-1, keepdims=True)
    return sp_fft.rfft(centred, size, axis=-1), (centred * centred).sum(axis=-1, keepdims=True)


def _correlate(fx, ssx, fy, ssy, size: int, max_lag: int) -> np.ndarray:
    lagged = sp_fft.irfft(np.conj(fx) * fy, size, axis=-1)[..., : max_lag + 1]
    scale = np.sqrt(ssx * ssy)
    with np.errstate(invalid="ignore", divide="ignore"):
        out = lagged / scale
    return np.where(scale > 0, out, 0.0)


def _size(n: int) -> int:
    return sp_fft.next_fast_len(2 * n - 1, real=True)


def cross_correlation(x: np.ndarray, y: np.ndarray, max_lag: int) -> np.ndarray:
    """corr(x_t, y_{t+k}) for k = 0..max_lag along the last axis.

    Uses full-sample means and standard deviations and divides the lagged sum by the full
    length (the ``adjusted=False`` convention of statsmodels' ``acf`` and ``ccf``), so
    ``cross_correlation(x, x, m)`` equals ``acf(x, nlags=m)``. A constant series has
    correlation 0 at every lag.
    """
    x = np.asarray(x, dtype=float)
    y = np.asarray(y, dtype=float)
    n = x.shape[-1]
    size = _size(n)
    return _correlate(*_spectra(x, size), *_spectra(y, size), size, min(max_lag, n - 1))


def acf(x: np.ndarray, max_lag: int, mask: np.ndarray | None = None, min_pairs: int = 1) -> np.ndarray:
    """Sample autocorrelation at lags 0..max_lag along the last axis (statsmodels convention).

    With ``mask`` (True where a day counts, e.g. the days of one regime) only pairs of days
    both in it count: the masked days' mean is removed, and each lag's products are averaged
    over its pairs and divided by the masked days' variance (statsmodels' ``adjusted=True``),
    so the days between the masked stretches are skipped. A lag with fewer than ``min_pairs``
    pairs is NaN.
    """
    x = np.asarray(x, dtype=float)
    n = x.shape[-1]
    size = _size(n)
    lags = min(max_lag, n - 1)
    if mask is None:
        spectrum = _spectra(x, size)
        return _correlate(*spectrum, *spectrum, size, lags)
    inside = np.broadcast_to(np.asarray(mask, dtype=bool), x.shape)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.where(inside, x, 0.0).sum(axis=-1, keepdims=True) / inside.sum(axis=-1, keepdims=True)
        centred = np.where(inside, x - mean, 0.0)
        spectrum, days = sp_fft.rfft(centred, size, axis=-1), sp_fft.rfft(inside.astype(float), size, axis=-1)
        products = sp_fft.irfft(np.conj(spectrum) * spectrum, size, axis=-1)[..., : lags + 1]
        pairs = np.rint(sp_fft.irfft(np.conj(days) * days, size, axis=-1)[..., : lags + 1])
        covariance = products / pairs
        out = covariance / covariance[..., :1]
    return np.where((pairs >= max(min_pairs, 1)) & (covariance[..., :1] > 0), out, np.nan)


def leverage(r: np.ndarray, max_lag: int) -> np.ndarray:
    """corr(r_t, r_{t+k}^2) at lags 0..max_lag along the last axis."""
    r = np.asarray(r, dtype=float)
    return cross_correlation(r, r * r, max_lag)


def dependence_curves(r: np.ndarray, max_lag: int) -> dict[str, np.ndarray]:
    """ACF of r, |r|, r^2 and the leverage curve at lags 0..max_lag, sharing the FFTs.

    Returns a dict with keys ``acf_r``, ``acf_abs``, ``acf_sq`` and ``leverage``; each
    value has the shape of ``r`` with the last axis replaced by ``max_lag + 1`` lags.
    """
    r = np.asarray(r, dtype=float)
    n = r.shape[-1]
    size = _size(n)
    m = min(max_lag, n - 1)
    s_r, s_abs, s_sq = (_spectra(x, size) for x in (r, np.abs(r), r * r))
    return {
        "acf_r": _correlate(*s_r, *s_r, size, m),
        "acf_abs": _correlate(*s_abs, *s_abs, size, m),
        "acf_sq": _correlate(*s_sq, *s_sq, size, m),
        "leverage": _correlate(*s_r, *s_sq, size, m),
    }


def rolling_sums(x: np.ndarray, k: int) -> np.ndarray:
    """Overlapping k-step sums along the last axis: shape (..., n - k + 1)."""
    x = np.asarray(x, dtype=float)
    if k == 1:
        return x
    c = np.cumsum(x, axis=-1)
    zero = np.zeros(x.shape[:-1] + (1,))
    c = np.concatenate([zero, c], axis=-1)
    return c[..., k:] - c[..., :-k]


def wasserstein1(u: np.ndarray, v: np.ndarray) -> float:
    """Wasserstein-1 distance between two empirical distributions: the integral of |F_u - F_v|.

    The smaller sample is inserted into the sorted larger one, so the cost is one sort of the
    larger sample.
    """
    u = np.sort(np.ravel(np.asarray(u, dtype=float)))
    v = np.sort(np.ravel(np.asarray(v, dtype=float)))
    if u.size == 0 or v.size == 0:
        raise DataError("Wasserstein distance needs two non-empty samples.")
    if u.size > v.size:
        u, v = v, u
    where = np.searchsorted(v, u, side="left") + np.arange(u.size)
    grid = np.insert(v, where - np.arange(u.size), u)
    steps = np.full(grid.size, -1.0 / v.size)
    steps[where] = 1.0 / u.size
    gap = np.cumsum(steps)[:-1]  # F_u - F_v just right of each grid point
    return float(np.abs(gap) @ np.diff(grid))


def dy_metric(real: np.ndarray, synthetic: np.ndarray, per_bin: int = DY_OBSERVATIONS_PER_BIN) -> float:
    """The DY metric: sum over bins of |log p_real - log p_synthetic|.

    Bins are cut at the quantiles of ``real`` so that each holds about ``per_bin`` real
    observations (outer edges at the real minimum and maximum); densities are counts
    divided by (sample size x bin width). A bin the synthetic sample leaves empty counts as
    holding half an observation, so the metric stays finite and still punishes it.
    This is the metric's usual reading; Quant GANs does not say how empty bins are treated.
    """
    real = np.sort(np.ravel(np.asarray(real, dtype=float)))
    synthetic = np.sort(np.ravel(np.asarray(synthetic, dtype=float)))
    n_bins = max(1, real.size // per_bin)
    edges = np.unique(np.quantile(real, np.linspace(0.0, 1.0, n_bins + 1)))
    if edges.size < 2:
        return 0.0
    widths = np.diff(edges)

    def counts(sample: np.ndarray) -> np.ndarray:
        cum = np.searchsorted(sample, edges, side="left").astype(float)
        cum[-1] = np.searchsorted(sample, edges[-1], side="right")  # the last bin is closed
        return np.diff(cum)

    p_real = np.maximum(counts(real), 0.5) / (real.size * widths)
    p_synth = np.maximum(counts(synthetic), 0.5) / (synthetic.size * widths)
    return float(np.sum(np.abs(np.log(p_real) - np.log(p_synth))))


def _clip_max_lag(max_lag: int, *lengths: int) -> int:
    return max(1, min(max_lag, min(lengths) - 2))


def _check_lags(lags, n_real: int, n_steps: int) -> tuple[int, ...]:
    lags = tuple(int(k) for k in lags)
    too_long = [k for k in lags if k < 1 or k >= min(n_real, n_steps)]
    if too_long:
        raise DataError(
            f"Horizon(s) {too_long} do not fit series of {n_real} real and {n_steps} synthetic steps; "
            f"use horizons between 1 and {min(n_real, n_steps) - 1}, or longer series."
        )
    return lags


def return_distances(
    real: np.ndarray,
    synthetic: np.ndarray,
    *,
    lags=DEFAULT_LAGS,
    max_lag: int = DEFAULT_MAX_LAG,
    curves: tuple[dict, dict] | None = None,
) -> dict[str, float]:
    """Distances between real log returns and synthetic return paths.

    Parameters
    ----------
    real : np.ndarray
        1-D array of real daily log returns.
    synthetic : np.ndarray
        (paths, steps) array of synthetic daily log returns.
    lags : sequence of int
        Horizons k of the Wasserstein distances ``w1_k``.
    max_lag : int
        Largest lag of the ACF and leverage distances, clipped to what the lengths allow.
    curves : (dict, dict), optional
        :func:`dependence_curves` of ``real`` and of ``synthetic`` already computed (with at
        least the clipped ``max_lag`` lags), to reuse instead of recomputing.

    Returns
    -------
    dict
        ``w1_<k>`` per horizon, ``acf_r``, ``acf_abs``, ``acf_sq`` and ``leverage``.
    """
    real = _as_real(real)
    synthetic = _as_synthetic(synthetic)
    lags = _check_lags(lags, real.size, synthetic.shape[1])
    out: dict[str, float] = {}
    for k in lags:
        out[f"w1_{k}"] = wasserstein1(rolling_sums(real, k), rolling_sums(synthetic, k))
    m = _clip_max_lag(max_lag, real.size, synthetic.shape[1])
    real_curves, synthetic_curves = curves if curves is not None else (
        dependence_curves(real, m), dependence_curves(synthetic, m)
    )
    for key in ("acf_r", "acf_abs", "acf_sq", "leverage"):
        gap = real_curves[key][1 : m + 1] - synthetic_curves[key][:, 1 : m + 1].mean(axis=0)
        out[key] = float(np.linalg.norm(gap))
    return out


def dy_distances(
    real: np.ndarray, synthetic: np.ndarray, *, lags=DEFAULT_LAGS, per_bin: int = DY_OBSERVATIONS_PER_BIN
) -> dict[str, float]:
    """The DY metric of Quant GANs between real and pooled synthetic k-day sums, keys ``dy_<k>``."""
    real = _as_real(real)
    synthetic = _as_synthetic(synthetic)
    lags = _check_lags(lags, real.size, synthetic.shape[1])
    return {f"dy_{k}": dy_metric(rolling_sums(real, k), rolling_sums(synthetic, k), per_bin) for k in lags}


def all_distances(
    real: np.ndarray, synthetic: np.ndarray, *, lags=DEFAULT_LAGS, max_lag: int = DEFAULT_MAX_LAG
) -> dict[str, float]:
    """:func:`return_distances` and :func:`dy_distances` in one dictionary."""
    return {**return_distances(real, synthetic, lags=lags, max_lag=max_lag), **dy_distances(real, synthetic, lags=lags)}


# --- window-based scores: memorisation (nearest neighbours), discriminative and predictive (torch) ---

SCORE_WINDOW = 20
COPY_QUANTILE = 0.01
MEMORISATION_LIMIT = 0.05


def _blocks_split(n: int, window: int, rng: np.random.Generator, test_fraction: float = 0.3):
    """Contiguous blocks of the real series assigned at random to train or test.

    Returns (train_starts, test_starts): window start indices that never cross a block
    boundary, train windows every ``window // 4`` steps, test windows non-overlapping. No
    test window shares an observation with a training window.
    """
    block = 10 * window
    edges = np.arange(0, n - window + 1, block)
    is_test = rng.random(edges.size) < test_fraction
    if is_test.all() or not is_test.any():  # keep both sides non-empty (callers ensure >= 4 blocks)
        is_test[:] = False
        is_test[rng.integers(edges.size)] = True
    train, test = [], []
    for start, to_test in zip(edges, is_test):
        stop = min(start + block, n) - window
        if stop < start:
            continue
        if to_test:
            test.extend(range(start, stop + 1, window))
        else:
            train.extend(range(start, stop + 1, max(1, window // 4)))
    return np.asarray(train, dtype=int), np.asarray(test, dtype=int)


def _windows_at(series: np.ndarray, starts: np.ndarray, window: int) -> np.ndarray:
    return series[starts[:, None] + np.arange(window)]


def _sample_windows(synthetic: np.ndarray, count: int, window: int, rng: np.random.Generator) -> np.ndarray:
    rows = rng.integers(0, synthetic.shape[0], count)
    starts = rng.integers(0, synthetic.shape[1] - window + 1, count)
    return synthetic[rows[:, None], starts[:, None] + np.arange(window)]


def _check_window(real: np.ndarray, synthetic: np.ndarray, window: int, minimum_real: int) -> None:
    if synthetic.shape[1] < window:
        raise DataError(f"Synthetic paths of {synthetic.shape[1]} steps are shorter than the score window ({window}).")
    if real.size < minimum_real:
        raise DataError(
            f"The window scores need at least {minimum_real} real returns; got {real.size}. Use a longer date range."
        )


def _nearest_sq_distances(queries: np.ndarray, reference: np.ndarray, exclude_band: int | None = None) -> np.ndarray:
    """Squared Euclidean distance from each query row to its nearest reference row (chunked).

    With ``exclude_band``, queries are the reference rows themselves and row ``i`` ignores
    rows ``j`` with ``|i - j| < exclude_band`` (windows that share observations).
    """
    ref_sq = (reference * reference).sum(axis=1)
    out = np.empty(len(queries))
    chunk = 512
    for lo in range(0, len(queries), chunk):
        q = queries[lo : lo + chunk]
        d = (q * q).sum(axis=1)[:, None] + ref_sq[None, :] - 2.0 * q @ reference.T
        if exclude_band is not None:
            rows = np.arange(lo, lo + len(q))[:, None]
            d[np.abs(rows - np.arange(len(reference))[None, :]) < exclude_band] = np.inf
        out[lo : lo + chunk] = np.maximum(d.min(axis=1), 0.0)
    return out


def _unit_rows(windows: np.ndarray) -> np.ndarray:
    norms = np.sqrt((windows * windows).sum(axis=1, keepdims=True))
    return np.divide(windows, norms, out=np.zeros_like(windows), where=norms > 0)


def memorisation_score(
    real: np.ndarray, synthetic: np.ndarray, *, window: int = SCORE_WINDOW, n_windows: int = 1000, seed: int = 0
) -> dict[str, float]:
    """How close synthetic windows come to real ones, relative to real-to-real distances.

    Every real window of ``window`` returns is a reference. Windows are scaled to unit
    length, so the distance compares their shapes: a replayed window is at distance 0 from
    its source, while a generator that is merely too calm (windows near zero) is not
    mistaken for one that copies. For ``n_windows`` synthetic windows drawn at random, the
    distance to the nearest real window is compared with the real windows' own
    nearest-neighbour distances (ignoring windows that overlap in time).

    Returns
    -------
    dict
        ``memorisation_nn_ratio``: median synthetic NN distance / median real NN distance
        (about 1 for a generator that does not copy; near 0 for one that replays);
        ``memorisation_copy_share``: share of synthetic windows closer to a real window than
        the closest 1% of real windows are to each other (about 0.01 without copying).
        The generator is flagged as memorising when the copy share exceeds
        :data:`MEMORISATION_LIMIT`.
    """
    real = _as_real(real)
    synthetic = _as_synthetic(synthetic)
    _check_window(real, synthetic, window, 4 * window)
    rng = np.random.default_rng(seed)
    reference = _unit_rows(np.lib.stride_tricks.sliding_window_view(real, window))
    real_nn = np.sqrt(_nearest_sq_distances(reference, reference, exclude_band=window))
    queries = _unit_rows(_sample_windows(synthetic, n_windows, window, rng))
    synth_nn = np.sqrt(_nearest_sq_distances(queries, reference))
    threshold = np.quantile(real_nn, COPY_QUANTILE)
    return {
        "memorisation_nn_ratio": float(np.median(synth_nn) / np.median(real_nn)),
        "memorisation_copy_share": float(np.mean(synth_nn < threshold)),
    }


@contextmanager
def _seeded_single_thread(seed: int):
    """Torch seeded and on one thread (small models run faster so on a shared CPU); restored after."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            yield torch.Generator().manual_seed(seed)
    finally:
        torch.set_num_threads(threads)


def _train_torch(model, inputs, targets, loss_fn, *, steps: int, batch: int, generator) -> None:
    import torch

    optimiser = torch.optim.Adam(model.parameters(), lr=5e-3)
    n = inputs.shape[0]
    for _ in range(steps):
        idx = torch.randint(0, n, (min(batch, n),), generator=generator)
        optimiser.zero_grad()
        loss = loss_fn(model(inputs[idx]), targets[idx])
        loss.backward()
        optimiser.step()


def _gru_head(n_inputs: int, hidden: int):
    import torch

    class GRUHead(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.gru = torch.nn.GRU(n_inputs, hidden, batch_first=True)
            self.out = torch.nn.Linear(hidden, 1)

        def forward(self, x):
            _, h = self.gru(x)
            return self.out(h[-1]).squeeze(-1)

    return GRUHead()


def _as_sequence(windows: np.ndarray):
    """(N, L) standardised returns -> float32 tensor (N, L, 2) of (r, |r|)."""
    import torch

    return torch.as_tensor(np.stack([windows, np.abs(windows)], axis=-1), dtype=torch.float32)


def _held_out_real_windows(
    real: np.ndarray, synthetic: np.ndarray, length: int, window: int, seed: int
) -> tuple[np.ndarray, float, np.ndarray, np.ndarray, np.random.Generator]:
    """The checked inputs of a classifier score, split for training and testing.

    Returns the synthetic (paths, steps) array, the real standard deviation, the real train
    and test windows of ``length`` standardised returns (contiguous blocks, see
    :func:`_blocks_split`) and the generator that drew the split, to draw synthetic windows on.
    """
    real = _as_real(real)
    synthetic = _as_synthetic(synthetic)
    _check_window(real, synthetic, length, 40 * window)
    rng = np.random.default_rng(seed)
    scale = real.std() or 1.0
    train_starts, test_starts = _blocks_split(real.size, length, rng)
    standardised = real / scale
    train, test = _windows_at(standardised, train_starts, length), _windows_at(standardised, test_starts, length)
    return synthetic, scale, train, test, rng


def discriminative_score(
    real: np.ndarray,
    synthetic: np.ndarray,
    *,
    window: int = SCORE_WINDOW,
    steps: int = 250,
    hidden: int = 16,
    seed: int = 0,
) -> dict[str, float]:
    """|accuracy - 0.5| of a small GRU classifier telling real windows from synthetic ones.

    As TimeGAN's post-hoc evaluation: real windows come from contiguous blocks of the real
    series assigned at random to train (70%) or test (30%); as many synthetic windows are
    drawn from the first 70% of the paths for training and from the rest for testing. Both
    are standardised by the real standard deviation. 0 means indistinguishable, 0.5 means
    perfectly separable.

    Returns
    -------
    dict
        ``discriminative_score`` and ``discriminative_accuracy`` (on held-out windows).
    """
    import torch

    synthetic, scale, real_train, real_test, rng = _held_out_real_windows(real, synthetic, window, window, seed)
    split = max(1, int(round(0.7 * synthetic.shape[0]))) if synthetic.shape[0] > 1 else 1
    synth_train = synthetic[:split] / scale
    synth_test = synthetic[split:] / scale if synthetic.shape[0] > 1 else synth_train
    fake_train = _sample_windows(synth_train, len(real_train), window, rng)
    fake_test = _sample_windows(synth_test, len(real_test), window, rng)
    x_train = _as_sequence(np.concatenate([real_train, fake_train]))
    y_train = torch.as_tensor(np.r_[np.ones(len(real_train)), np.zeros(len(fake_train))], dtype=torch.float32)
    x_test = _as_sequence(np.concatenate([real_test, fake_test]))
    y_test = np.r_[np.ones(len(real_test)), np.zeros(len(fake_test))]
    with _seeded_single_thread(seed) as generator:
        model = _gru_head(2, hidden)
        _train_torch(
            model, x_train, y_train, torch.nn.functional.binary_cross_entropy_with_logits,
            steps=steps, batch=128, generator=generator,
        )
        with torch.no_grad():
            predicted = (model(x_test) > 0).numpy()
    accuracy = float(np.mean(predicted == y_test))
    return {"discriminative_score": abs(accuracy - 0.5), "discriminative_accuracy": accuracy}


def predictive_score(
    real: np.ndarray,
    synthetic: np.ndarray,
    *,
    window: int = SCORE_WINDOW,
    steps: int = 250,
    hidden: int = 16,
    seed: int = 0,
) -> dict[str, float]:
    """Train on synthetic, test on real: predicting the next |r| from the previous returns.

    A small GRU reads ``window`` standardised returns and predicts the next absolute
    return. One copy is trained on synthetic windows, one on real training windows; both
    are scored by mean absolute error on the same held-out real windows (contiguous blocks,
    as in :func:`discriminative_score`).

    Returns
    -------
    dict
        ``predictive_tstr_mae`` (trained on synthetic), ``predictive_trtr_mae`` (trained on
        real) and ``predictive_ratio`` = tstr / trtr (about 1 when the synthetic data teach
        what the real data teach; larger is worse).
    """
    import torch

    synthetic, scale, real_train, real_test, rng = _held_out_real_windows(real, synthetic, window + 1, window, seed)
    fake_train = _sample_windows(synthetic / scale, max(len(real_train), 1000), window + 1, rng)

    def fit_and_score(train: np.ndarray) -> float:
        with _seeded_single_thread(seed) as generator:
            model = _gru_head(2, hidden)
            targets = torch.as_tensor(np.abs(train[:, -1]), dtype=torch.float32)
            _train_torch(
                model, _as_sequence(train[:, :-1]), targets, torch.nn.functional.l1_loss,
                steps=steps, batch=128, generator=generator,
            )
            with torch.no_grad():
                predicted = model(_as_sequence(real_test[:, :-1])).numpy()
        return float(np.mean(np.abs(predicted - np.abs(real_test[:, -1]))))

    tstr = fit_and_score(fake_train)
    trtr = fit_and_score(real_train)
    return {"predictive_tstr_mae": tstr, "predictive_trtr_mae": trtr, "predictive_ratio": tstr / trtr}
