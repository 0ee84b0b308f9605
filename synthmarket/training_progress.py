"""How a training run reports as it goes: the JSON-lines training log and the progress bar."""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .jsonutil import json_default

if TYPE_CHECKING:
    from .checkpoints import TrainingState

#: The training log's name in the output directory.
LOG_FILE = "train_log.jsonl"


class TrainingLog:
    """Append-only JSON-lines training log (no file: nothing is written)."""

    def __init__(self, path: Path | None, append: bool) -> None:
        self.path = path
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            if not append:
                path.write_text("")

    def write(self, **row: Any) -> None:
        if self.path is None:
            return
        row = {"time": round(time.time(), 3), **row}
        with open(self.path, "a") as f:
            f.write(json.dumps(row, default=json_default) + "\n")


@contextlib.contextmanager
def progress_bar(
    enabled: bool,
    total: int,
    budget: float | None,
    state: TrainingState,
    console,
) -> Iterator[Callable[[dict], None]]:
    """A bar that fills with the steps, or with the time budget when that will end the run first."""
    if not enabled:
        yield lambda losses: None
        return
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

    columns = (
        TextColumn("training"),
        BarColumn(),
        TextColumn("step {task.fields[step]:,}/{task.fields[steps]:,}"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        TextColumn("{task.fields[losses]}"),
    )

    def done() -> float:
        by_time = 0.0 if budget is None else min(1.0, state.elapsed / budget)
        return max(state.step / total, by_time)

    with Progress(*columns, console=console, transient=False) as progress:
        task = progress.add_task("train", total=1.0, completed=done(), step=state.step, steps=total, losses="")

        def update(losses: dict) -> None:
            text = "  ".join(f"{k} {v:.4f}" for k, v in losses.items())
            progress.update(task, completed=done(), step=state.step, losses=text)

        yield update
        progress.update(task, completed=done(), step=state.step)
