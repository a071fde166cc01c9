"""One run per output: an exclusive advisory lock on ``<output>/preencode.lock``.

The run that writes a tree (global rank 0 under DDP) holds ``fcntl.flock(LOCK_EX)`` on the lock file
for the whole run. The file records who holds it, as one JSON object::

    {"pid": 4242, "host": "node-1", "started": "2026-11-03T10:15:02+00:00",
     "command": "pre_encode.py --output-path out ...", "token": "<random hex>"}

so that a second run is refused at once with the first one named. The kernel releases the lock when
the process ends, however it ends; a lock file whose lock is free is left by a killed run and is
taken over with a notice. A run removes its lock file when it ends (unlink while still holding the
lock; a run that opened the old file notices that its path now names another file and tries again).
The other ranks of a run check that the file names their run: the ``token`` is sent to them by rank 0.

Advisory locks hold between processes that take them: on NFS and most cluster filesystems flock is
seen by every node; where it is not (e.g. Lustre mounted with ``localflock``), the token check still
stops ranks of two runs from mixing in one folder.
"""

from __future__ import annotations

import contextlib
import datetime
import errno
import fcntl
import json
import logging
import os
import socket
import sys
import uuid
from dataclasses import asdict, dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, Self

from ..errors import ResourceError
from .names import LOCK

log = logging.getLogger(__name__)

_ATTEMPTS = 5


@dataclass(frozen=True)
class LockInfo:
    """Who holds (or held) the lock."""

    pid: int
    host: str
    started: str
    command: str
    token: str

    @classmethod
    def for_this_process(cls) -> LockInfo:
        started = datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")
        return cls(os.getpid(), socket.gethostname(), started, " ".join(sys.argv), uuid.uuid4().hex)

    @classmethod
    def parse(cls, text: str) -> LockInfo | None:
        """The record in a lock file; None when it is empty or not one of ours (being written, damaged)."""
        try:
            data: Any = json.loads(text)
            return cls(int(data["pid"]), str(data["host"]), str(data["started"]), str(data["command"]),
                       str(data["token"]))
        except (ValueError, TypeError, KeyError):
            return None

    def describe(self) -> str:
        return f"pid {self.pid} on {self.host}, started {self.started}: {self.command}"


def read_lock(output: Path) -> LockInfo | None:
    """The record of ``<output>/preencode.lock`` (None when there is none or it cannot be read)."""
    try:
        return LockInfo.parse((output / LOCK).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError):
        return None


def lock_is_held(output: Path) -> bool:
    """Whether a process (on this host, or one whose flock this filesystem shares) holds the lock."""
    try:
        fd = os.open(output / LOCK, os.O_RDONLY)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)  # also releases a lock this probe took
    return False


def _in_use(output: Path) -> ResourceError:
    holder = read_lock(output)
    who = holder.describe() if holder else "its record is not written yet"
    return ResourceError(f"{output} is being written by another run ({who}).",
                         "Wait for it to finish (or stop it), then re-run; two runs on one output would mix their "
                         "latents.")


def refuse_if_locked(output: Path) -> None:
    """Refuse at once when another run holds ``output``'s lock (a cheap early check: the lock itself is
    taken later, by :func:`acquire_output_lock`).

    Raises:
        ResourceError: naming the other run's pid, host, start time and command.
    """
    if lock_is_held(output):
        raise _in_use(output)


class OutputLock:
    """The lock of one output folder, held from :meth:`acquire` to :meth:`release` (or the process's end).

    Use :func:`acquire_output_lock`; as a context manager it releases on exit.
    """

    def __init__(self, output: Path, fd: int, info: LockInfo) -> None:
        self.output, self.path, self.fd, self.info = output, output / LOCK, fd, info

    def release(self) -> None:
        """Remove the lock file and release the lock (a no-op the second time)."""
        if self.fd < 0:
            return
        with contextlib.suppress(OSError):
            if os.stat(self.path).st_ino == os.fstat(self.fd).st_ino:
                self.path.unlink()
        os.close(self.fd)  # releases the flock
        self.fd = -1

    def __enter__(self) -> Self:
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 traceback: TracebackType | None) -> None:
        self.release()


def acquire_output_lock(output: Path) -> OutputLock:
    """Take the lock of ``output`` (an existing folder) at once, or refuse.

    Raises:
        ResourceError: another run holds it (naming its pid, host, start time and command), or the
            lock file cannot be created (permissions, read-only filesystem).
    """
    path = output / LOCK
    for _ in range(_ATTEMPTS):
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise _in_use(output) from None
        except OSError as err:
            os.close(fd)
            if err.errno in (errno.ENOLCK, errno.EOPNOTSUPP, errno.ENOSYS):
                raise ResourceError(f"The filesystem of {output} does not support file locks ({err.strerror}).",
                                    "Write the output to a local or NFS folder.") from err
            raise
        try:
            same = os.stat(path).st_ino == os.fstat(fd).st_ino
        except FileNotFoundError:
            same = False
        if not same:  # the previous holder removed the file after we opened it: lock the new one
            os.close(fd)
            continue
        return _take(output, fd)
    raise ResourceError(f"Could not lock {path}: other runs keep replacing it.", "Re-run once they have finished.")


def _take(output: Path, fd: int) -> OutputLock:
    with os.fdopen(os.dup(fd), "r+", encoding="utf-8") as f:
        stale = LockInfo.parse(f.read())
        if stale is not None:
            log.warning("Taking over the lock of %s left by a run that is no longer running (%s).", output,
                        stale.describe())
        info = LockInfo.for_this_process()
        f.seek(0)
        f.truncate()
        f.write(json.dumps(asdict(info)) + "\n")
        f.flush()
        os.fsync(f.fileno())
    return OutputLock(output, fd, info)


def check_run_lock(output: Path, token: str) -> str | None:
    """For a rank other than 0: a problem when ``output``'s lock does not belong to the run with ``token``
    (None when it does). A lock record of another host is trusted on the token alone."""
    info = read_lock(output)
    if info is None:
        return (f"{output / LOCK} is missing or unreadable on this node; the output folder must be one shared "
                "folder that every node sees")
    if info.token != token:
        return f"{output / LOCK} names another run ({info.describe()})"
    if info.host == socket.gethostname() and not lock_is_held(output):
        return f"{output / LOCK} is not held by rank 0 of this run"
    return None
