"""Window scores: how synthetic windows of returns compare with real ones, window by window.

20-day windows, seeded, a few seconds on CPU; torch is imported inside the classifier scores only:

- :func:`memorisation_score`: nearest real window against real-to-real distances;
- :func:`discriminative_score`: a GRU telling real from synthetic windows, as TimeGAN;
- :func:`predictive_score`: train on synthetic, test on real.
"""

from __future__ import annotations

from contextlib import contextmanager

import numpy as np

from .distances import as_real_returns, as_synthetic_returns
from .errors import DataError

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
    real = as_real_returns(real)
    synthetic = as_synthetic_returns(synthetic)
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
    real = as_real_returns(real)
    synthetic = as_synthetic_returns(synthetic)
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
            model,
            x_train,
            y_train,
            torch.nn.functional.binary_cross_entropy_with_logits,
            steps=steps,
            batch=128,
            generator=generator,
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
                model,
                _as_sequence(train[:, :-1]),
                targets,
                torch.nn.functional.l1_loss,
                steps=steps,
                batch=128,
                generator=generator,
            )
            with torch.no_grad():
                predicted = model(_as_sequence(real_test[:, :-1])).numpy()
        return float(np.mean(np.abs(predicted - np.abs(real_test[:, -1]))))

    tstr = fit_and_score(fake_train)
    trtr = fit_and_score(real_train)
    return {"predictive_tstr_mae": tstr, "predictive_trtr_mae": trtr, "predictive_ratio": tstr / trtr}
