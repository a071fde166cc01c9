"""Stopping an encode run cleanly: on SIGINT (Ctrl-C) or SIGTERM, at the next batch boundary.

While batches are being encoded a signal only sets a flag: the write callback sees it when a batch
starts or ends, the samples already encoded are written (the open shard too, see
:class:`~preencode.encode.engine.sink.WriteCallback`), and the run ends with
:class:`~preencode.errors.Interrupted` (exit 130 or 143). Before and after that loop nothing is half
done (every file is written atomically), so a signal stops the run at once. A second signal kills
the process at once (what was committed is kept all the same).

DataLoader workers ignore both signals (:func:`~preencode.signals.ignore_in_worker`, shared with training).
"""

from __future__ import annotations

import contextlib
import signal
from dataclasses import dataclass

from ...errors import StorageError
from ...signals import SIGNALS, StopSignal, catch_stop_signals, ignore_in_worker

__all__ = ["SIGNALS", "StopFlag", "ignore_in_worker", "stop_on_signals"]
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
class StopFlag(StopSignal):
    """Set by a signal; ``graceful`` while batches are being encoded."""

    work: str = "encoding"
    boundary: str = "the current batch"

    def check(self) -> None:
        """Raise :class:`EncodingStopped` when a signal asked to stop."""
        if self.signum is not None:
            raise EncodingStopped(signal.Signals(self.signum).name)


def stop_on_signals() -> contextlib.AbstractContextManager[StopFlag]:
    """SIGINT and SIGTERM handled by a :class:`StopFlag` inside the block (the main thread only)."""
    return catch_stop_signals(StopFlag())
