""":func:`scorecard`: every stylized fact on the real bars and on each synthetic path, then
the distances and scores, gathered into a :class:`~synthmarket.facts.results.Scorecard`."""

from __future__ import annotations

import os
import time
import warnings
from collections.abc import Iterable

import numpy as np
import pandas as pd

from .. import distances as dist
from ..checks import check_seed
from ..errors import ConfigError, DataError, PluginError, SynthmarketError
from ..gaps import GAP_BUSINESS_DAYS, find_gaps
from ..paths import FIELDS, Paths
from .base import StylizedFact, paths_from_bars, real_windows
from .builtin import BUILT_IN_FACTS, available_facts
from .results import CANNOT_JUDGE, MIN_REAL_WINDOW_SHARE, FactResult, Scorecard
from .scores import SCORES, _distances_and_curves

MIN_STEPS = 100
REAL_WINDOW_RESAMPLES = 1000


def _as_returns(synthetic: Paths | np.ndarray | str | os.PathLike) -> tuple[np.ndarray, Paths | None]:
    if isinstance(synthetic, (str, os.PathLike)):
        synthetic = Paths.load(synthetic)
    if isinstance(synthetic, Paths):
        return synthetic.log_returns(), synthetic
    array = np.asarray(synthetic, dtype=float)
    if array.ndim != 2:
        raise DataError(
            f"Synthetic data must be Paths or a (paths, steps) array of log returns; got shape {array.shape}."
        )
    return array, None


def _fact_classes(facts: Iterable[str | type[StylizedFact]] | None) -> list[type[StylizedFact]]:
    """Registered facts, or the named ones (registry names or ``module:Class`` references)."""
    from ..registry import get_registry

    if facts is None:
        return list(available_facts().values())
    chosen = []
    for fact in facts:
        if isinstance(fact, type) and issubclass(fact, StylizedFact):
            chosen.append(fact)
        else:
            chosen.append(get_registry().get("fact", str(fact)))
    return chosen


def _judge(fact: StylizedFact, real: dict, synthetic: dict) -> tuple[bool, bool]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        passed = bool(fact.passes(real, synthetic))
        holds = bool(fact.passes(real, {k: np.array([v]) for k, v in real.items()}))
    return passed, holds


def _on_real_windows(
    fact: StylizedFact,
    real: dict,
    real_bars: pd.DataFrame,
    real_returns: np.ndarray,
    returns: np.ndarray,
    paths: Paths | None,
    seed: int,
) -> tuple[dict[str, np.ndarray], float | None]:
    """The fact's statistics on the real windows as long as the synthetic paths, and how often its rule
    holds on resamples of those windows taken as paths ({} and None when not one window fits)."""
    window_paths = None
    if fact.needs_bars and paths is not None:
        # the paths' own convention: windows of as many bars, returns between the bars of each window
        whole = paths_from_bars(real_bars)
        cut = {k: real_windows(getattr(whole, k)[0], paths.n_steps) for k in FIELDS}
        if cut["close"] is None:
            return {}, None
        window_paths = Paths(**cut, dates=whole.dates[: paths.n_steps])
        windows = np.diff(np.log(window_paths.close), axis=-1)
    else:
        windows = real_windows(real_returns, returns.shape[1])
        if windows is None:
            return {}, None
    if fact.max_paths is not None and len(windows) > fact.max_paths:
        chosen = np.linspace(0, len(windows) - 1, fact.max_paths).round().astype(int)
        windows = windows[chosen]
        window_paths = window_paths.subset(chosen) if window_paths is not None else None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        stats = {k: np.asarray(v, dtype=float) for k, v in fact.compute_paths(windows, window_paths).items()}
        # the rules judge medians over paths: resampling the windows shows how surely the market's own
        # windows, drawn as a set of paths, pass the rule (a perfect model's paths would do as well)
        draws = np.random.default_rng(seed).integers(0, len(windows), (REAL_WINDOW_RESAMPLES, len(windows)))
        rate = float(np.mean([bool(fact.passes(real, {k: v[rows] for k, v in stats.items()})) for rows in draws]))
    return stats, rate


def _run_fact(
    cls: type[StylizedFact],
    real_bars: pd.DataFrame,
    real_returns: np.ndarray,
    returns: np.ndarray,
    paths: Paths | None,
    rng: np.random.Generator,
    seed: int,
) -> FactResult:
    start = time.perf_counter()
    fact = cls()
    common = dict(name=cls.name, description=cls.description(), rule=cls.rule(), labels=dict(cls.statistics))
    reason = fact.not_applicable(real_bars, paths)
    if reason is not None:
        return FactResult(**common, real={}, synthetic={}, passed=None, holds_on_real=None, note=reason)
    note = ""
    total = returns.shape[0]
    if cls.max_paths is not None and total > cls.max_paths:
        chosen = np.sort(rng.choice(total, cls.max_paths, replace=False))
        returns = returns[chosen]
        paths = paths.subset(chosen) if paths is not None else None
        note = f"computed on {cls.max_paths} randomly chosen paths of {total}"
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            real = {k: float(v) for k, v in fact.compute(real_returns, real_bars if cls.needs_bars else None).items()}
            synthetic = {k: np.asarray(v, dtype=float) for k, v in fact.compute_paths(returns, paths).items()}
        passed, holds = _judge(fact, real, synthetic)
        window_stats, window_rate = _on_real_windows(fact, real, real_bars, real_returns, returns, paths, seed)
    except SynthmarketError:
        raise
    except Exception as exc:
        if cls in BUILT_IN_FACTS:
            raise
        raise PluginError(
            f"The stylized fact {cls.name!r} ({cls.__module__}.{cls.__qualname__}) failed: {type(exc).__name__}: "
            f"{exc}. Fix that plugin, choose other facts (--fact), or leave the plugin out with "
            f"SYNTHMARKET_LOAD_PLUGINS."
        ) from exc
    result = FactResult(
        **common,
        real=real,
        synthetic=synthetic,
        passed=passed,
        holds_on_real=holds,
        note=note,
        real_windows=window_stats,
        real_windows_pass_rate=window_rate,
    )
    if result.holds_on_real_windows is False:
        result.passed = None
        result.note = "; ".join(
            filter(
                None,
                [
                    note,
                    (
                        f"{CANNOT_JUDGE}: the real windows of {returns.shape[1]} steps, resampled as sets of paths, pass "
                        f"the rule {window_rate:.0%} of the time (at least {MIN_REAL_WINDOW_SHARE:.0%} must)"
                    ),
                ],
            )
        )
    result.seconds = time.perf_counter() - start
    return result


def scorecard(
    real: pd.DataFrame,
    synthetic: Paths | np.ndarray | str | os.PathLike,
    *,
    facts: Iterable[str | type[StylizedFact]] | None = None,
    scores: bool | Iterable[str] = True,
    max_lag: int = dist.DEFAULT_MAX_LAG,
    seed: int = 0,
) -> Scorecard:
    """Judge synthetic paths against real bars: every stylized fact, the distances and scores.

    Parameters
    ----------
    real : pd.DataFrame
        Real OHLCV bars, as from :func:`synthmarket.data.load_data`.
    synthetic : Paths, np.ndarray, str or PathLike
        The synthetic paths, a scenario file (checked as ``synthmarket facts`` checks it, see
        :meth:`Paths.load`), or a (paths, steps) array of log returns (then the facts that
        need bars are not judged). Paths in memory are judged as they are: invalid bars fail
        the ``bar_validity`` fact.
    facts : iterable of str or StylizedFact subclasses, optional
        Which facts to compute; default every registered fact.
    scores : bool or iterable of str
        Also compute the window scores (a few seconds): True for all, or some of
        ``"memorisation"``, ``"discriminative"``, ``"predictive"``.
    max_lag : int
        Largest lag of the ACF and leverage curves and distances.
    seed : int
        Seed of every random choice (subsamples, classifier training).

    Returns
    -------
    Scorecard
    """
    if not isinstance(real, pd.DataFrame) or "close" not in real.columns:
        raise DataError(
            "The real data must be an OHLCV DataFrame with a 'close' column (see synthmarket.data.load_data)."
        )
    real_returns = np.diff(np.log(real["close"].to_numpy(dtype=float)))
    gaps = find_gaps(real)
    real_returns = np.delete(real_returns, [gap.after - 1 for gap in gaps])
    returns, paths = _as_returns(synthetic)
    if real_returns.size < MIN_STEPS:
        raise DataError(f"Only {real_returns.size} real returns; the stylized facts need at least {MIN_STEPS}.")
    if returns.shape[1] < MIN_STEPS or returns.shape[0] < 1:
        raise DataError(
            f"Synthetic paths of {returns.shape[1]} steps are too short for the stylized facts; "
            f"sample at least {MIN_STEPS} steps (a trading year is 252)."
        )
    if not np.isfinite(returns).all():
        raise DataError("Synthetic returns contain NaN or infinite values (a path with a non-positive close?).")
    if isinstance(scores, str):
        scores = [scores]
    wanted = set(SCORES) if scores is True else set() if scores is False else set(scores)
    unknown = wanted - set(SCORES)
    if unknown:
        raise ConfigError(f"Unknown score(s) {', '.join(sorted(unknown))}; choose from {', '.join(SCORES)}.")
    rng = np.random.default_rng(check_seed(seed))
    results, timings, notes = [], {}, []
    if gaps:
        longest = max(gaps, key=lambda gap: gap.days)
        notes.append(
            f"The real bars have {len(gaps)} gap(s) of more than {GAP_BUSINESS_DAYS} business days without a "
            f"bar (the longest {longest}); the return across each is left out, not counted as one day's."
        )
    for cls in _fact_classes(facts):
        result = _run_fact(cls, real, real_returns, returns, paths, rng, seed)
        results.append(result)
        timings[f"fact: {cls.name}"] = result.seconds
        if result.note and result.passed is not None:
            notes.append(f"{cls.name}: {result.note}.")
        if result.passed is None:
            notes.append(f"{cls.name} not judged: {result.note}.")

    distances, curves = _distances_and_curves(real, real_returns, returns, max_lag, wanted, seed, timings, notes, rng)
    return Scorecard(
        results=results,
        distances=distances,
        n_paths=returns.shape[0],
        n_steps=returns.shape[1],
        notes=notes,
        timings=timings,
        curves=curves,
    )
