"""``--full-length`` input: every file streamed completely, in overlapping chunks, by the loader workers.

Each worker takes a contiguous part of its rank's inputs and, for each input, decodes and resamples it
in blocks (:func:`preencode.audio.stream.stream_audio`) and cuts it into chunks
(:func:`preencode.encode.full_length.chunks.iter_chunks`); at most one chunk plus one block of audio per worker is
held, whatever the file's length. Chunks are batched in the worker: ``--batch-size`` counts chunks
(windows of ``--sample-size`` plus their context), not files. The module stitches the chunks of an input
(:mod:`preencode.encode.full_length.stitch`); an input's last chunk carries its metadata. Batches are
:class:`ChunkBatch` es of :class:`StreamedChunk` s (not to be confused with the cut-out
:class:`~preencode.encode.full_length.chunks.Chunk`, which a streamed chunk is made from).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import torch
from torch.utils.data import IterableDataset, get_worker_info

from ...audio import AudioLoadError, window_rng
from ...data.audio_windows import AudioWindowDataset, _ItemFailed, item_metadata
from ...data.failures import Failure, Rejection
from ...data.sharding import split_list
from .chunks import iter_chunks

log = logging.getLogger(__name__)

_SILENCE_PEAK = 10 ** (-60 / 20)  # -60 dBFS, as preencode.audio.is_silent


@dataclass(frozen=True)
class StreamedChunk:
    """A chunk of one input: its audio with context margins, and where its kept frames go.

    Attributes:
        index: the input's id.
        audio: ``[C, L]``, the chunk plus its margins.
        frame_start: the input's frame at which this chunk's kept frames start.
        keep_offset: the first kept frame within this chunk's encoder output.
        keep: how many frames are kept.
        samples: the input's audio samples this chunk owns (for the run's audio count).
        metadata: the input's metadata, on its last chunk only (None before).
        total_samples: the input's length in samples, on its last chunk only.
    """

    index: int
    audio: torch.Tensor
    frame_start: int
    keep_offset: int
    keep: int
    samples: int
    metadata: dict[str, Any] | None = None
    total_samples: int = 0

    @property
    def last(self) -> bool:
        return self.metadata is not None


@dataclass
class ChunkBatch:
    """Chunks of one or more inputs, and the failure and rejection records met while cutting them.

    Lightning moves it to the device with :meth:`to` (the chunks' audio only).
    """

    chunks: list[StreamedChunk]
    failures: list[Failure] = field(default_factory=list)
    rejections: list[Rejection] = field(default_factory=list)

    @property
    def audio_samples(self) -> int:
        return sum(chunk.samples for chunk in self.chunks)

    def to(self, device: torch.device | str, non_blocking: bool = False) -> ChunkBatch:
        return replace(self, chunks=[replace(c, audio=c.audio.to(device, non_blocking=non_blocking))
                                     for c in self.chunks])

    def pin_memory(self) -> ChunkBatch:
        return replace(self, chunks=[replace(c, audio=c.audio.pin_memory()) for c in self.chunks])


class FullLengthStream(IterableDataset):
    """Batches of chunks of the inputs in ``order`` (set by the data module before iterating).

    Args:
        dataset: gives the items, sample rate, channels and the dataset options (random crops do not
            apply: files are encoded from their start to their end).
        chunk_size: samples owned by each chunk (``--sample-size``).
        margin: context encoded on each side of a chunk (:func:`chunk_margin`).
        ratio: the model's downsampling ratio.
        batch_size: chunks per batch.
    """

    def __init__(self, dataset: AudioWindowDataset, chunk_size: int, margin: int, ratio: int, batch_size: int) -> None:
        super().__init__()
        self.dataset = dataset
        self.chunk_size, self.margin, self.ratio, self.batch_size = chunk_size, margin, ratio, batch_size
        self.order: list[int] = []

    def __iter__(self) -> Iterator[ChunkBatch]:
        info = get_worker_info()
        mine = self.order if info is None else split_list(self.order, info.num_workers, info.id)
        records: list[StreamedChunk | Failure | Rejection] = []
        chunks = 0
        for position in mine:
            for record in self.item_records(position):
                records.append(record)
                chunks += isinstance(record, StreamedChunk)
                if chunks >= self.batch_size:
                    yield collate_chunks(records)
                    records, chunks = [], 0
        if records:
            yield collate_chunks(records)

    def item_records(self, position: int) -> Iterator[StreamedChunk | Failure | Rejection]:
        """The chunk records of one input, or (possibly after some chunks) its failure or rejection."""
        item = self.dataset.items[position]
        try:
            yield from self._chunks(item)
        except (_ItemFailed, AudioLoadError) as failed:
            stage = getattr(failed, "stage", "decode")
            log.warning("Skipping %s (%s): %s", item.path, stage, failed.reason)
            yield Failure(item.path, stage, failed.reason, item.index, item.dataset_id)
        except Exception as err:  # last resort: one odd file must not stop a multi-hour run
            log.exception("Unexpected error on %s", item.path)
            yield Failure(item.path, "decode", f"unexpected {type(err).__name__}: {err}", item.index, item.dataset_id)

    def _chunks(self, item: Any) -> Iterator[StreamedChunk | Rejection]:
        from ...audio.stream import stream_audio

        ds = self.dataset
        source, extra = ds._read_source(item)
        flip = ds.augment_phase and bool(window_rng(ds.seed, item.index).random() < 0.5)
        blocks = stream_audio(source, ds.sample_rate, ds.channels, name=item.path)
        peak, first = _Peak(), None
        for chunk in iter_chunks(peak.track(blocks), self.chunk_size, self.margin, self.ratio):
            audio = torch.from_numpy(-chunk.audio if flip else chunk.audio)
            if first is None:  # what custom metadata sees: the first window
                first = audio[:, chunk.keep_offset * self.ratio:][:, :self.chunk_size].clone()
            owned, total = chunk.keep * self.ratio, 0
            final = None
            if chunk.total is not None:  # the last chunk
                owned, total = chunk.total - chunk.frame_start * self.ratio, chunk.total
                final = self._metadata(item, extra, total, flip, first)
                if ds.drop_silent and peak.value < _SILENCE_PEAK:
                    yield Rejection(item.path, "silent: the file's peak is below -60 dBFS", item.index,
                                    item.dataset_id)
                    return
                if final.get("__reject__"):
                    yield Rejection(item.path, f"rejected by custom metadata module {item.custom_metadata_module}",
                                    item.index, item.dataset_id)
                    return
            yield StreamedChunk(item.index, audio, chunk.frame_start, chunk.keep_offset, chunk.keep, owned, final,
                                total)

    def _metadata(self, item: Any, extra: dict[str, Any], total: int, flip: bool,
                  first: torch.Tensor) -> dict[str, Any]:
        ds = self.dataset
        info = item_metadata(item, extra, ds.sample_rate)
        info.update(timestamps=(0.0, 1.0), seconds_start=0, seconds_total=math.ceil(total / ds.sample_rate))
        if ds.augment_phase:
            info["phase_inverted"] = flip
        if item.custom_metadata_module:
            info = ds._custom_metadata(item, info, first)
        return info


class _Peak:
    """The largest absolute sample of the blocks passed through :meth:`track`."""

    def __init__(self) -> None:
        self.value = 0.0

    def track(self, blocks: Iterator[np.ndarray]) -> Iterator[np.ndarray]:
        for block in blocks:
            if block.size:
                self.value = max(self.value, float(np.abs(block).max()))
            yield block


def collate_chunks(records: list[StreamedChunk | Failure | Rejection]) -> ChunkBatch:
    """A batch of chunk records and failure/rejection records."""
    return ChunkBatch(chunks=[r for r in records if isinstance(r, StreamedChunk)],
                      failures=[r for r in records if isinstance(r, Failure)],
                      rejections=[r for r in records if isinstance(r, Rejection)])
