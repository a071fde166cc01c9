"""Stopping a training run cleanly on SIGINT (Ctrl-C) or SIGTERM: at the next optimiser step, with a checkpoint.

While the Trainer runs, a signal only sets a flag (:class:`StopRequest`). The first optimiser step that ends
after it (every rank agrees on it, so that none is left waiting in a collective) saves ``last.ckpt`` and leaves
Lightning's loop (:class:`StopAtStepBoundary`); :func:`~preencode.train.run.train` then raises
:class:`~preencode.errors.Interrupted` (exit 130 or 143) naming the step and the checkpoint to resume from.
Before the Trainer runs there is nothing to save: a signal stops the run at once. A second signal kills the
process at once (checkpoints already written are whole: Lightning writes them through a temporary file).

Lightning installs a SIGTERM handler of its own when training starts, which leaves the loop at the end of the
batch without a checkpoint (and exit code 0); ours replaces it for the duration of training. DataLoader workers
ignore both signals (:func:`~preencode.signals.ignore_in_worker`, shared with encoding).
"""

from __future__ import annotations

import contextlib
import signal
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import lightning as L

from ..signals import StopSignal, catch_stop_signals, ignore_in_worker

__all__ = ["StopAtStepBoundary", "StopRequest", "TrainingStopped", "ignore_in_worker", "stop_on_signals"]


class TrainingStopped(Exception):
    """Raised at a step boundary, after ``last.ckpt`` was saved, to leave Lightning's loop."""

    def __init__(self, step: int, checkpoint: Path) -> None:
        super().__init__(f"stopped at step {step}")
        self.step = step
        self.checkpoint = checkpoint


@dataclass
class StopRequest(StopSignal):
    """Set by a signal; ``graceful`` while the Trainer runs (a signal then waits for the step boundary)."""

    work: str = "training"
    boundary: str = "the current step with a checkpoint"
    fix: str | None = None


def stop_on_signals() -> contextlib.AbstractContextManager[StopRequest]:
    """SIGINT and SIGTERM handled by a :class:`StopRequest` inside the block (in the main thread only)."""
    return catch_stop_signals(StopRequest())


class StopAtStepBoundary(L.Callback):
    """Saves ``checkpoint`` and raises :class:`TrainingStopped` at the first optimiser step that ends after a
    stop was requested (with gradient accumulation, a batch that did not step is not a boundary).

    Args:
        request: the run's :class:`StopRequest`.
        checkpoint: where to save (``<save_dir>/checkpoints/last.ckpt``).
    """

    def __init__(self, request: StopRequest, checkpoint: Path) -> None:
        self.request = request
        self.checkpoint = checkpoint
        self._step = -1

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._step = trainer.global_step
        if threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGTERM, self.request.handle)  # in place of Lightning's (see the module doc)

    def on_train_batch_end(self, trainer: L.Trainer, pl_module: L.LightningModule, outputs: Any, batch: Any,
                           batch_idx: int) -> None:
        if trainer.global_step == self._step:
            return
        self._step = trainer.global_step
        if trainer.strategy.reduce_boolean_decision(self.request.requested, all=False):
            trainer.save_checkpoint(self.checkpoint)
            raise TrainingStopped(trainer.global_step, self.checkpoint)

