"""The market a scenario starts from: the real bars before it, its *context*.

A context-aware generator (``Generator.uses_context``) starts every path from the state of
the market at the context's last bar (``garch`` and ``fhs``: the conditional variance filtered
over the context); the others accept a context and leave it unused (they sample their
stationary distribution). A context is given as

- ``"last"``: the end of the training data, which a context-aware model keeps (the last
  :data:`KEPT` bars), so that ``generate`` continues the market's state as well as its price;
- ``None``: no context, the unconditional sampling of a model;
- real OHLCV bars (a DataFrame, such as :func:`bars_up_to` gives) or their features (an
  array ``(T, C)`` as :func:`synthmarket.bars.to_features` makes them).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from .bars import to_features
from .errors import ConfigError, DataError

LAST = "last"
#: Bars of the end of its training data a context-aware model keeps, for ``context="last"``.
KEPT = 1000


def context_features(generator, context) -> np.ndarray | None:
    """The context as unscaled features ``(T, C)`` for ``generator``, checked; None for none.

    Raises
    ------
    ConfigError
        A context with other channels than the model's, shorter than its ``min_context``, or
        an unknown word.
    """
    if context is None:
        return None
    if isinstance(context, str):
        if context != LAST:
            raise ConfigError(f"context is 'last', None, real bars or their features; got {context!r}.")
        return getattr(generator, "context_tail", None)
    if isinstance(context, pd.DataFrame):
        if len(context) < 2:
            raise ConfigError(f"A context needs at least 2 bars (one return); got {len(context)}.")
        features = to_features(context)
    else:
        features = np.asarray(context, dtype=np.float64)
    channels = generator.scaler.channels
    if features.ndim != 2 or features.shape[1] != len(channels):
        raise ConfigError(
            f"The context has {features.shape[-1] if features.ndim == 2 else 'no'} channels; this {generator.name} "
            f"model has {len(channels)} ({', '.join(channels)}). Give bars with the same columns as its training data"
            f"{' (with volume)' if 'volume' in channels else ' (without volume)'}."
        )
    if not np.isfinite(features).all():
        raise ConfigError("The context holds non-finite values (a zero or missing price).")
    needed = int(getattr(generator, "min_context", 0))
    if len(features) < needed:
        raise ConfigError(
            f"This {generator.name} model needs at least {needed} bars of context; got {len(features)}. "
            f"Start later, or give more history."
        )
    return features


def bars_up_to(bars: pd.DataFrame, date, *, keep: int = KEPT + 1) -> pd.DataFrame:
    """The last ``keep`` bars of ``bars`` up to and including ``date``: the context of a scenario
    that starts on the next bar ("stand on 2008-09-12 and sample what follows").

    Raises
    ------
    ConfigError
        When ``date`` lies outside the data.
    """
    when = pd.Timestamp(date)
    if when < bars.index[0] or when > bars.index[-1]:
        raise ConfigError(
            f"--from {when:%Y-%m-%d} lies outside the data ({bars.index[0]:%Y-%m-%d}..{bars.index[-1]:%Y-%m-%d})."
        )
    upto = bars.loc[:when]
    if len(upto) < 2:
        raise DataError(f"Only {len(upto)} bar(s) up to {when:%Y-%m-%d}; a context needs at least 2.")
    return upto.iloc[-keep:]


def chosen_context(word: str = LAST, from_date=None, data=None, *, date_format: str | None = None):
    """The context the command line chose: ``--context last|none``, or with ``--from DATE`` the
    bars of ``--data`` up to that date.

    Raises
    ------
    ConfigError
        ``--from`` without ``--data`` (or the reverse), both ``--from`` and ``--context none``,
        an unknown word, or a date outside the data.
    """
    word = (word or LAST).lower()
    if word not in (LAST, "none"):
        raise ConfigError(f"--context is 'last' or 'none'; got {word!r}.")
    if from_date is None:
        if data is not None:
            raise ConfigError("--data gives the history a scenario starts from; say where with --from DATE.")
        return None if word == "none" else LAST
    if word == "none":
        raise ConfigError("--from starts the paths from the market on that date; drop --context none.")
    if data is None:
        raise ConfigError("--from DATE needs the history it stands on: give --data NAME|PATH.")
    from .data import load_data

    return bars_up_to(load_data(data, date_format=date_format), from_date)


def describe(generator, context) -> str:
    """Where paths start, in words, for the messages of ``generate`` and the report."""
    if not generator.uses_context:
        return f"{generator.name} does not use the market's state: unconditional paths"
    if context is None:
        return "no context: unconditional paths"
    if isinstance(context, pd.DataFrame):
        return f"from the market on {context.index[-1]:%Y-%m-%d}"
    if isinstance(context, str) and getattr(generator, "context_tail", None) is None:
        return "this model was saved without its training data's end: unconditional paths"
    if isinstance(context, str):
        return f"from the market's state at the end of the training data ({generator.anchor.date})"
    return f"from a context of {len(context)} bars"
