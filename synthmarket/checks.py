"""Checks of the values a user passes in, shared by the API and the CLI (each raises ConfigError)."""

from __future__ import annotations

import numbers
import os
from pathlib import Path

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


def dangling_link(path) -> str | None:
    """Why a path that does not exist cannot be opened, when it is a symbolic link (else None)."""
    path = Path(path)
    if not path.is_symlink():
        return None
    return (f"{str(path)!r} is a symbolic link to {os.readlink(path)!r} that leads nowhere (a link loop, or its "
            f"target is gone); point it at a real file or directory.")
