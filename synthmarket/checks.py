"""Checks of the values a user passes in, shared by the API and the CLI (each raises ConfigError)."""

from __future__ import annotations

import numbers

from .errors import ConfigError

#: The seeds that numpy's SeedSequence and torch.manual_seed both take.
MAX_SEED = 2**63 - 1


def check_seed(seed, option: str = "seed") -> int | None:
    """``seed`` as an int in 0..MAX_SEED (None passes through: fresh randomness)."""
    if seed is None:
        return None
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral) or not 0 <= seed <= MAX_SEED:
        raise ConfigError(f"{option} must be a whole number from 0 to {MAX_SEED:,} (2**63 - 1); got {seed!r}.")
    return int(seed)
