"""A path's own output: what the strategy prints (stdout and stderr) while one path runs, kept
apart from every other path's and capped in size, and where it goes in the run directory.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

#: Characters of output kept per path; the log says when more was cut.
LOG_LIMIT = 100_000
LOGS_DIR = "logs"
ANALYZERS_DIR = "analyzers"


class CappedText:
    """A text stream that keeps the first ``limit`` characters and counts the rest."""

    def __init__(self, limit: int = LOG_LIMIT) -> None:
        self.limit, self.parts, self.kept, self.dropped = limit, [], 0, 0

    def write(self, text: str) -> int:
        room = self.limit - self.kept
        if room > 0:
            self.parts.append(text[:room])
            self.kept += min(room, len(text))
        self.dropped += max(0, len(text) - max(room, 0))
        return len(text)

    def flush(self) -> None:
        pass

    def isatty(self) -> bool:
        return False

    def getvalue(self) -> str:
        text = "".join(self.parts)
        if self.dropped:
            text += (
                f"\n[synthmarket: this path's output is cut at {self.limit:,} characters; "
                f"{self.dropped:,} more were not kept]\n"
            )
        return text


@contextlib.contextmanager
def captured(limit: int = LOG_LIMIT) -> Iterator[CappedText]:
    """Send ``sys.stdout`` and ``sys.stderr`` to one :class:`CappedText` while the block runs."""
    sink = CappedText(limit)
    saved = sys.stdout, sys.stderr
    sys.stdout = sys.stderr = sink
    try:
        yield sink
    finally:
        sys.stdout, sys.stderr = saved


def file_name(path_id: str, suffix: str) -> str:
    """A file name for a path id, whatever characters the id holds."""
    return quote(path_id, safe="") + suffix


def log_file(out: Path, path_id: str) -> Path:
    """Where a path's output is kept in the run directory ``out``."""
    return Path(out) / LOGS_DIR / file_name(path_id, ".log")


def prefixed(path_id: str, text: str) -> str:
    """``text`` with each line prefixed by its path (``--show-output``)."""
    return "".join(f"[path {path_id}] {line}" for line in text.splitlines(keepends=True)).rstrip("\n")
