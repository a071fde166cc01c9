"""The clock of a command: times measured from the moment the process started, start-up included.

A command's reported times (``preencode encode``'s summary, its progress, ``--summary-json``) count
from :func:`command_start`: the process's start as the operating system recorded it when the command
line runs (``/proc/self/stat``: the interpreter's own start-up and every import included), else the
moment :func:`start_command` was called (a command run from Python, e.g. by tests or the demo, or a
system without ``/proc``).
"""

from __future__ import annotations

import os
import time

_IMPORTED = time.monotonic()
_command_start: float | None = None


def process_age() -> float | None:
    """Seconds since the operating system started this process, or None where it does not say (not Linux).

    ``/proc/self/stat`` field 22 is the start time in clock ticks since boot, the clock of
    ``CLOCK_BOOTTIME``; its resolution is one tick (10 ms).
    """
    try:
        with open("/proc/self/stat", "rb") as f:
            fields = f.read().rsplit(b")", 1)[1].split()  # after the command name, which may hold spaces
        start = int(fields[19]) / os.sysconf("SC_CLK_TCK")  # field 22; the list starts at field 3
        age = time.clock_gettime(time.CLOCK_BOOTTIME) - start
    except (OSError, ValueError, IndexError, AttributeError):
        return None
    return age if age >= 0 else None


def process_start() -> float:
    """The process's start on the :func:`time.monotonic` clock (where unknown: when preencode was imported)."""
    age = process_age()
    return _IMPORTED if age is None else min(time.monotonic() - age, _IMPORTED)


def start_command(at: float | None = None) -> None:
    """Mark the start of a command (``at`` on the :func:`time.monotonic` clock; default: now)."""
    global _command_start
    _command_start = time.monotonic() if at is None else at


def end_command() -> None:
    """Forget the start of the finished command (the next one, or a library call, starts its own clock)."""
    global _command_start
    _command_start = None


def command_start() -> float:
    """When the running command started (:func:`start_command`); outside a command: now."""
    return time.monotonic() if _command_start is None else _command_start
