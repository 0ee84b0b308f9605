"""Outputs that no run loses: one writer at a time, nothing left behind by a dead run.

- :func:`claim` makes a run the only writer of an output directory (or of one file, with
  ``lock_name``) for as long as it runs. The lock is a small JSON file naming its holder (pid,
  host, start time, command), created atomically (``O_CREAT | O_EXCL``) and removed when the
  run ends. A second run is refused with :class:`OutputInUse`; a lock whose process is dead
  (on this host) is stale, and the next run says so and takes it over.
- :func:`scratch` gives a run a ``PREFIX-PID`` path for its unfinished output, removed when
  the run ends, and first removes those of runs that died (their pid no longer runs).
- :func:`replace_entries` moves a finished output into place, keeping the old one until the
  new one is all there.
"""

from __future__ import annotations

import glob
import json
import os
import shutil
import signal
import socket
import sys
import threading
import time
from collections.abc import Iterable, Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path

from .errors import ConfigError

LOCK_FILE = ".synthmarket.lock"

#: The locks this process holds: claiming one of them again (a command and the library
#: function it calls) is a no-op.
_held: set[str] = set()


class OutputInUse(ConfigError):
    """Another run is writing into the same output."""


def note(message: str) -> None:
    """Tell the user, in one line on stderr, about something done on their behalf."""
    print(f"Note: {message}", file=sys.stderr, flush=True)


def pid_alive(pid: int) -> bool:
    """Whether process ``pid`` is running on this host (a zombie counts as dead)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # another user's process
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return True  # no /proc: the process exists
    return state != "Z"


@contextmanager
def claim(
    directory: str | os.PathLike, *, lock_name: str = LOCK_FILE, what: str | os.PathLike | None = None
) -> Iterator[Path]:
    """Hold the lock ``directory/lock_name`` while the block runs (the directory is created).

    ``what`` names the output in messages (default: the directory). While the lock is held,
    SIGTERM stops the run like Ctrl-C (KeyboardInterrupt), so that its clean-up runs. A new
    directory that the run leaves empty is removed again.

    Raises
    ------
    OutputInUse
        When a live run holds the lock; the message names it.
    ConfigError
        When ``directory`` is a file.
    """
    directory = Path(directory)
    lock = directory / lock_name
    key = os.path.abspath(lock)
    if key in _held:
        yield directory
        return
    if directory.exists() and not directory.is_dir():
        raise ConfigError(f"{str(directory)!r} is a file, not a directory; give a directory.")
    created = not directory.exists()
    directory.mkdir(parents=True, exist_ok=True)
    _take(lock, what or directory)
    _held.add(key)
    try:
        with _sigterm_as_interrupt():
            yield directory
    finally:
        _held.discard(key)
        if _read(lock).get("pid") == os.getpid():
            lock.unlink(missing_ok=True)
        if created:
            try:
                directory.rmdir()
            except OSError:
                pass  # not empty: the run wrote something


def claim_file(path: str | os.PathLike) -> AbstractContextManager[Path]:
    """:func:`claim` for one file: the lock ``.NAME.lock`` beside it."""
    path = Path(path)
    return claim(path.parent, lock_name=f".{path.name}.lock", what=path)


def _take(lock: Path, what) -> None:
    record = {
        "pid": os.getpid(),
        "host": socket.gethostname(),
        "started": time.strftime("%Y-%m-%d %H:%M:%S"),
        "command": " ".join([Path(sys.argv[0]).name, *sys.argv[1:]]) if sys.argv else "",
    }
    while True:
        try:
            fd = os.open(lock, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        except FileExistsError:
            holder = _read(lock)
            if not _stale(holder):
                raise OutputInUse(_busy_message(what, lock, holder)) from None
            note(
                f"{what}: taking over the lock of a run that is no longer running "
                f"(pid {holder['pid']}, started {holder.get('started', '?')})."
            )
            lock.unlink(missing_ok=True)
            continue
        with os.fdopen(fd, "w") as file:
            json.dump(record, file)
        return


def _read(lock: Path) -> dict:
    try:
        holder = json.loads(lock.read_text())
    except (OSError, ValueError):
        return {}
    return holder if isinstance(holder, dict) else {}


def _stale(holder: dict) -> bool:
    pid = holder.get("pid")
    if not isinstance(pid, int) or holder.get("host") != socket.gethostname():
        return False
    return pid == os.getpid() or not pid_alive(pid)  # our own pid: left by an earlier process that had it


def _busy_message(what, lock: Path, holder: dict) -> str:
    if not holder:
        who = "another run (its lock file cannot be read)"
    else:
        who = (
            f"another run: pid {holder.get('pid')} on {holder.get('host')}, started {holder.get('started')}"
            f" ({holder.get('command') or 'command unknown'})"
        )
    return (
        f"{str(what)!r} is in use by {who}. Wait for it to finish or choose another output; "
        f"if no such run is going on, delete {lock}."
    )


@contextmanager
def _sigterm_as_interrupt() -> Iterator[None]:
    if threading.current_thread() is not threading.main_thread() or signal.getsignal(signal.SIGTERM) != signal.SIG_DFL:
        yield
        return
    signal.signal(signal.SIGTERM, _interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)


def _interrupt(signum, frame) -> None:
    raise KeyboardInterrupt


@contextmanager
def scratch(directory: str | os.PathLike, prefix: str) -> Iterator[Path]:
    """The path ``directory/PREFIX-PID`` for this run's unfinished output (a file or a folder,
    left to the caller to create), removed when the block ends. ``PREFIX-PID`` entries of
    runs that died are removed first, each with a note."""
    directory = Path(directory)
    for entry in directory.glob(f"{glob.escape(prefix)}-*"):
        pid = entry.name[len(prefix) + 1 :]
        if pid.isdigit() and (int(pid) == os.getpid() or not pid_alive(int(pid))):
            _remove(entry)
            note(f"removed {entry}, left unfinished by an earlier run that stopped (pid {pid}).")
    path = directory / f"{prefix}-{os.getpid()}"
    try:
        yield path
    finally:
        _remove(path)


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


def write_text_atomic(path: str | os.PathLike, text: str) -> None:
    """Write ``path`` under a temporary name and rename it into place: an interrupted or failed
    write leaves the old file as it was and no partial one."""
    path = Path(path)
    partial = path.with_name(f".{path.name}.partial-{os.getpid()}")
    try:
        partial.write_text(text, encoding="utf-8")
        os.replace(partial, path)
    finally:
        partial.unlink(missing_ok=True)


def replace_entries(target: Path, source: Path, names: Iterable[str]) -> None:
    """Make the entries ``names`` of ``target`` those of ``source``: each is moved in from
    ``source``, or removed from ``target`` when ``source`` lacks it.

    The old entries are first moved aside (into ``target/.replaced-PID``), put back if any move
    fails or is interrupted, and deleted only once every new entry is in place. The first name
    leaves first and arrives last: give first the file that makes the output usable.
    """
    names = list(names)
    aside = target / f".replaced-{os.getpid()}"
    aside.mkdir()
    moved_out: list[str] = []
    moved_in: list[str] = []
    try:
        for name in names:
            if os.path.lexists(target / name):
                os.replace(target / name, aside / name)
                moved_out.append(name)
        for name in reversed(names):
            if os.path.lexists(source / name):
                os.replace(source / name, target / name)
                moved_in.append(name)
    except BaseException:
        for name in moved_in:
            os.replace(target / name, source / name)
        for name in moved_out:
            os.replace(aside / name, target / name)
        aside.rmdir()
        raise
    shutil.rmtree(aside)


__all__ = ["LOCK_FILE", "OutputInUse", "claim", "claim_file", "note", "pid_alive", "replace_entries", "scratch"]
