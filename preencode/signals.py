"""SIGINT (Ctrl-C) and SIGTERM for a long run: the first signal asks it to stop at its next boundary, a second
one kills the process at once.

Encoding (:mod:`preencode.encode.engine.stopping`) and training (:mod:`preencode.train.stopping`) each decide
where their boundary is; this module holds what they share: the request a signal sets, installing and
restoring the handlers, and the DataLoader workers' policy. Workers ignore both signals: a Ctrl-C reaches every
process of the terminal's group, and a worker that died of it would fail the run with a traceback instead of
stopping it; the main process shuts the workers down when it stops.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from types import FrameType
from typing import Any, TypeVar

from .errors import Interrupted

log = logging.getLogger(__name__)

SIGNALS = (signal.SIGINT, signal.SIGTERM)


@dataclass
class StopSignal:
    """Set by a signal. ``graceful`` while the run's loop is running: the signal then waits for its boundary;
    before, it stops the run at once with :class:`~preencode.errors.Interrupted`.

    Args:
        work: what has not started when a signal stops the run at once (e.g. ``encoding``).
        boundary: where a graceful stop happens, for the notice (e.g. ``the current batch``).
        fix: the fix of an immediate stop's message (None: none).
    """

    work: str = "the run"
    boundary: str = "the current step"
    fix: str | None = "re-run the same command to resume"
    signum: int | None = None
    graceful: bool = False

    @property
    def requested(self) -> bool:
        return self.signum is not None

    @property
    def exit_code(self) -> int:
        """128 + the signal's number: 130 for SIGINT, 143 for SIGTERM."""
        return 128 + (self.signum or signal.SIGINT)

    def handle(self, signum: int, frame: FrameType | None) -> None:
        name = signal.Signals(signum).name
        if self.signum is not None:  # the second signal: stop now
            signal.signal(signum, signal.SIG_DFL)
            os.kill(os.getpid(), signum)
            return
        self.signum = signum
        if not self.graceful:
            raise Interrupted(f"interrupted by {name} before {self.work} started", self.exit_code, fix=self.fix)
        log.warning("%s received: stopping after %s (send it again to stop at once).", name, self.boundary)


S = TypeVar("S", bound=StopSignal)


@contextlib.contextmanager
def catch_stop_signals(stop: S) -> Iterator[S]:
    """SIGINT and SIGTERM handled by ``stop`` inside the block (in the main thread only; the previous
    handlers are put back after it)."""
    if threading.current_thread() is not threading.main_thread():
        yield stop
        return
    previous: dict[int, Any] = {s: signal.getsignal(s) for s in SIGNALS}
    for s in SIGNALS:
        signal.signal(s, stop.handle)
    try:
        yield stop
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler if handler is not None else signal.SIG_DFL)


def ignore_in_worker(worker_id: int) -> None:
    """``worker_init_fn`` of the DataLoaders: workers leave stopping to the main process."""
    for s in SIGNALS:
        signal.signal(s, signal.SIG_IGN)
