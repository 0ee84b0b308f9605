"""Failures told honestly: a strategy that cannot run on these paths is one message before the
run (:func:`check_builds`); a failed path says where in the user's code it failed, with a hint
for known backtrader pitfalls (:func:`describe`); the most common errors; ``max_failures``.
"""

from __future__ import annotations

import inspect
import math
import re
import traceback
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ..errors import ConfigError, SynthmarketError
from ..feeds import FeedArrays, date_numbers
from .metrics import build_strategy
from .output import captured
from .settings import Settings

if TYPE_CHECKING:
    import pandas as pd

#: Why a second view counts the failed paths: said wherever the survivors' figures are shown.
SURVIVORS_WARNING = (
    "Survivors-only figures leave out the failed paths, which are often the paths where the market "
    "went against the strategy, so they look better than the truth; the second view counts each "
    "failed path at its value when it failed."
)

_DATA_ATTRIBUTE = re.compile(r"has no attribute '(data(\d+)|data_?\w*)'")


class TooManyFailures(SynthmarketError):
    """More paths failed than ``max_failures`` allows (or every path failed). The run is complete
    and saved; ``result`` is its :class:`~.summary.MonteCarloResult`."""

    def __init__(self, message: str, result) -> None:
        super().__init__(message)
        self.result = result


def user_files(strategy: type, extra: Iterable[str] = ()) -> frozenset[str]:
    """The files of the user's code: the strategy's own file and its bases' (backtrader's
    excluded), and the files the run settings name."""
    files = set(extra)
    for cls in inspect.getmro(strategy):
        module = getattr(cls, "__module__", "") or ""
        if module.split(".")[0] in ("backtrader", "builtins"):
            continue
        try:
            files.add(inspect.getsourcefile(cls) or "")
        except TypeError:
            continue
    return frozenset(str(Path(f).resolve()) for f in files if f)


def describe(exc: BaseException, files: frozenset[str], feeds: tuple[str, ...]) -> str:
    """``Type: message (at file.py:line in function)``, the location being the deepest frame in
    the user's own ``files`` (else the deepest frame outside backtrader), and a hint when the
    error is a known pitfall."""
    frames = traceback.extract_tb(exc.__traceback__)
    mine = [f for f in frames if str(Path(f.filename).resolve()) in files]
    frame = (mine or frames or [None])[-1]
    where = f" (at {Path(frame.filename).name}:{frame.lineno} in {frame.name})" if frame else ""
    in_backtrader = bool(frames) and "backtrader" in Path(frames[-1].filename).parts
    return f"{type(exc).__name__}: {exc}{where}{_hint(exc, feeds, in_backtrader)}"


def _hint(exc: BaseException, feeds: tuple[str, ...], in_backtrader: bool) -> str:
    text = str(exc)
    match = _DATA_ATTRIBUTE.search(text) if isinstance(exc, AttributeError) else None
    if match is not None:
        given = ", ".join(f"data{i} ({what})" for i, what in enumerate(feeds))
        return (
            f". Hint: the strategy reads {match.group(1)}, but synthmarket gives each path {len(feeds)} "
            f"feed{'s' if len(feeds) > 1 else ''}: {given}. Add --resample weekly or --resample monthly "
            f"(resample=(...) in Python) for each further feed, as cerebro.resampledata would."
        )
    if isinstance(exc, AttributeError) and "'broker'" in text and in_backtrader:
        return (
            ". Hint: this analyzer reads the Broker observer, which synthmarket does not add (its Cerebro has "
            "stdstats=False); add it with a --setup function: cerebro.addobserver(bt.observers.Broker)."
        )
    if isinstance(exc, TypeError) and "object is not callable" in text and in_backtrader:
        return (
            ". Hint: an attribute the strategy sets may hide a backtrader method of the same name "
            "(self.stop = ... hides Strategy.stop, self.next, self.buy ...); rename the attribute."
        )
    return ""


def common_errors(results: pd.DataFrame, top: int = 3, ids: int = 5) -> list[tuple[str, int, list[str]]]:
    """The ``top`` most common errors of the failed paths: each error, how many paths, and the
    first ``ids`` of those paths (where to look: ``OUT/logs/ID.log``)."""
    failed = results[results["error"].notna()]
    counts = failed["error"].value_counts()
    return [
        (str(error), int(n), [str(p) for p in failed.loc[failed["error"] == error, "path"].head(ids)])
        for error, n in counts.head(top).items()
    ]


def error_line(error: str, n: int, paths: list[str]) -> str:
    """``3 x ValueError: ... (paths 4, 17, 90)``."""
    shown = ", ".join(paths) + (", ..." if n > len(paths) else "")
    return f"{n} x {error} (path{'s' if n > 1 else ''} {shown})"


def allowed_failures(max_failures: int | float | str, total: int) -> int:
    """How many of ``total`` paths may fail: ``max_failures`` is a count (``3``) or a share
    (``"5%"``, or a float below 1)."""
    text = str(max_failures).strip()
    try:
        if text.endswith("%"):
            share = float(text[:-1]) / 100
        elif isinstance(max_failures, float) and max_failures < 1:
            share = max_failures
        else:
            count = float(text)
            if count < 0 or not count.is_integer():
                raise ValueError(text)
            return int(count)
    except ValueError:
        raise ConfigError(f"max_failures is a count (3) or a share of the paths (5%); got {max_failures!r}.") from None
    if not (0 <= share <= 1):
        raise ConfigError(f"max_failures as a share must lie in 0%..100%; got {max_failures!r}.")
    return math.floor(share * total + 1e-9)


def check_failures(result, max_failures: int | float | str) -> None:
    """Raise :class:`TooManyFailures` when more paths of ``result`` failed than allowed, or all did."""
    rows = result.results
    total, failed = len(rows), int(rows["error"].notna().sum())
    if not failed:
        return
    allowed = allowed_failures(max_failures, total)
    if failed < total and failed <= allowed:
        return
    errors = "; ".join(error_line(*item) for item in common_errors(rows))
    head = f"Every path failed ({total})" if failed == total else f"{failed} of {total} paths failed"
    limit = "" if failed == total else f", more than --max-failures {max_failures} allows"
    saved = f" The results are saved in {result.out}." if result.out is not None else ""
    raise TooManyFailures(f"{head}{limit}. Most common: {errors}.{saved}", result)


def check_builds(cls: type, label: str, params: dict, settings: Settings, dates: pd.DatetimeIndex) -> None:
    """Build the strategy once on flat bars of the paths' dates: an error in its ``__init__``, or
    an indicator that needs more bars than a path has, is one message before the run, not one
    error per path."""
    flat = np.full(len(dates), 100.0)
    bars = FeedArrays(date_numbers(dates), flat, flat, flat, flat, flat)
    try:
        with captured():
            strategy = build_strategy(cls, bars, params, settings)
    except Exception as exc:
        where = describe(exc, user_files(cls, settings.user_files()), settings.feeds)
        raise ConfigError(f"{label} fails before its first bar: {where}") from None
    lengths = settings.feed_lengths(dates)
    for i, (needed, bars_given) in enumerate(zip(strategy._minperiods, lengths)):
        if needed > bars_given:
            raise ConfigError(
                f"{label} needs {needed} bars of data{i} ({settings.feeds[i]}) before its first next() (its "
                f"longest indicator period), but each path gives {bars_given}. Use longer paths or shorter periods."
            )
