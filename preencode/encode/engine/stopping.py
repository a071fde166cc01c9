"""Stopping an encode run cleanly: on SIGINT (Ctrl-C) or SIGTERM, at the next batch boundary.

While batches are being encoded a signal only sets a flag: the write callback sees it when a batch
starts or ends, the samples already encoded are written (the open shard too, see
:class:`~preencode.encode.engine.sink.WriteCallback`), and the run ends with
:class:`~preencode.errors.Interrupted` (exit 130 or 143). Before and after that loop nothing is half
done (every file is written atomically), so a signal stops the run at once. A second signal kills
the process at once (what was committed is kept all the same).

DataLoader workers ignore both signals (:func:`ignore_in_worker`): a Ctrl-C reaches every process of
the terminal's group, and a worker that died of it would make the main process fail with a traceback
instead of stopping; the main process shuts the workers down when it stops.
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
from typing import Any

from ...errors import Interrupted, StorageError

log = logging.getLogger(__name__)

SIGNALS = (signal.SIGINT, signal.SIGTERM)
#: Batches after which a run whose every window so far encoded to NaN/Inf stops: the weights are broken.
EARLY_BATCHES = 3
#: :attr:`EncodingStopped.reason` in that case (a signal's is its name, e.g. ``SIGTERM``).
ALL_NON_FINITE = "non-finite"


class EncodingStopped(Exception):
    """Raised at a batch boundary to leave Lightning's loop; ``reason`` says why."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason
        self.write_error: OSError | StorageError | None = None  # met while writing what was encoded before stopping


@dataclass
class StopFlag:
    """Set by a signal; ``graceful`` while batches are being encoded."""

    signum: int | None = None
    graceful: bool = False

    @property
    def requested(self) -> bool:
        return self.signum is not None

    @property
    def exit_code(self) -> int:
        return 128 + (self.signum or signal.SIGINT)

    def check(self) -> None:
        """Raise :class:`EncodingStopped` when a signal asked to stop."""
        if self.signum is not None:
            raise EncodingStopped(signal.Signals(self.signum).name)

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        name = signal.Signals(signum).name
        if self.signum is not None:  # the second signal: stop now
            signal.signal(signum, signal.SIG_DFL)
            os.kill(os.getpid(), signum)
            return
        self.signum = signum
        if not self.graceful:
            raise Interrupted(f"interrupted by {name} before encoding started", self.exit_code)
        log.warning("%s received: stopping after the current batch (send it again to stop at once).", name)


@contextlib.contextmanager
def stop_on_signals() -> Iterator[StopFlag]:
    """SIGINT and SIGTERM handled by a :class:`StopFlag` inside the block (the main thread only)."""
    flag = StopFlag()
    if threading.current_thread() is not threading.main_thread():
        yield flag
        return
    previous: dict[int, Any] = {s: signal.getsignal(s) for s in SIGNALS}
    for s in SIGNALS:
        signal.signal(s, flag._handle)
    try:
        yield flag
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler if handler is not None else signal.SIG_DFL)


def ignore_in_worker(worker_id: int) -> None:
    """``worker_init_fn`` of the DataLoaders: workers leave stopping to the main process."""
    for s in SIGNALS:
        signal.signal(s, signal.SIG_IGN)
