"""Progress of a long run (files done/total, audio seconds per second, ETA) and the run's times.

A tqdm bar on a terminal; otherwise at most one log line per second (``--progress log``). The progress
and the summary's times share one clock: encoding starts when the predict loop starts, and the run
started when the process did (:mod:`preencode.clock`), so start-up is reported, not hidden.
"""

from __future__ import annotations

import logging
import sys
import time
from typing import Any

log = logging.getLogger("preencode.progress")


class Progress:
    def __init__(self, total: int, mode: str = "auto", rank_note: str = "", min_interval: float = 1.0,
                 start: float | None = None) -> None:
        self.total, self.done, self.audio_seconds = total, 0, 0.0
        self.start = time.monotonic() if start is None else start
        self.last = 0.0
        self.min_interval = min_interval
        self.rank_note = rank_note
        if mode == "auto":
            mode = "bar" if sys.stderr.isatty() else "log"
        self.mode = mode
        self.bar = None
        if mode == "bar":
            from tqdm import tqdm

            self.bar = tqdm(total=total, unit="file", dynamic_ncols=True, desc=f"encoding{rank_note}")

    def update(self, files: int, audio_seconds: float) -> None:
        self.done += files
        self.audio_seconds += audio_seconds
        now = time.monotonic()
        if self.bar is not None:
            self.bar.update(files)
            self.bar.set_postfix_str(f"{self.rate:.1f} audio s/s")
        elif self.mode == "log" and (now - self.last >= self.min_interval or self.done == self.total):
            self.last = now
            log.info("%s", self.line())

    @property
    def elapsed(self) -> float:
        return max(time.monotonic() - self.start, 1e-9)

    @property
    def rate(self) -> float:
        return self.audio_seconds / self.elapsed

    def line(self) -> str:
        eta = (self.total - self.done) * self.elapsed / self.done if self.done else float("nan")
        eta_text = time.strftime("%H:%M:%S", time.gmtime(eta)) if eta == eta else "?"
        return (f"encoding{self.rank_note}: {self.done}/{self.total} files, {self.rate:.1f} audio s/s, "
                f"ETA {eta_text}")

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def run_times(started: float, encoding_started: float | None, first_batch_at: float | None, ended: float,
              audio_seconds: float) -> dict[str, Any]:
    """The summary's times (seconds, ``time.monotonic`` instants in): the total from ``started`` (the
    process's start) split into start-up (until the predict loop started) and encoding, the time to the
    first encoded batch, and the rates: audio seconds per second while encoding, and end to end."""
    encoding_started = ended if encoding_started is None else encoding_started
    total, encoding = ended - started, ended - encoding_started
    return {
        "wall_seconds": total, "startup_seconds": encoding_started - started, "encoding_seconds": encoding,
        "first_batch_seconds": None if first_batch_at is None else first_batch_at - started,
        "audio_seconds_per_second": audio_seconds / encoding if encoding > 0 else 0.0,
        "realtime_factor": audio_seconds / total if total > 0 else 0.0,
    }
