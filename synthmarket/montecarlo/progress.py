"""The progress bar of a run: paths done, paths per second, elapsed time and ETA, on stderr."""

from __future__ import annotations

from rich.progress import ProgressColumn
from rich.text import Text


class _RateColumn(ProgressColumn):
    """Progress column: paths per second."""

    def render(self, task) -> Text:
        speed = task.finished_speed or task.speed
        return Text("-- paths/s" if not speed else f"{speed:,.1f} paths/s", style="progress.data.speed")


def progress_bar(enabled: bool):
    """A ``rich`` progress bar on stderr (drawing nothing when ``enabled`` is false)."""
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    return Progress(
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        _RateColumn(),
        TimeElapsedColumn(),
        TextColumn("ETA"),
        TimeRemainingColumn(),
        console=Console(stderr=True),
        disable=not enabled,
        transient=False,
    )
