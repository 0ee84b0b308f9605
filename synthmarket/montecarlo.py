"""Monte-Carlo backtests: one backtrader strategy over many price paths, in parallel, streamed to disk.

:func:`run_montecarlo` runs a strategy on every path of a scenario set (and on the real
history, for comparison) and returns a :class:`MonteCarloResult`: one row of metrics per
path and a :class:`Summary` of their distribution.

How the work is shaped:

- the main process cuts the paths into batches of arrays (:class:`BatchTask`); workers
  (local processes or Ray, through :mod:`synthmarket.executor`) rebuild a small Cerebro per
  path and send back a few numbers per path — never a live Cerebro;
- strategies travel as strings (a registered name, ``package.module:Class`` or
  ``/abs/path/file.py:Class``), which every worker resolves for itself;
- each finished batch becomes one Parquet part file in ``out/results/``; at the end (also
  after Ctrl-C, a failure or a dead worker) the parts are compacted into
  ``out/results.parquet``. ``resume=True`` skips the paths already stored, so a killed run
  loses at most the batches in flight and never counts a path twice.

Metrics (one row per path; ``path`` is the path's number as a string, or ``"real"``):

``final_value``         portfolio value after the last bar
``total_return``        ``final_value / cash - 1``
``cagr``                compound annual growth, 252 bars a year
``volatility``          annualised standard deviation of the bar-to-bar portfolio returns
``sharpe``, ``sortino`` annualised mean return over its standard deviation / downside deviation (risk-free rate 0)
``max_drawdown``        largest fall from a running peak of portfolio value (fraction; the peak starts at ``cash``)
``max_drawdown_days``   longest stretch of bars spent under a previous peak
``n_trades``            closed trades; ``win_rate`` the fraction of them with a positive net profit
``exposure``            fraction of bars ending with an open position
``error``               empty, or what went wrong on this path
"""

from __future__ import annotations

import abc
import ast
import functools
import hashlib
import json
import math
import os
import time
import traceback
import uuid
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import backtrader as bt
import numpy as np
import pandas as pd
from rich.progress import ProgressColumn
from rich.text import Text

from .errors import ConfigError, DataError, PluginError, SynthmarketError
from .executor import BACKENDS, WorkerDied, describe_backend, map_unordered, resolve_jobs
from .feeds import FeedArrays, PathData, date_numbers
from .paths import FIELDS, Paths

BARS_PER_YEAR = 252
REAL = "real"
METRICS = (
    "final_value", "total_return", "cagr", "volatility", "sharpe", "sortino",
    "max_drawdown", "max_drawdown_days", "n_trades", "win_rate", "exposure",
)
INT_METRICS = ("max_drawdown_days", "n_trades")
COLUMNS = ("path", *METRICS, "error")
RESULTS_FILE = "results.parquet"
PARTS_DIR = "results"
MANIFEST_FILE = "run.json"
SUMMARY_FILE = "summary.json"
FORMAT = "synthmarket-backtest"


class PathFailed(SynthmarketError):
    """A path raised an error and the run was asked to stop at the first one (``fail_fast``)."""


# --------------------------------------------------------------------------------------------
# Strategies and their parameters
# --------------------------------------------------------------------------------------------
def strategy_params(cls: type) -> dict[str, Any]:
    """A strategy's parameters and their defaults, in declaration order."""
    return dict(cls.params._getpairs())


def resolve_strategy(strategy: str | type) -> tuple[type, str | None]:
    """The strategy class, and the string a worker process resolves to find it again.

    Parameters
    ----------
    strategy : str or type
        A registered name (``sma_cross``), ``package.module:Class``, ``path/to/file.py:Class``,
        or a ``backtrader.Strategy`` subclass.

    Returns
    -------
    (cls, ref)
        ``ref`` is None when the class cannot be found again by name (defined in a notebook
        or in ``__main__``); such a class can only run with ``jobs=1``.

    Raises
    ------
    PluginError
        When no such strategy exists or the object is not a ``backtrader.Strategy`` subclass.
    """
    from .registry import get_registry, load_object

    if isinstance(strategy, str):
        ref = _absolute_ref(strategy)
        cls = get_registry().get("strategy", ref)
        _check_strategy_class(cls, strategy)
        return cls, _importable_ref(cls) or ref
    _check_strategy_class(strategy, getattr(strategy, "__name__", repr(strategy)))
    ref = _importable_ref(strategy)
    if ref is None:
        for name, info in get_registry().strategies().items():
            if info.obj is strategy:
                return strategy, name
    if ref is not None:
        try:
            if load_object(ref) is not strategy:
                ref = None
        except PluginError:
            ref = None
    return strategy, ref


def _check_strategy_class(cls: Any, label: str) -> None:
    if not (isinstance(cls, type) and issubclass(cls, bt.Strategy)):
        raise PluginError(f"{label!r} is not a backtrader.Strategy subclass (got {cls!r}).")


def _absolute_ref(ref: str) -> str:
    """``file.py:Class`` with the file's absolute path, so workers elsewhere find it too."""
    target, sep, attr = ref.rpartition(":")
    if sep and (target.endswith(".py") or "/" in target or os.sep in target):
        return f"{Path(target).expanduser().resolve()}:{attr}"
    return ref


def _importable_ref(cls: type) -> str | None:
    module = getattr(cls, "__module__", "")
    qualname = getattr(cls, "__qualname__", "")
    if not module or module in ("__main__", "__mp_main__") or module.startswith("synthmarket_user_"):
        return None
    if "<locals>" in qualname or "." in qualname:
        return None
    return f"{module}:{qualname}"


@functools.lru_cache(maxsize=32)
def _strategy_class(ref: str) -> type:
    """What a worker does with a strategy's string (once per process and strategy)."""
    from .registry import get_registry, load_object

    cls = load_object(ref) if ":" in ref else get_registry().get("strategy", ref)
    _check_strategy_class(cls, ref)
    return cls


_TRUE = {"true", "1", "yes", "y", "on"}
_FALSE = {"false", "0", "no", "n", "off"}


def coerce_params(cls: type, params: Mapping[str, Any] | None, *, label: str | None = None) -> dict[str, Any]:
    """Check ``params`` against the strategy's ``params`` and convert strings to their types.

    The type of each parameter is the type of its default: ``int``, ``float``, ``bool`` or
    ``str``. Strings (from the command line) are converted; other values must already have
    the right type (an int is accepted for a float). A parameter whose default is None or
    of another type takes a Python literal, or the string itself. The strategy's
    ``check_params(params)`` class method, when it has one, then checks combinations.

    Raises
    ------
    ConfigError
        For an unknown parameter or a value of the wrong type.
    """
    label = label or cls.__name__
    known = strategy_params(cls)
    out: dict[str, Any] = {}
    for key, value in (params or {}).items():
        if key not in known:
            listing = ", ".join(f"{k}={v!r}" for k, v in known.items()) or "none"
            raise ConfigError(f"Strategy {label!r} has no parameter {key!r}. Its parameters: {listing}.")
        out[key] = _coerce(label, key, value, known[key])
    check = getattr(cls, "check_params", None)
    if callable(check):
        check(out)
    return out


def _coerce(label: str, key: str, value: Any, default: Any) -> Any:
    kind = type(default)
    wrong = ConfigError(
        f"Parameter {key!r} of {label!r} takes a {kind.__name__} (default {default!r}); got {value!r}."
    )
    if isinstance(value, str) and kind is not str:
        text = value.strip()
        if kind is bool:
            if text.lower() in _TRUE:
                return True
            if text.lower() in _FALSE:
                return False
            raise wrong
        if kind is int:
            try:
                return int(text)
            except ValueError:
                raise wrong from None
        if kind is float:
            try:
                return float(text)
            except ValueError:
                raise wrong from None
        try:
            return ast.literal_eval(text)
        except (ValueError, SyntaxError):
            return value
    if kind is bool:
        if isinstance(value, bool):
            return value
        raise wrong
    if kind is int:
        if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
            return int(value)
        raise wrong
    if kind is float:
        if isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool):
            return float(value)
        raise wrong
    if kind is str and not isinstance(value, str):
        raise wrong
    return value


def parse_param_items(items: Iterable[str]) -> dict[str, str]:
    """``["fast=5", "slow=20"]`` -> ``{"fast": "5", "slow": "20"}`` (the CLI's ``-p key=value``)."""
    out: dict[str, str] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"Parameter {item!r} is not key=value (e.g. -p fast=10).")
        out[key.strip()] = value
    return out


# --------------------------------------------------------------------------------------------
# One path
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Settings:
    """Broker settings of every path: starting cash, commission and slippage (fractions)."""

    cash: float = 100_000.0
    commission: float = 0.001
    slippage: float = 0.0

    def __post_init__(self) -> None:
        if not (math.isfinite(self.cash) and self.cash > 0):
            raise ConfigError(f"cash must be a positive amount; got {self.cash}.")
        if not (0 <= self.commission < 1):
            raise ConfigError(f"commission is a fraction of the traded value in [0, 1); got {self.commission}.")
        if not (0 <= self.slippage < 1):
            raise ConfigError(f"slippage is a fraction of the price in [0, 1); got {self.slippage}.")


class _Recorder(bt.Analyzer):
    """Records, once per bar, the portfolio value and whether a position is open; and closed trades."""

    def start(self) -> None:
        self.values: list[float] = []
        self.exposed = 0
        self.pnls: list[float] = []
        self._positions = self.strategy.broker.positions

    def notify_cashvalue(self, cash: float, value: float) -> None:
        self.values.append(value)
        for position in self._positions.values():
            if position.size:
                self.exposed += 1
                break

    def notify_trade(self, trade: bt.Trade) -> None:
        if trade.isclosed:
            self.pnls.append(trade.pnlcomm)

    def get_analysis(self) -> dict:
        return {"values": self.values, "exposed": self.exposed, "pnls": self.pnls}


def backtest_path(
    strategy: type, bars: FeedArrays | pd.DataFrame, params: Mapping[str, Any] | None = None,
    settings: Settings = Settings(), *, name: str = "path",
) -> dict[str, float]:
    """Run ``strategy`` once on ``bars`` and return its metrics (see the module docstring)."""
    if isinstance(bars, pd.DataFrame):
        bars = FeedArrays.from_frame(bars)
    cerebro = bt.Cerebro(stdstats=False)
    cerebro.adddata(PathData(dataname=bars, name=name))
    cerebro.addstrategy(strategy, **dict(params or {}))
    cerebro.addanalyzer(_Recorder, _name="synthmarket")
    broker = cerebro.broker
    broker.setcash(settings.cash)
    broker.setcommission(commission=settings.commission)
    if settings.slippage:
        broker.set_slippage_perc(settings.slippage)
    recorder = cerebro.run()[0].analyzers.getbyname("synthmarket")
    return compute_metrics(recorder.values, settings.cash, recorder.exposed, recorder.pnls)


def compute_metrics(
    values: Iterable[float], cash: float, exposed_bars: int, trade_pnls: Iterable[float]
) -> dict[str, float]:
    """Metrics of one path from its portfolio value at each bar's close.

    Parameters
    ----------
    values : sequence of float
        Portfolio value after each bar.
    cash : float
        Starting value.
    exposed_bars : int
        Bars that ended with an open position.
    trade_pnls : sequence of float
        Net profit (after commission) of each closed trade.
    """
    v = np.asarray(values, dtype=np.float64)
    pnls = np.asarray(list(trade_pnls), dtype=np.float64)
    n = len(v)
    if n == 0:
        raise DataError("The backtest saw no bars; a path needs at least one bar.")
    final = float(v[-1])
    growth = final / cash
    previous = np.concatenate(([cash], v[:-1]))
    returns = v / previous - 1.0
    sd = float(np.std(returns, ddof=1)) if n > 1 else math.nan
    mean = float(np.mean(returns))
    downside = float(np.sqrt(np.mean(np.minimum(returns, 0.0) ** 2)))
    annual = math.sqrt(BARS_PER_YEAR)
    peaks = np.maximum.accumulate(np.concatenate(([cash], v)))[1:]
    drawdowns = 1.0 - v / peaks
    underwater = drawdowns > 0
    return {
        "final_value": final,
        "total_return": growth - 1.0,
        "cagr": growth ** (BARS_PER_YEAR / n) - 1.0 if growth > 0 else -1.0,
        "volatility": sd * annual,
        "sharpe": mean / sd * annual if sd > 0 else math.nan,
        "sortino": mean / downside * annual if downside > 0 else math.nan,
        "max_drawdown": float(drawdowns.max()),
        "max_drawdown_days": _longest_run(underwater),
        "n_trades": int(len(pnls)),
        "win_rate": float(np.mean(pnls > 0)) if len(pnls) else math.nan,
        "exposure": exposed_bars / n,
    }


def _longest_run(mask: np.ndarray) -> int:
    if not mask.any():
        return 0
    edges = np.diff(np.concatenate(([0], mask.view(np.int8), [0])))
    starts, ends = np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)
    return int((ends - starts).max())


def _error_text(exc: BaseException) -> str:
    frames = traceback.extract_tb(exc.__traceback__)
    where = f" (at {Path(frames[-1].filename).name}:{frames[-1].lineno} in {frames[-1].name})" if frames else ""
    return f"{type(exc).__name__}: {exc}{where}"


def _empty_row(path: str, error: str) -> dict[str, Any]:
    row: dict[str, Any] = {"path": path}
    row.update({m: None if m in INT_METRICS else math.nan for m in METRICS})
    row["error"] = error
    return row


# --------------------------------------------------------------------------------------------
# Batches: what a worker receives and returns
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class BatchTask:
    """Paths for one worker call: arrays only, plus the strategy's string and settings.

    ``bars`` has shape (5, n, S): open, high, low, close, volume of ``n`` paths that share
    ``dates`` (backtrader date numbers).
    """

    strategy: str | type
    params: dict[str, Any]
    settings: Settings
    ids: tuple[str, ...]
    dates: np.ndarray
    bars: np.ndarray
    fail_fast: bool = False


@dataclass(frozen=True)
class BatchResult:
    """One metrics row per path that ran (a fail-fast batch stops after its first error), and
    the wall and CPU seconds the worker spent on the batch."""

    rows: list[dict[str, Any]]
    seconds: float
    cpu_seconds: float


def run_batch(task: BatchTask) -> BatchResult:
    """Backtest every path of ``task``; a path's exception becomes its row's ``error``."""
    started, cpu_started = time.perf_counter(), time.process_time()
    elapsed = lambda: (time.perf_counter() - started, time.process_time() - cpu_started)  # noqa: E731
    rows: list[dict[str, Any]] = []
    try:
        cls = task.strategy if isinstance(task.strategy, type) else _strategy_class(task.strategy)
    except Exception as exc:  # the strategy cannot be loaded here: every path says so
        text = _error_text(exc)
        ids = task.ids[:1] if task.fail_fast else task.ids
        return BatchResult([_empty_row(i, text) for i in ids], *elapsed())
    for k, path_id in enumerate(task.ids):
        bars = FeedArrays(task.dates, *(task.bars[j, k] for j in range(len(FIELDS))))
        try:
            row = {"path": path_id, **backtest_path(cls, bars, task.params, task.settings, name=f"path-{path_id}")}
            row["error"] = None
        except Exception as exc:
            row = _empty_row(path_id, _error_text(exc))
        rows.append(row)
        if task.fail_fast and row["error"] is not None:
            break
    return BatchResult(rows, *elapsed())


# --------------------------------------------------------------------------------------------
# Scenario sources
# --------------------------------------------------------------------------------------------
class ScenarioSet(abc.ABC):
    """Paths the runner reads chunk by chunk: ``n_paths``, ``n_steps``, ``fingerprint`` and ``chunks()``.

    ``fingerprint`` identifies the paths, so that a resumed run can check it continues
    the same scenarios.
    """

    n_paths: int
    n_steps: int
    fingerprint: str

    @abc.abstractmethod
    def chunks(self) -> Iterator[Paths]:
        """Consecutive :class:`Paths` chunks; path ids count on across chunks from 0."""


class InMemoryScenarios(ScenarioSet):
    """A :class:`Paths` set already in memory (or read from a scenario file)."""

    def __init__(self, paths: Paths) -> None:
        if paths.n_paths < 1 or paths.n_steps < 1:
            raise DataError(f"The scenario set is empty ({paths!r}).")
        self.paths = paths
        self.n_paths, self.n_steps = paths.n_paths, paths.n_steps
        digest = hashlib.sha256(paths.dates.asi8.tobytes())
        for k in FIELDS:
            digest.update(np.ascontiguousarray(getattr(paths, k), dtype=np.float64).tobytes())
        self.fingerprint = digest.hexdigest()[:16]

    def chunks(self) -> Iterator[Paths]:
        yield self.paths


class GeneratedScenarios(ScenarioSet):
    """Paths sampled from a fitted generator one chunk at a time, so memory stays flat.

    The same generator, sizes, regime and seed give the same paths as
    ``generator.sample_paths`` (and ``synthmarket generate``) does.
    """

    def __init__(
        self, generator, n_paths: int, n_steps: int, *, regime: str | None = None, schedule=None,
        seed: int | None = None, start=None,
    ) -> None:
        if int(n_paths) < 1 or int(n_steps) < 1:
            raise ConfigError(f"Need at least one path of at least one bar; got {n_paths} x {n_steps}.")
        self.generator, self.regime, self.schedule, self.seed, self.start = generator, regime, schedule, seed, start
        self.n_paths, self.n_steps = int(n_paths), int(n_steps)
        generator.regime_labels(self.n_steps, regime, schedule)  # fail now on a bad regime, not in the run
        spec = {
            "model": generator.config(), "n_paths": self.n_paths, "n_steps": self.n_steps, "regime": regime,
            "schedule": None if schedule is None else str(schedule), "seed": seed, "start": str(start),
        }
        self.fingerprint = hashlib.sha256(json.dumps(spec, sort_keys=True, default=str).encode()).hexdigest()[:16]

    def chunks(self) -> Iterator[Paths]:
        for features in self.generator.sample_chunks(
            self.n_paths, self.n_steps, regime=self.regime, schedule=self.schedule, seed=self.seed
        ):
            yield Paths.from_features(features, self.generator.anchor, start=self.start)


def as_scenarios(scenarios: ScenarioSet | Paths | str | os.PathLike) -> ScenarioSet:
    """A :class:`ScenarioSet` from a set, a :class:`Paths` or a scenario file."""
    if isinstance(scenarios, ScenarioSet):
        return scenarios
    if isinstance(scenarios, Paths):
        return InMemoryScenarios(scenarios)
    if isinstance(scenarios, (str, os.PathLike)):
        return InMemoryScenarios(Paths.load(scenarios))
    raise DataError(
        f"Scenarios must be a Paths set, a scenario file (.parquet/.csv) or a ScenarioSet; got {type(scenarios).__name__}."
    )


# --------------------------------------------------------------------------------------------
# Where results go
# --------------------------------------------------------------------------------------------
def _schema():
    import pyarrow as pa

    fields = [pa.field("path", pa.string())]
    fields += [pa.field(m, pa.int64() if m in INT_METRICS else pa.float64()) for m in METRICS]
    fields.append(pa.field("error", pa.string()))
    return pa.schema(fields)


def _path_order(paths: pd.Series) -> np.ndarray:
    numeric = pd.to_numeric(paths, errors="coerce")
    return np.lexsort((paths.to_numpy(dtype=str), numeric.fillna(np.inf).to_numpy()))


def tidy_results(rows: pd.DataFrame | list[dict]) -> pd.DataFrame:
    """Rows in the standard shape: the columns of :data:`COLUMNS`, one row per path, sorted
    by path number with ``"real"`` last (the last row of a duplicated path wins)."""
    frame = pd.DataFrame(rows, columns=list(COLUMNS)) if isinstance(rows, list) else rows.loc[:, list(COLUMNS)]
    frame = frame.drop_duplicates("path", keep="last")
    frame = frame.iloc[_path_order(frame["path"].astype(str))].reset_index(drop=True)
    frame["path"] = frame["path"].astype(str)
    for m in METRICS:
        frame[m] = frame[m].astype("Int64") if m in INT_METRICS else frame[m].astype(float)
    frame["error"] = frame["error"].astype(object).where(frame["error"].notna(), None)
    return frame


class ResultStore:
    """Results of a run on disk: part files while it runs, ``results.parquet`` after.

    Each finished batch is written to ``out/results/part-*.parquet`` (written to a temporary
    name, then renamed, so a part is either whole or absent). :meth:`compact` merges the
    parts into ``out/results.parquet`` (again by rename) and then removes them; a kill at
    any moment leaves files from which :meth:`read` gets every finished path exactly once.
    """

    def __init__(self, out: str | os.PathLike) -> None:
        self.out = Path(out)
        self.parts = self.out / PARTS_DIR
        self.final = self.out / RESULTS_FILE
        self.manifest = self.out / MANIFEST_FILE

    def _part_files(self) -> list[Path]:
        return sorted(self.parts.glob("part-*.parquet")) if self.parts.is_dir() else []

    def has_results(self) -> bool:
        return self.final.exists() or bool(self._part_files())

    def prepare(self, manifest: dict[str, Any], resume: bool) -> set[str]:
        """Check that ``out`` may be written (or resumed) and return the ids already done."""
        if self.out.exists() and not self.out.is_dir():
            raise ConfigError(f"--out {str(self.out)!r} is a file; give a directory.")
        if self.has_results() and not resume:
            raise ConfigError(
                f"{str(self.out)!r} already holds backtest results. Pass resume=True (--resume) to finish "
                f"that run, or choose another output directory (or delete this one)."
            )
        if resume and self.manifest.exists():
            previous = json.loads(self.manifest.read_text())
            changed = [k for k in manifest if k != "created" and previous.get(k) != manifest[k]]
            if changed:
                detail = "; ".join(f"{k}: {previous.get(k)!r} then, {manifest[k]!r} now" for k in changed)
                raise ConfigError(
                    f"Cannot resume the run in {str(self.out)!r}: it was started with other inputs ({detail}). "
                    f"Use the same inputs, or another output directory."
                )
        self.parts.mkdir(parents=True, exist_ok=True)
        for stale in self.parts.glob("*.tmp"):
            stale.unlink()
        if not (resume and self.manifest.exists()):
            _write_json(self.manifest, manifest)
        return set(self.read()["path"]) if resume else set()

    def append(self, rows: list[dict[str, Any]]) -> None:
        """Write one part file holding ``rows``."""
        import pyarrow as pa
        import pyarrow.parquet as pq

        if not rows:
            return
        table = pa.Table.from_pylist(rows, schema=_schema())
        target = self.parts / f"part-{time.time_ns():020d}-{uuid.uuid4().hex[:8]}.parquet"
        tmp = target.with_name(target.name + ".tmp")
        pq.write_table(table, tmp)
        os.replace(tmp, target)

    def read(self) -> pd.DataFrame:
        """Every stored path once (parts win over the compacted file)."""
        import pyarrow.parquet as pq

        files = ([self.final] if self.final.exists() else []) + self._part_files()
        tables = []
        for file in files:
            try:
                tables.append(pq.read_table(file, schema=_schema()).to_pandas())
            except Exception as exc:
                raise DataError(f"{file} is not a readable results file ({exc}); delete it and resume.") from None
        if not tables:
            return tidy_results([])
        return tidy_results(pd.concat(tables, ignore_index=True))

    def compact(self) -> pd.DataFrame:
        """Merge everything into ``results.parquet`` and remove the part files."""
        import pyarrow as pa
        import pyarrow.parquet as pq

        frame = self.read()
        parts = self._part_files()
        if parts or not self.final.exists():
            table = pa.Table.from_pandas(frame, schema=_schema(), preserve_index=False)
            tmp = self.final.with_name(self.final.name + ".tmp")
            pq.write_table(table, tmp)
            os.replace(tmp, self.final)
            for part in parts:
                part.unlink(missing_ok=True)
        return frame


def _write_json(file: Path, data: dict) -> None:
    tmp = file.with_name(file.name + ".tmp")
    tmp.write_text(json.dumps(data, indent=2, default=_json_default, allow_nan=True))
    os.replace(tmp, file)


def _json_default(obj: Any) -> Any:
    if isinstance(obj, (np.integer,)):
        return int(obj)
    if isinstance(obj, (np.floating,)):
        return float(obj)
    return repr(obj)


def read_results(out: str | os.PathLike) -> pd.DataFrame:
    """The results stored in an output directory (finished or not)."""
    store = ResultStore(out)
    if not store.out.is_dir():
        raise DataError(f"No such results directory: {str(out)!r}.")
    return store.read()


# --------------------------------------------------------------------------------------------
# Summary and result
# --------------------------------------------------------------------------------------------
PERCENTILES = (5, 25, 50, 75, 95)


@dataclass
class Summary:
    """The distribution of each metric over the synthetic paths, and where the real history falls.

    Attributes
    ----------
    metrics : DataFrame
        One row per metric; columns ``mean, std, min, p5, p25, p50, p75, p95, max`` over the
        synthetic paths that ran, then ``real`` (the real history's value) and ``real_rank``
        (percent of synthetic paths at or below it).
    n_paths, n_failed : int
        Synthetic paths in the results, and how many of them failed.
    prob_loss : float
        Fraction of paths that lost money (``total_return < 0``).
    es_return : float
        Expected shortfall of the total return: mean over the worst ``alpha`` share of paths.
    es_drawdown : float
        Mean ``max_drawdown`` over the ``alpha`` share of paths with the deepest drawdowns.
    alpha : float
        Tail share of the shortfalls (0.05).
    """

    metrics: pd.DataFrame
    n_paths: int
    n_failed: int
    prob_loss: float
    es_return: float
    es_drawdown: float
    alpha: float = 0.05

    @classmethod
    def of(cls, results: pd.DataFrame, alpha: float = 0.05) -> "Summary":
        synthetic = results[results["path"] != REAL]
        ok = synthetic[synthetic["error"].isna()]
        real = results[(results["path"] == REAL) & results["error"].isna()]
        rows = {}
        for m in METRICS:
            values = ok[m].astype(float).dropna().to_numpy()
            stats: dict[str, float] = dict.fromkeys(
                ("mean", "std", "min", *(f"p{q}" for q in PERCENTILES), "max", "real", "real_rank"), math.nan
            )
            if len(values):
                stats.update(mean=values.mean(), std=values.std(ddof=1) if len(values) > 1 else math.nan,
                             min=values.min(), max=values.max())
                stats.update({f"p{q}": v for q, v in zip(PERCENTILES, np.percentile(values, PERCENTILES))})
            if len(real):
                value = float(real[m].astype(float).iloc[0])
                stats["real"] = value
                if len(values) and not math.isnan(value):
                    stats["real_rank"] = 100.0 * float(np.mean(values <= value))
            rows[m] = stats
        returns = np.sort(ok["total_return"].astype(float).dropna().to_numpy())
        drawdowns = np.sort(ok["max_drawdown"].astype(float).dropna().to_numpy())[::-1]
        tail = lambda n: max(1, math.ceil(alpha * n))  # noqa: E731
        return cls(
            metrics=pd.DataFrame.from_dict(rows, orient="index"),
            n_paths=len(synthetic),
            n_failed=int(synthetic["error"].notna().sum()),
            prob_loss=float(np.mean(returns < 0)) if len(returns) else math.nan,
            es_return=float(returns[: tail(len(returns))].mean()) if len(returns) else math.nan,
            es_drawdown=float(drawdowns[: tail(len(drawdowns))].mean()) if len(drawdowns) else math.nan,
            alpha=alpha,
        )

    def to_dict(self) -> dict[str, Any]:
        """Plain data for ``summary.json`` (NaN becomes null)."""
        clean = lambda x: None if x is None or (isinstance(x, float) and math.isnan(x)) else x  # noqa: E731
        return {
            "n_paths": self.n_paths,
            "n_failed": self.n_failed,
            "prob_loss": clean(self.prob_loss),
            "es_return": clean(self.es_return),
            "es_drawdown": clean(self.es_drawdown),
            "alpha": self.alpha,
            "metrics": {m: {k: clean(float(v)) for k, v in row.items()} for m, row in self.metrics.iterrows()},
        }

    def __str__(self) -> str:
        head = (
            f"{self.n_paths} paths ({self.n_failed} failed); P(loss) = {_fmt(self.prob_loss)}; "
            f"ES{self.alpha:.0%} return = {_fmt(self.es_return)}; ES{self.alpha:.0%} drawdown = {_fmt(self.es_drawdown)}"
        )
        return head + "\n" + self.metrics.to_string(float_format=lambda x: f"{x:.4g}")

    def _repr_html_(self) -> str:
        head = (
            f"<p>{self.n_paths} paths ({self.n_failed} failed); P(loss) = {_fmt(self.prob_loss)}; "
            f"ES{self.alpha:.0%} of return = {_fmt(self.es_return)}; "
            f"ES{self.alpha:.0%} of max drawdown = {_fmt(self.es_drawdown)}</p>"
        )
        return head + self.metrics.to_html(float_format=lambda x: f"{x:.4g}", na_rep="")


def _fmt(x: float) -> str:
    return "n/a" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:.4g}"


@dataclass
class MonteCarloResult:
    """What :func:`run_montecarlo` returns.

    Attributes
    ----------
    results : DataFrame
        One row per path (``path``, the metrics, ``error``); the real history is ``path == "real"``.
    summary : Summary
        The distribution of the metrics over the synthetic paths.
    strategy : str
        The strategy as it was named.
    params : dict
        Its parameters (after type checking).
    settings : Settings
        Cash, commission and slippage.
    out : Path or None
        The output directory, when results were written.
    seconds : float
        Wall time of the run.
    worker_cpu_seconds : float
        CPU time the workers spent backtesting in this run (not counting paths resumed).
    """

    results: pd.DataFrame
    summary: Summary
    strategy: str
    params: dict[str, Any]
    settings: Settings
    out: Path | None = None
    seconds: float = math.nan
    worker_cpu_seconds: float = 0.0

    @property
    def synthetic(self) -> pd.DataFrame:
        """The rows of the synthetic paths."""
        return self.results[self.results["path"] != REAL]

    @property
    def real(self) -> pd.Series | None:
        """The real history's row, or None."""
        rows = self.results[self.results["path"] == REAL]
        return None if rows.empty else rows.iloc[0]

    @property
    def errors(self) -> pd.DataFrame:
        """The rows of paths that failed."""
        return self.results[self.results["error"].notna()]

    def plot(self, metrics: tuple[str, ...] = ("sharpe", "total_return", "max_drawdown"), bins: int = 40):
        """Histograms of ``metrics`` over the synthetic paths, the real history marked in red.

        Returns a ``matplotlib.figure.Figure`` (drawn with the Agg canvas; no display needed).
        """
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure

        unknown = [m for m in metrics if m not in METRICS]
        if unknown:
            raise ConfigError(f"Cannot plot {', '.join(unknown)}; metrics are {', '.join(METRICS)}.")
        figure = Figure(figsize=(4.2 * len(metrics), 3.4), layout="constrained")
        FigureCanvasAgg(figure)
        ok = self.synthetic[self.synthetic["error"].isna()]
        real = self.real
        for k, metric in enumerate(metrics):
            ax = figure.add_subplot(1, len(metrics), k + 1)
            values = ok[metric].astype(float).replace([np.inf, -np.inf], np.nan).dropna()
            if len(values):
                ax.hist(values, bins=bins, color="#4c72b0", alpha=0.85)
            if real is not None and real["error"] is None and pd.notna(real[metric]):
                rank = self.summary.metrics.loc[metric, "real_rank"]
                label = f"real: {float(real[metric]):.3g}" + (f" ({rank:.0f}th pct)" if pd.notna(rank) else "")
                ax.axvline(float(real[metric]), color="#c44e52", linewidth=2, label=label)
                ax.legend(loc="best", fontsize=8)
            ax.set_title(metric.replace("_", " "))
            ax.set_ylabel("paths")
        figure.suptitle(f"{self.strategy}: {len(ok)} synthetic paths")
        return figure

    def __repr__(self) -> str:
        return (
            f"MonteCarloResult({self.strategy}, {self.summary.n_paths} paths, {self.summary.n_failed} failed, "
            f"median sharpe {_fmt(self.summary.metrics.loc['sharpe', 'p50'])})"
        )

    def _repr_html_(self) -> str:
        params = ", ".join(f"{k}={v!r}" for k, v in self.params.items()) or "defaults"
        return f"<h4>Monte-Carlo backtest of {self.strategy} ({params})</h4>" + self.summary._repr_html_()


# --------------------------------------------------------------------------------------------
# The runner
# --------------------------------------------------------------------------------------------
def run_montecarlo(
    strategy: str | type,
    scenarios: ScenarioSet | Paths | str | os.PathLike,
    *,
    params: Mapping[str, Any] | None = None,
    cash: float = 100_000.0,
    commission: float = 0.001,
    slippage: float = 0.0,
    jobs: int | None = -1,
    backend: str = "local",
    ray_address: str | None = None,
    real: pd.DataFrame | str | None = None,
    out: str | os.PathLike | None = None,
    resume: bool = False,
    fail_fast: bool = False,
    batch_size: int | None = None,
    start_method: str | None = None,
    progress: bool = True,
) -> MonteCarloResult:
    """Backtest ``strategy`` on every path of ``scenarios`` (and on ``real``), in parallel.

    Parameters
    ----------
    strategy : str or type
        A registered strategy name (``synthmarket strategies`` lists them),
        ``package.module:Class``, ``path/to/file.py:Class``, or a ``backtrader.Strategy``
        subclass.
    scenarios : Paths, ScenarioSet, str or PathLike
        The paths: a :class:`~synthmarket.paths.Paths`, a scenario file written by
        ``synthmarket generate``, or a :class:`GeneratedScenarios` (sampled lazily).
    params : mapping, optional
        Strategy parameters; strings are converted to the type of each default.
    cash, commission, slippage : float
        Starting cash; commission and slippage as fractions (0.001 = 0.1 %).
    jobs : int, optional
        Worker processes: 1 runs here; -1 (default) uses every core. With Ray, the local
        cluster's CPUs (when none is running yet).
    backend : {"local", "ray"}
        Local processes, or Ray (``ray_address`` or a local cluster).
    ray_address : str, optional
        Address of a running Ray cluster.
    real : DataFrame or str, optional
        The real history (OHLCV bars, or a data name/file for :func:`synthmarket.data.load_data`);
        its row has ``path == "real"`` and the summary ranks it among the synthetic paths.
    out : path, optional
        Directory for ``results.parquet``, ``summary.json`` and ``run.json``; results are
        appended as batches finish. Without it, results stay in memory.
    resume : bool
        Skip the paths already stored in ``out`` (after a kill or Ctrl-C).
    fail_fast : bool
        Stop at the first path that raises (:class:`PathFailed`); by default the error is
        recorded in that path's ``error`` and the run goes on.
    batch_size : int, optional
        Paths per task (default: enough batches to keep every worker busy, at most 64 paths).
    start_method : str, optional
        ``forkserver`` (default where available), ``spawn`` or ``fork`` for local processes.
    progress : bool
        Show a progress bar (paths per second, ETA) on stderr.

    Returns
    -------
    MonteCarloResult

    Raises
    ------
    PluginError, ConfigError, DataError
        Unknown strategy, bad parameters or settings, unreadable scenarios.
    PathFailed
        With ``fail_fast``, when a path raises.
    WorkerDied
        When a worker process is killed; the finished paths are saved, ``resume=True`` finishes.

    Examples
    --------
    >>> result = run_montecarlo("sma_cross", paths, params={"fast": 5}, jobs=2, real=bars)  # doctest: +SKIP
    >>> result.summary.metrics.loc["sharpe", ["p5", "p50", "p95", "real_rank"]]             # doctest: +SKIP
    """
    started = time.perf_counter()
    if backend not in BACKENDS:
        raise ConfigError(f"Unknown backend {backend!r}; use one of {', '.join(BACKENDS)}.")
    label = strategy if isinstance(strategy, str) else strategy.__name__
    cls, ref = resolve_strategy(strategy)
    checked = coerce_params(cls, params, label=label)
    settings = Settings(float(cash), float(commission), float(slippage))
    source = as_scenarios(scenarios)
    real_bars = _real_bars(real)
    workers = resolve_jobs(jobs)
    if ref is None and (backend != "local" or workers > 1):
        raise ConfigError(
            f"{label} cannot be found again by name in a worker process (it is defined in __main__ or a "
            f"notebook). Save it in a file and pass 'path/to/file.py:{label}', or run with jobs=1."
        )
    manifest = {
        "format": FORMAT, "strategy": ref or label, "params": checked, "cash": settings.cash,
        "commission": settings.commission, "slippage": settings.slippage, "scenarios": source.fingerprint,
        "n_paths": source.n_paths, "n_steps": source.n_steps,
        "real": None if real_bars is None else _fingerprint_bars(real_bars),
    }
    store = ResultStore(out) if out is not None else None
    done = store.prepare(manifest, resume) if store is not None else set()
    memory_rows: list[dict[str, Any]] = []
    total = source.n_paths + (real_bars is not None)
    remaining = total - len(done)
    if batch_size is not None and int(batch_size) < 1:
        raise ConfigError(f"batch_size must be at least 1; got {batch_size}.")
    size = int(batch_size) if batch_size else max(1, min(64, math.ceil(max(remaining, 1) / (4 * workers))))
    in_process = backend == "local" and workers == 1
    tasks = _tasks(cls if in_process or ref is None else ref, checked, settings, source, real_bars, done, size, fail_fast)
    failure: BaseException | None = None
    progress_bar = _progress_bar(progress)
    sink = store.append if store is not None else memory_rows.extend
    cpu_seconds: list[float] = []
    try:
        with progress_bar:
            task_id = progress_bar.add_task(
                f"{label} on {describe_backend(backend, jobs, start_method)}", total=total, completed=len(done)
            )
            results = map_unordered(
                run_batch, tasks, jobs=workers, backend=backend, start_method=start_method,
                ray_address=ray_address, preload=("synthmarket.montecarlo",),
            )
            _collect(results, sink, lambda n: progress_bar.advance(task_id, n), cpu_seconds, fail_fast)
    except BaseException as exc:
        failure = exc
    frame = store.compact() if store is not None else tidy_results(memory_rows)
    if isinstance(failure, SynthmarketError):
        raise _explain(failure, frame, total, out) from None
    if failure is not None:
        if isinstance(failure, KeyboardInterrupt) and out is not None:
            progress_bar.console.print(
                f"Interrupted: {len(frame)} of {total} paths are saved in {Path(out) / RESULTS_FILE}; "
                f"run again with resume=True (--resume) to finish the rest.",
                highlight=False,
            )
        raise failure
    summary = Summary.of(frame)
    result = MonteCarloResult(
        results=frame, summary=summary, strategy=label, params=checked, settings=settings,
        out=None if out is None else Path(out), seconds=time.perf_counter() - started,
        worker_cpu_seconds=float(sum(cpu_seconds)),
    )
    if store is not None:
        _write_json(store.out / SUMMARY_FILE, {
            "strategy": label, "params": checked, "cash": settings.cash, "commission": settings.commission,
            "slippage": settings.slippage, **summary.to_dict(),
        })
    return result


def _collect(results: Iterator[BatchResult], sink, advance, cpu_seconds: list[float], fail_fast: bool) -> None:
    """Store each finished batch as it comes; stop at the first error when ``fail_fast``."""
    try:
        for batch in results:
            sink(batch.rows)
            advance(len(batch.rows))
            cpu_seconds.append(batch.cpu_seconds)
            if fail_fast:
                failed = next((r for r in batch.rows if r["error"] is not None), None)
                if failed is not None:
                    raise PathFailed(f"Path {failed['path']} failed: {failed['error']}.")
    finally:
        close = getattr(results, "close", None)
        if close is not None:
            close()  # stops the workers when leaving early


def _explain(failure: SynthmarketError, frame: pd.DataFrame, total: int, out) -> SynthmarketError:
    """The same kind of error, saying what was saved and how to finish the run."""
    saved = f"{len(frame)} of {total} paths are saved"
    where = f" in {Path(out) / RESULTS_FILE}; run again with resume=True (--resume) to finish the rest" if out else ""
    return type(failure)(f"{failure} {saved}{where}.")


def _real_bars(real: pd.DataFrame | str | None) -> FeedArrays | None:
    if real is None:
        return None
    if isinstance(real, str):
        from .data import load_data

        real = load_data(real)
    if not isinstance(real, pd.DataFrame):
        raise DataError(f"real must be an OHLCV DataFrame or a data name/file; got {type(real).__name__}.")
    return FeedArrays.from_frame(real)


def _fingerprint_bars(bars: FeedArrays) -> str:
    digest = hashlib.sha256()
    for k in ("dates", *FIELDS):
        digest.update(np.ascontiguousarray(getattr(bars, k)).tobytes())
    return digest.hexdigest()[:16]


def _tasks(
    strategy: str | type, params: dict, settings: Settings, source: ScenarioSet, real: FeedArrays | None,
    done: set[str], size: int, fail_fast: bool,
) -> Iterator[BatchTask]:
    """Batches of the paths not yet done: the real history first, then the synthetic paths."""
    make = functools.partial(BatchTask, strategy, params, settings, fail_fast=fail_fast)
    if real is not None and REAL not in done:
        bars = np.stack([getattr(real, k) for k in FIELDS])[:, None, :]
        yield make((REAL,), real.dates, bars)
    offset = 0
    for chunk in source.chunks():
        dates = date_numbers(chunk.dates)
        todo = [i for i in range(chunk.n_paths) if str(offset + i) not in done]
        for start in range(0, len(todo), size):
            index = todo[start : start + size]
            bars = np.stack([np.asarray(getattr(chunk, k), dtype=np.float64)[index] for k in FIELDS])
            yield make(tuple(str(offset + i) for i in index), dates, bars)
        offset += chunk.n_paths
    if offset != source.n_paths:
        raise DataError(f"The scenario source gave {offset} paths; it announced {source.n_paths}.")


class _RateColumn(ProgressColumn):
    """Progress column: paths per second."""

    def render(self, task) -> Text:
        speed = task.finished_speed or task.speed
        return Text("-- paths/s" if not speed else f"{speed:,.1f} paths/s", style="progress.data.speed")


def _progress_bar(enabled: bool):
    from rich.console import Console
    from rich.progress import (
        BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn,
    )

    return Progress(
        TextColumn("[progress.description]{task.description}"), BarColumn(), MofNCompleteColumn(),
        _RateColumn(), TimeElapsedColumn(), TextColumn("ETA"), TimeRemainingColumn(),
        console=Console(stderr=True), disable=not enabled, transient=False,
    )


__all__ = [
    "BatchResult", "BatchTask", "COLUMNS", "GeneratedScenarios", "InMemoryScenarios", "METRICS",
    "MonteCarloResult", "PathFailed", "REAL", "ResultStore", "ScenarioSet", "Settings", "Summary",
    "WorkerDied", "as_scenarios", "backtest_path", "coerce_params", "compute_metrics", "parse_param_items",
    "read_results", "resolve_strategy", "run_batch", "run_montecarlo", "strategy_params", "tidy_results",
]
