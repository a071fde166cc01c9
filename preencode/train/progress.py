"""What training shows while it runs: step/max-steps, loss, steps per second and ETA.

Lightning's own bar counts batches of an epoch ("Epoch 29/-2 ... 0.00it/s v_num"), which says nothing
about a run bounded by ``--max-steps`` over a dataset smaller than a batch. This callback counts
optimiser steps (``trainer.global_step``, so a resumed run continues its count) on rank 0:

* ``bar`` (a terminal): one tqdm line, ``step 120/200 | loss 0.231 | 3.4 steps/s | ETA 00:00:23``;
* ``log`` (anything else: a file, a pipe, a scheduler's log): the same line logged at the first step,
  every ``every`` steps (a tenth of ``--max-steps``, at most :data:`MAX_EVERY`) and at the last step;
* ``none``: nothing.

steps/s counts the steps of this run only (not those of a resumed checkpoint), from its first step.
"""

from __future__ import annotations

import logging
import math
import sys
import time
from typing import Any

import lightning as L

log = logging.getLogger("preencode.train.progress")

MODES = ("auto", "bar", "log", "none")
#: Steps between log lines when the run has no --max-steps, and at most with one.
DEFAULT_EVERY = 100
MAX_EVERY = 1000


def log_interval(max_steps: int | None) -> int:
    """Steps between two ``log`` lines: about 10 lines for a bounded run (and one at least every
    :data:`MAX_EVERY` steps), :data:`DEFAULT_EVERY` without a bound."""
    if not max_steps or max_steps <= 0:
        return DEFAULT_EVERY
    return min(max(1, math.ceil(max_steps / 10)), MAX_EVERY)


def clock(seconds: float) -> str:
    """``HH:MM:SS`` (``?`` for an unknown time)."""
    if not math.isfinite(seconds) or seconds < 0:
        return "?"
    seconds = round(seconds)
    return f"{seconds // 3600:02d}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"


class TrainingProgress(L.Callback):
    """Training progress on rank 0 (see the module's docstring).

    Args:
        mode: ``auto`` (a bar on a terminal, log lines otherwise), ``bar``, ``log`` or ``none``.
        every: steps between ``log`` lines (default: :func:`log_interval` of the trainer's max_steps).
    """

    def __init__(self, mode: str = "auto", every: int | None = None) -> None:
        if mode not in MODES:
            raise ValueError(f"progress mode {mode!r}; valid: {', '.join(MODES)}")
        self.mode = ("bar" if sys.stderr.isatty() else "log") if mode == "auto" else mode
        self.every = every
        self.bar: Any = None
        self.first_step: int | None = None  # global_step when this run's first step ended
        self.first_at = 0.0
        self.shown = -1  # global_step of the last line shown

    @staticmethod
    def _max_steps(trainer: L.Trainer) -> int | None:
        return trainer.max_steps if trainer.max_steps and trainer.max_steps > 0 else None

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if not trainer.is_global_zero or self.mode == "none":
            self.mode = "none"
            return
        if self.every is None:
            self.every = log_interval(self._max_steps(trainer))
        if self.mode == "bar":
            from tqdm import tqdm

            total = self._max_steps(trainer)
            self.bar = tqdm(total=total, initial=trainer.global_step, unit="step", dynamic_ncols=True,
                            desc="training", bar_format="{desc}: {n_fmt}/{total_fmt} steps |{bar}| {postfix}"
                            if total else "{desc}: {n_fmt} steps | {postfix}")

    def on_train_batch_end(self, trainer: L.Trainer, pl_module: L.LightningModule, outputs: Any, batch: Any,
                           batch_idx: int) -> None:
        if self.mode == "none":
            return
        step = trainer.global_step
        if step == self.shown or step == 0:  # gradient accumulation: no optimiser step this batch
            return
        now = time.monotonic()
        if self.first_step is None:
            self.first_step, self.first_at = step, now
        max_steps = self._max_steps(trainer)
        text = self.line(step, max_steps, self._loss(trainer), now)
        if self.bar is not None:
            self.bar.update(step - self.bar.n)
            self.bar.set_postfix_str(text.split(" | ", 1)[1] if " | " in text else "", refresh=True)
        elif step % (self.every or 1) == 0 or step == max_steps or self.shown < 0:
            log.info("%s", text)
        self.shown = step

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.close()

    def on_exception(self, trainer: L.Trainer, pl_module: L.LightningModule, exception: BaseException) -> None:
        self.close()

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None

    def rate(self, step: int, now: float) -> float | None:
        """Optimiser steps per second since this run's first step (None before the second)."""
        if self.first_step is None or step <= self.first_step or now <= self.first_at:
            return None
        return (step - self.first_step) / (now - self.first_at)

    def line(self, step: int, max_steps: int | None, loss: float | None, now: float) -> str:
        """``step 12/40 | loss 0.256 | 3.1 steps/s | ETA 00:00:09`` (the parts known so far)."""
        parts = [f"step {step}/{max_steps}" if max_steps else f"step {step}"]
        if loss is not None:
            parts.append(f"loss {loss:.4g}")
        rate = self.rate(step, now)
        parts.append(f"{rate:.2f} steps/s" if rate is not None else "? steps/s")
        if max_steps:
            parts.append(f"ETA {clock((max_steps - step) / rate) if rate else '?'}")
        return " | ".join(parts)

    @staticmethod
    def _loss(trainer: L.Trainer) -> float | None:
        value = trainer.callback_metrics.get("train/loss")
        return float(value) if value is not None else None
