"""The walk-forward calibration test: stand on each day of a period the model never saw, sample
paths from the market up to that day, and see where the realised outcome falls among them.

For every origin ``t`` (every ``stride``-th trading day of ``start..end`` whose outcome is
known) and every horizon ``h``, the predicted distribution is the ``n_paths`` sampled log
returns over ``h`` bars from the close of ``t``; the realised one is ``log(close[t+h] /
close[t])``. The samples are kept (float32), so that every score of :mod:`.scores` can be
computed again. Volatility over the horizon is compared as realised volatility: the square
root of the sum of squared daily log returns, its expectation over the sampled paths
against the realised one. Work is cut into batches of origins run by the same executor as the
Monte-Carlo runner (local processes or Ray) and streamed to ``out`` as they finish; a resumed
run skips the origins stored.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import time
import uuid
from collections.abc import Sequence
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..context import KEPT
from ..errors import ConfigError, ContextUnreadable, DataError
from ..executor import map_unordered
from ..jsonutil import json_default
from ..outdir import claim, write_text_atomic

FORMAT = "synthmarket-calibration/2"  # 2: with the predicted and realised volatilities
MANIFEST = "calibration.json"
SUMMARY = "summary.json"
PARTS = "parts"
SAMPLES = "samples.npz"
SCORES = "scores.csv"
RET = 0  # the close-return channel of the features
PART_ARRAYS = ("origins", "realised", "samples", "predicted_vol", "realised_vol")


@dataclass(frozen=True)
class _Task:
    model: Any
    bars: pd.DataFrame  # the data: the contexts, and the closes of the outcomes
    origins: tuple[int, ...]  # row numbers of the origins
    horizons: tuple[int, ...]
    n_paths: int
    seed: int
    context_bars: int


@dataclass(frozen=True)
class _Done:
    origins: np.ndarray  # row numbers
    realised: np.ndarray  # (n, H)
    samples: np.ndarray  # (n, H, n_paths) float32
    predicted_vol: np.ndarray  # (n, H): sqrt of the paths' mean sum of squared daily returns
    realised_vol: np.ndarray  # (n, H): sqrt of the realised sum of squared daily returns

    def rows(self) -> dict[int, tuple[np.ndarray, ...]]:
        """Each origin's (realised, samples, predicted_vol, realised_vol)."""
        columns = (self.realised, self.samples, self.predicted_vol, self.realised_vol)
        return {int(o): tuple(c[k] for c in columns) for k, o in enumerate(self.origins)}


def _run(task: _Task) -> _Done:
    """Sample every origin of ``task`` from its context (a worker's job)."""
    longest = max(task.horizons)
    steps = np.asarray(task.horizons) - 1
    log_closes = np.log(task.bars["close"].to_numpy(dtype=np.float64))
    n, horizons = len(task.origins), np.asarray(task.horizons)
    realised, predicted_vol, realised_vol = (np.empty((n, len(horizons))) for _ in range(3))
    samples = np.empty((n, len(horizons), task.n_paths), dtype=np.float32)
    for k, row in enumerate(task.origins):
        context = task.bars.iloc[max(0, row - task.context_bars) : row + 1]
        seed = int(np.random.SeedSequence([task.seed, row]).generate_state(1)[0])
        try:
            returns = task.model.sample(task.n_paths, longest, seed=seed, context=context)[:, :, RET]
        except ContextUnreadable as exc:
            raise ContextUnreadable(f"The origin {context.index[-1]:%Y-%m-%d}: {exc}") from None
        returns = returns.astype(np.float64)
        samples[k] = np.cumsum(returns, axis=1)[:, steps].T
        predicted_vol[k] = np.sqrt(np.cumsum(returns**2, axis=1)[:, steps].mean(axis=0))
        ahead = np.diff(log_closes[row : row + longest + 1])
        realised[k] = log_closes[row + horizons] - log_closes[row]
        realised_vol[k] = np.sqrt(np.cumsum(ahead**2)[steps])
    return _Done(np.asarray(task.origins), realised, samples, predicted_vol, realised_vol)


@dataclass
class CalibrationResult:
    """What :func:`calibrate` returns: the origins' dates, the horizons, the realised and the
    sampled returns, the predicted and realised volatilities over each horizon, and the
    scores (:func:`.scores.calibration_summary`) by horizon."""

    dates: pd.DatetimeIndex
    horizons: tuple[int, ...]
    realised: np.ndarray  # (n_origins, H)
    samples: np.ndarray  # (n_origins, H, n_paths)
    predicted_vol: np.ndarray  # (n_origins, H)
    realised_vol: np.ndarray  # (n_origins, H)
    summary: dict[str, Any]
    out: Path | None = None

    def scores(self) -> pd.DataFrame:
        """One row per origin and horizon: the realised return, its PIT, VaR 1 % / 5 % and hits,
        the predicted and realised volatility and the CRPS."""
        from .scores import crps, pit, var_hits

        rows = []
        for j, h in enumerate(self.horizons):
            s, r = self.samples[:, j, :].astype(np.float64), self.realised[:, j]
            frame = {"date": self.dates, "horizon": h, "realised": r, "pit": pit(s, r)}
            for alpha in (0.01, 0.05):
                var, hits = var_hits(s, r, alpha)
                frame[f"var_{alpha:g}"], frame[f"hit_{alpha:g}"] = var, hits
            frame["predicted_vol"], frame["realised_vol"] = self.predicted_vol[:, j], self.realised_vol[:, j]
            frame["crps"] = crps(s, r)
            rows.append(pd.DataFrame(frame))
        return pd.concat(rows, ignore_index=True)


def calibrate(
    model,
    data: pd.DataFrame | str,
    *,
    start,
    end,
    horizons: Sequence[int] = (1, 5, 20),
    n_paths: int = 1000,
    stride: int = 1,
    seed: int = 0,
    context_bars: int = KEPT,
    out: str | os.PathLike | None = None,
    resume: bool = False,
    jobs: int | None = 1,
    backend: str = "local",
    ray_address: str | None = None,
    batch_size: int = 8,
    progress=None,
) -> CalibrationResult:
    """Walk forward over ``start..end`` and score the model's predicted distributions.

    Parameters
    ----------
    model : Generator or path
        A fitted generator, or its model directory.
    data : DataFrame or str
        The real bars (a data name or file for :func:`synthmarket.data.load_data`); they must
        run past ``end`` by the longest horizon for the last origins to count.
    start, end : date
        The period of the origins; it must begin after the model's training data.
    horizons : sequence of int
        Bars ahead (1, 5, 20).
    n_paths : int
        Paths sampled per origin.
    stride : int
        Use every ``stride``-th trading day as an origin.
    seed : int
        Seeds every origin's sampling (with its date), so a resumed run gives the same numbers.
    context_bars : int
        Bars of history before each origin given to the model.
    out : path, optional
        Directory for ``calibration.json``, ``samples.npz``, ``scores.csv`` and ``summary.json``;
        batches are stored as they finish and ``resume=True`` skips the origins stored.
    jobs, backend, ray_address :
        Where the batches run, as for :func:`synthmarket.montecarlo.run_montecarlo`.
    batch_size : int
        Origins per task.
    progress : callable, optional
        Called with the number of origins of each finished batch.
    """
    from ..generator import Generator

    generator = model if isinstance(model, Generator) else Generator.load(model)
    bars = data if isinstance(data, pd.DataFrame) else _load(data)
    horizons = _check_horizons(horizons)
    if int(n_paths) < 2 or int(stride) < 1 or int(batch_size) < 1:
        raise ConfigError(f"Need n_paths >= 2, stride >= 1 and batch_size >= 1; got {n_paths}, {stride}, {batch_size}.")
    origins = _origins(bars, start, end, max(horizons), int(stride), generator)
    manifest = {
        "format": FORMAT,
        "model": generator.config(),
        "data": _fingerprint(bars),
        "origins": [str(d.date()) for d in bars.index[origins]],
        "horizons": list(horizons),
        "n_paths": int(n_paths),
        "seed": int(seed),
        "context_bars": int(context_bars),
    }
    with claim(out) if out is not None else nullcontext():
        store = _Store(Path(out)) if out is not None else None
        done = store.prepare(manifest, resume) if store is not None else {}
        todo = [int(o) for o in origins if int(o) not in done]
        tasks = (
            _Task(
                generator,
                bars,
                tuple(todo[i : i + batch_size]),
                horizons,
                int(n_paths),
                int(seed),
                int(context_bars),
            )
            for i in range(0, len(todo), batch_size)
        )
        for batch in map_unordered(_run, tasks, jobs=jobs, backend=backend, ray_address=ray_address):
            if store is not None:
                store.append(batch)
            done.update(batch.rows())
            if progress is not None:
                progress(len(batch.origins))
        realised, samples, predicted_vol, realised_vol = (np.stack(c) for c in zip(*(done[int(o)] for o in origins)))
        summary = {
            "horizons": {
                str(h): _scores(
                    samples[:, j, :], realised[:, j], (predicted_vol[:, j], realised_vol[:, j]), h, int(stride)
                )
                for j, h in enumerate(horizons)
            },
            "n_origins": len(origins),
            "first_origin": manifest["origins"][0],
            "last_origin": manifest["origins"][-1],
            "generator": generator.name,
        }
        result = CalibrationResult(
            bars.index[origins], horizons, realised, samples, predicted_vol, realised_vol, summary, None
        )
        if store is not None:
            result.out = store.finish(result)
    return result


def _scores(samples: np.ndarray, realised: np.ndarray, volatility, horizon: int, stride: int) -> dict[str, Any]:
    """The scores of one horizon; the tests count origins at least ``horizon`` bars apart."""
    from .scores import calibration_summary

    apart = max(1, math.ceil(horizon / stride))
    scores = calibration_summary(samples.astype(np.float64), realised, volatility=volatility, apart=apart)
    return {**scores, "origins_apart": apart * stride}


def _load(data: str) -> pd.DataFrame:
    from ..data import load_data

    return load_data(data)


def _check_horizons(horizons: Sequence[int]) -> tuple[int, ...]:
    try:
        out = tuple(sorted({int(h) for h in horizons}))
    except (TypeError, ValueError):
        raise ConfigError(f"horizons are whole numbers of bars (1,5,20); got {horizons!r}.") from None
    if not out or out[0] < 1:
        raise ConfigError(f"horizons are whole numbers of bars, at least 1; got {horizons!r}.")
    return out


def _origins(bars: pd.DataFrame, start, end, longest: int, stride: int, generator) -> np.ndarray:
    """Row numbers of the origins: trading days in ``start..end`` whose outcome ``longest`` bars
    later is in the data, after the model's training data and with a context before them."""
    first, last = pd.Timestamp(start), pd.Timestamp(end)
    if last < first:
        raise ConfigError(f"--to {last:%Y-%m-%d} is before --from {first:%Y-%m-%d}.")
    if first < bars.index[0] or first > bars.index[-1]:
        raise ConfigError(
            f"--from {first:%Y-%m-%d} lies outside the data ({bars.index[0]:%Y-%m-%d}..{bars.index[-1]:%Y-%m-%d})."
        )
    trained_to = pd.Timestamp(generator.anchor.date) if generator.anchor.date else None
    if trained_to is not None and first <= trained_to:
        raise ConfigError(
            f"The model was trained on data up to {trained_to:%Y-%m-%d}; calibrate it on a later period "
            f"(--from after that date), which it never saw."
        )
    rows = np.flatnonzero((bars.index >= first) & (bars.index <= last))
    rows = rows[(rows + longest < len(bars)) & (rows >= 1)][::stride]
    if len(rows) == 0:
        raise ConfigError(
            f"No origin in {first:%Y-%m-%d}..{last:%Y-%m-%d} has its outcome {longest} bars later in the data "
            f"(which ends {bars.index[-1]:%Y-%m-%d})."
        )
    return rows


def _fingerprint(bars: pd.DataFrame) -> str:
    digest = hashlib.sha256(bars.index.asi8.tobytes())
    digest.update(np.ascontiguousarray(bars[["open", "high", "low", "close"]].to_numpy(dtype=np.float64)).tobytes())
    return digest.hexdigest()[:16]


class _Store:
    """``out``: the manifest, one ``.npz`` part per finished batch, and at the end the samples,
    the per-origin scores and the summary."""

    def __init__(self, out: Path) -> None:
        self.out, self.parts = out, out / PARTS

    def prepare(self, manifest: dict, resume: bool) -> dict[int, tuple[np.ndarray, ...]]:
        if self.out.exists() and not self.out.is_dir():
            raise ConfigError(f"--out {str(self.out)!r} is a file; give a directory.")
        file = self.out / MANIFEST
        stored = self._parts()
        if (file.exists() or stored) and not resume:
            raise ConfigError(
                f"{str(self.out)!r} already holds a calibration. Pass --resume to finish it, or choose another --out."
            )
        if resume and file.exists():
            previous = json.loads(file.read_text())
            if previous.get("format") != FORMAT:
                raise ConfigError(
                    f"Cannot resume the calibration in {str(self.out)!r}: an older synthmarket started it, "
                    f"without the volatilities this one records. Calibrate into another --out."
                )
            changed = [
                k for k in manifest if previous.get(k) != json.loads(json.dumps(manifest[k], default=json_default))
            ]
            if changed:
                raise ConfigError(
                    f"Cannot resume the calibration in {str(self.out)!r}: it was started with other "
                    f"{', '.join(changed)}. Use the same inputs, or another --out."
                )
        self.parts.mkdir(parents=True, exist_ok=True)
        write_text_atomic(file, json.dumps(manifest, indent=2, default=json_default))
        done: dict[int, tuple[np.ndarray, ...]] = {}
        for part in stored:
            with np.load(part) as saved:
                done.update(_Done(**{k: saved[k] for k in PART_ARRAYS}).rows())
        return done

    def _parts(self) -> list[Path]:
        return sorted(self.parts.glob("part-*.npz")) if self.parts.is_dir() else []

    def append(self, batch: _Done) -> None:
        target = self.parts / f"part-{time.time_ns():020d}-{uuid.uuid4().hex[:8]}.npz"
        tmp = target.with_name(target.name + ".tmp.npz")
        np.savez(tmp, **{k: getattr(batch, k) for k in PART_ARRAYS})
        os.replace(tmp, target)

    def finish(self, result: CalibrationResult) -> Path:
        tmp = self.out / (SAMPLES + ".tmp.npz")
        np.savez(
            tmp,
            dates=result.dates.asi8,
            horizons=np.asarray(result.horizons),
            realised=result.realised,
            samples=result.samples,
            predicted_vol=result.predicted_vol,
            realised_vol=result.realised_vol,
        )
        os.replace(tmp, self.out / SAMPLES)
        write_text_atomic(self.out / SCORES, result.scores().to_csv(index=False))
        write_text_atomic(self.out / SUMMARY, json.dumps(result.summary, indent=2, default=json_default))
        for part in self._parts():
            part.unlink()
        return self.out


def read_calibration(out: str | os.PathLike) -> CalibrationResult:
    """A finished calibration directory, read back."""
    out = Path(out)
    if not (out / SAMPLES).exists():
        raise DataError(f"{str(out)!r} holds no finished calibration ({SAMPLES} is missing).")
    with np.load(out / SAMPLES) as saved:
        dates = pd.DatetimeIndex(saved["dates"])
        horizons, realised, samples = tuple(int(h) for h in saved["horizons"]), saved["realised"], saved["samples"]
        if "predicted_vol" in saved:
            predicted_vol, realised_vol = saved["predicted_vol"], saved["realised_vol"]
        else:  # saved before the volatilities were: the samples' spread against the absolute outcome
            predicted_vol, realised_vol = samples.std(axis=2, ddof=1), np.abs(realised)
    summary = json.loads((out / SUMMARY).read_text())
    return CalibrationResult(dates, horizons, realised, samples, predicted_vol, realised_vol, summary, out)
