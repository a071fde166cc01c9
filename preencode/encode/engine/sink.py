"""Where encoded samples go: a background thread that runs the store's writer, and the Lightning callback
that feeds it, keeps the accounting and stops the loop at a batch boundary when asked to."""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import lightning.pytorch as L
from lightning.pytorch.callbacks import BasePredictionWriter

from ...errors import StorageError
from ...store.sample import EncodedSample
from ...store.writer import NpyWriter, SampleWriter
from .module import EncodedBatch
from .progress import Progress
from .stopping import ALL_NON_FINITE, EARLY_BATCHES, EncodingStopped, StopFlag

#: Opens the writer of one rank folder.
WriterFactory = Callable[[Path], SampleWriter]


class BackgroundWriter:
    """Runs a writer's ``write`` in a thread; ``put`` blocks when ``max_pending`` samples are queued.

    An error in the thread is re-raised by the next ``put`` or by ``close``.
    """

    def __init__(self, writer: SampleWriter, max_pending: int = 64) -> None:
        self.writer = writer
        self.queue: queue.Queue[EncodedSample | None] = queue.Queue(maxsize=max_pending)
        self.error: OSError | StorageError | None = None
        self.written = 0
        self.thread = threading.Thread(target=self._run, name="preencode-writer", daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while True:
            item = self.queue.get()
            if item is None:
                return
            if self.error is not None:
                continue
            try:
                self.writer.write(item)
                self.written += 1
            except (OSError, StorageError) as err:  # disk full, permissions, S3 unreachable: stop and report
                self.error = err

    def put(self, sample: EncodedSample) -> None:
        if self.error is not None:
            raise self.error
        self.queue.put(sample)

    def close(self) -> None:
        """Write what is queued, then close the writer (committing an open shard unless a write failed)."""
        self.queue.put(None)
        self.thread.join()
        if self.error is None:
            self.writer.close()
        if self.error is not None:
            raise self.error


@dataclass
class RankStats:
    encoded: int = 0
    audio_seconds: float = 0.0
    failures: list[dict[str, Any]] = field(default_factory=list)
    rejected: list[dict[str, Any]] = field(default_factory=list)
    attempted: list[int] = field(default_factory=list)


class WriteCallback(BasePredictionWriter):
    """Writes each batch's samples under ``<output>/<global_rank>/`` as soon as it is encoded."""

    def __init__(self, output: Path, sample_rate: int, progress_mode: str = "auto",
                 make_writer: WriterFactory | None = None, stop: StopFlag | None = None) -> None:
        super().__init__(write_interval="batch")
        self.output = output
        self.sample_rate = sample_rate
        self.progress_mode = progress_mode
        self.make_writer: WriterFactory = make_writer or NpyWriter
        self.stop = stop or StopFlag()
        self.stats = RankStats()
        self.background: BackgroundWriter | None = None
        self.progress: Progress | None = None
        self.batches_encoded = 0  # batches that had windows to encode
        self.finite_seen = False
        #: When this rank's predict loop started and its first batch was encoded (``time.monotonic``).
        self.encoding_started: float | None = None
        self.first_batch_at: float | None = None

    def on_predict_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.encoding_started = time.monotonic()
        rank_dir = self.output / str(trainer.global_rank)
        self.background = BackgroundWriter(self.make_writer(rank_dir))
        datamodule = getattr(trainer, "datamodule", None)  # set by trainer.predict(datamodule=...)
        share = len(datamodule.share) if datamodule is not None else 0
        mode = self.progress_mode if trainer.global_rank == 0 else "none"
        note = f" (rank 0 of {trainer.world_size})" if trainer.world_size > 1 else ""
        self.progress = Progress(share, mode, note, start=self.encoding_started)

    def on_predict_batch_start(self, trainer: L.Trainer, pl_module: L.LightningModule, batch: Any, batch_idx: int,
                               dataloader_idx: int = 0) -> None:
        self.stop.check()  # a signal while the batch was loading: it is not encoded, its inputs stay pending

    def write_on_batch_end(self, trainer: L.Trainer, pl_module: L.LightningModule, prediction: EncodedBatch,
                           batch_indices: Any, batch: Any, batch_idx: int, dataloader_idx: int = 0) -> None:
        if self.background is None or self.progress is None:
            raise RuntimeError("write_on_batch_end before on_predict_start")
        if self.first_batch_at is None:
            self.first_batch_at = time.monotonic()
        for sample in prediction.samples:
            self.background.put(sample)
            self.stats.attempted.append(sample.index)
        for failure in prediction.failures:
            self.stats.failures.append(failure.to_dict())
            if failure.index is not None:
                self.stats.attempted.append(failure.index)
        for rejection in prediction.rejections:
            self.stats.rejected.append(rejection.to_dict())
            self.stats.attempted.append(rejection.index)
        seconds = prediction.audio_samples / self.sample_rate
        self.stats.encoded += len(prediction.samples)
        self.stats.audio_seconds += seconds
        self.progress.update(len(prediction.samples) + len(prediction.failures) + len(prediction.rejections), seconds)
        self._check_finite(prediction)
        self.stop.check()

    def _check_finite(self, prediction: EncodedBatch) -> None:
        """Stop when every window of the first :data:`EARLY_BATCHES` batches encoded to NaN/Inf."""
        non_finite = sum(1 for f in prediction.failures if f.stage == "encode")
        if not prediction.samples and not non_finite:
            return
        self.finite_seen |= bool(prediction.samples)
        self.batches_encoded += 1
        if self.batches_encoded == EARLY_BATCHES and not self.finite_seen:
            raise EncodingStopped(ALL_NON_FINITE)

    def on_predict_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._close()

    def on_exception(self, trainer: L.Trainer, pl_module: L.LightningModule, exception: BaseException) -> None:
        """Keep what was encoded: write the queued samples and commit the open shard (its records are whole)."""
        try:
            self._close()
        except (OSError, StorageError) as err:
            if isinstance(exception, EncodingStopped):
                exception.write_error = err
            # otherwise the exception that stopped the loop is the one to report

    def _close(self) -> None:
        if self.progress is not None:
            self.progress.close()
            self.progress = None
        if self.background is not None:
            background, self.background = self.background, None
            background.close()
