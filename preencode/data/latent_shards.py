"""Training on pre-encoded shards streamed from local folders or S3: exactly once per epoch, resumable.

stable-audio-tools' config forms: ``"dataset_type": "wds"`` (or ``"s3"``) with ``"pre_encoded": true``; each
``datasets[]`` entry has ``path`` (a folder of ``.tar`` shards, any depth) or ``s3_path`` (an ``s3://`` prefix)
and an optional ``profile``. Shards are what ``preencode encode --output-format wds`` writes (and any WebDataset
shard of ``<key>.npy`` + ``<key>.json`` members). Every option of the loose-file dataset applies, by the same
code (:mod:`preencode.data.latent_sample`): crops, the ``seconds_start`` fix, std sidecars, padding masks,
custom metadata, ``min_length_sec``/``max_length_sec``.

How an epoch is read (see :mod:`preencode.data.shard_plan`): the shards are listed once (sizes only); every
(rank, worker) reader plans the epoch alone and reads its shards front to back (on S3: ranged GETs of 16 MiB,
not one request per sample), through a shuffle buffer; together the readers see every sample once.

Resuming mid-epoch: each sample carries its reader and its position in that reader's stream;
:class:`LatentStreamLoader` counts, per reader, the samples that reached the training loop.
``loader.state_dict()`` holds the epoch and these counts; ``load_state_dict()`` on a new loader (same
dataset, ranks and workers) makes every reader skip the samples already trained on (read again but not
decoded), so that the epoch completes exactly once. Lightning saves and restores a train dataloader with these
two methods in its checkpoints.

Differences from the reference's ``WebDatasetDataLoader`` with ``pre_encoded: true``: each epoch reads every
sample once (the reference draws shards with replacement, ``resampled_shards``, and counts ``epoch_steps``); a
sample that cannot be read is skipped and counted, never replaced; latents shorter than the crop are padded.
"""

from __future__ import annotations

import logging
import zlib
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..errors import DatasetError
from ..store.details import Details, read_details
from ..store.index import ShardFile, find_shards
from ..store.manifest import ManifestView, reader_view
from ..store.objects import ObjectPath, StorePath, is_s3_url
from ..store.reader import ReadError, Record, stream_shard
from .batches import Batch, collate_latents
from .latent_sample import (
    LatentSource,
    PosteriorReader,
    SampleRules,
    in_length_range,
    load_sample,
    read_posterior_std,
)
from .metadata import load_custom_metadata_fn
from .shard_plan import ShardTask, plan_epoch, shuffled

log = logging.getLogger(__name__)

#: Where a sample came from, in ``info`` until :class:`LatentStreamLoader` takes it out: ``[epoch, reader,
#: position]``.
POSITION_KEY = "__stream_position__"
STATE_VERSION = 1


@dataclass(frozen=True)
class _Shard:
    file: ShardFile
    source: int


def _root(src: LatentSource) -> StorePath:
    return ObjectPath(src.path, src.profile) if is_s3_url(src.path) else Path(src.path)


class LatentShardDataset(torch.utils.data.IterableDataset):
    """Pre-encoded latents in ``.tar`` shards under local folders or S3 prefixes, streamed.

    Yields ``(latents [C, L] float32, info)`` as :class:`~preencode.data.pre_encoded.PreEncodedDataset` does,
    ``info`` also holding :data:`POSITION_KEY`. Use it through :class:`LatentStreamLoader`.

    Args:
        sources: the dataset roots (``path`` a folder or an ``s3://`` prefix) with their per-entry options.
        latent_crop_length, random_crop, min_length_sec, max_length_sec, latent_extension, seconds_per_frame,
            seed, posterior_reader: as for ``PreEncodedDataset``.
        shuffle: shuffle the shard order per epoch and pass samples through a shuffle buffer (False: listing
            order, for validation).
        shuffle_buffer: samples held by each reader's shuffle buffer.
        rank, world_size: this process's share; None takes them from ``torch.distributed`` when the loader
            starts an epoch (a single process otherwise).

    Raises:
        DatasetError: a root holds no shards or cannot be listed, or a custom metadata module cannot be loaded.
        UserError: a root's details file has a format version this version does not read.
        StorageError: S3 cannot be reached.
    """

    def __init__(self, sources: list[LatentSource], *, latent_crop_length: int | None = None,
                 random_crop: bool = True, min_length_sec: float | None = None,
                 max_length_sec: float | None = None, latent_extension: str = "npy",
                 seconds_per_frame: float | None = None, seed: int = 0, shuffle: bool = True,
                 shuffle_buffer: int = 1000, rank: int | None = None, world_size: int | None = None,
                 posterior_reader: PosteriorReader | None = read_posterior_std) -> None:
        super().__init__()
        self.seed, self.shuffle, self.shuffle_buffer = seed, shuffle, shuffle_buffer
        self.rank, self.world_size = rank, world_size
        self.latent_suffix = f".{latent_extension}"
        self.sources = list(sources)
        self.shards: list[_Shard] = []
        self.rules: list[SampleRules] = []
        self.details: list[Details] = []
        self.manifests: list[ManifestView | None] = []  # per source: superseded copies are skipped
        self.length_ranges: list[tuple[float | None, float | None]] = []
        for i, src in enumerate(sources):
            root = _root(src)
            details = read_details(root)
            for problem in details.problems:
                log.warning("Pre-encoded dataset %r: %s", src.id, problem)
            try:
                found = find_shards(root)
            except FileNotFoundError:
                raise DatasetError(f"Pre-encoded dataset {src.id!r}: {root} does not exist.",
                                   "Check 'path' or 's3_path' in the dataset config.") from None
            if not found:
                raise DatasetError(f"Pre-encoded dataset {src.id!r}: no .tar shards under {root}.",
                                   "Point it at the output of `preencode encode --output-format wds`.")
            self.details.append(details)
            self.manifests.append(reader_view(root))
            self.shards.extend(_Shard(f, i) for f in found)
            self.rules.append(SampleRules(
                dataset_id=src.id, random_crop=random_crop, latent_suffix=self.latent_suffix,
                crop_length=src.latent_crop_length if src.latent_crop_length is not None else latent_crop_length,
                frame_seconds=details.latent.seconds_per_frame or seconds_per_frame,
                metadata_fn=load_custom_metadata_fn(src.custom_metadata_module) if src.custom_metadata_module
                else None, posterior_reader=posterior_reader))
            self.length_ranges.append((src.min_length_sec if src.min_length_sec is not None else min_length_sec,
                                       src.max_length_sec if src.max_length_sec is not None else max_length_sec))
        self.epoch = 0
        self.consumed: dict[int, int] = {}
        self.consumed_layout: tuple[int, int] | None = None
        log.info("Pre-encoded shards: %d shards (%.1f MB) in %d dataset(s)", len(self.shards),
                 sum(s.file.size for s in self.shards) / 1e6, len(self.sources))

    # the position of the stream (kept in the main process, copied to the workers when an epoch starts)

    def set_epoch(self, epoch: int) -> None:
        """Start ``epoch`` from its beginning; the current epoch is left where it is (Lightning calls this at the
        start of every epoch, also of one whose position was just restored from a checkpoint)."""
        if epoch != self.epoch:
            self._restart(epoch)

    def _restart(self, epoch: int) -> None:
        self.epoch, self.consumed, self.consumed_layout = epoch, {}, None

    def set_distributed(self, rank: int, world_size: int) -> None:
        if not 0 <= rank < world_size:
            raise ValueError(f"rank {rank} is not in [0, {world_size})")
        self.rank, self.world_size = rank, world_size

    def state_dict(self) -> dict[str, Any]:
        """The position: epoch, and samples delivered per reader (``consumed``), with the layout they refer to."""
        return {"version": STATE_VERSION, "epoch": self.epoch, "seed": self.seed, "shards": len(self.shards),
                "layout": list(self.consumed_layout) if self.consumed_layout else None,
                "consumed": {str(unit): n for unit, n in sorted(self.consumed.items())}}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Continue from :meth:`state_dict`'s position. A state of another dataset (shard count or seed) starts
        its epoch over, with a warning; so does a different number of ranks or workers (when the epoch starts).

        Raises:
            DatasetError: ``state`` is not a state of this dataset.
        """
        try:
            epoch, consumed, layout = int(state["epoch"]), state["consumed"], state["layout"]
            self._restart(epoch)
            if state["shards"] != len(self.shards) or state["seed"] != self.seed:
                log.warning("The saved data position is of another dataset (%s shards, seed %s; now %d, %d): epoch "
                            "%d starts over.", state["shards"], state["seed"], len(self.shards), self.seed, epoch)
                return
            self.consumed = {int(unit): int(n) for unit, n in consumed.items()}
            self.consumed_layout = (int(layout[0]), int(layout[1])) if layout else None
        except (KeyError, TypeError, ValueError, IndexError) as err:
            raise DatasetError(f"Not a saved position of a shard dataset: {state!r:.200}.",
                               "Resume from a checkpoint written by this training.") from err

    def begin(self, rank: int, world_size: int, workers: int) -> None:
        """Called by the loader before the workers start: fixes this process's share, and checks that a
        restored position refers to the same ranks × workers (else the epoch starts over, with a warning)."""
        self.set_distributed(rank, world_size)
        if self.consumed and self.consumed_layout not in (None, (world_size, workers)):
            log.warning("The saved data position was made with %s ranks × workers, now %s: epoch %d starts over.",
                        self.consumed_layout, (world_size, workers), self.epoch)
            self.consumed = {}
        self.consumed_layout = (world_size, workers)

    def note(self, positions: list[list[int]]) -> None:
        """Count samples that reached the training loop, by the positions taken out of their ``info``."""
        for epoch, unit, position in positions:
            if epoch == self.epoch:
                self.consumed[unit] = max(self.consumed.get(unit, 0), position + 1)

    # reading (in each worker)

    def layout(self, num_workers: int) -> tuple[int, int, int]:
        """``(rank, world_size, workers)`` of this process."""
        rank, world = self.rank, self.world_size
        if rank is None or world is None:
            dist = torch.distributed
            initialized = dist.is_available() and dist.is_initialized()
            rank, world = (dist.get_rank(), dist.get_world_size()) if initialized else (0, 1)
        return rank, world, max(num_workers, 1)

    def tasks(self, unit: int, units: int) -> list[ShardTask]:
        """The shard tasks of reader ``unit`` of ``units`` for the current epoch."""
        sizes = [s.file.size for s in self.shards]
        return plan_epoch(sizes, units, self.seed, self.epoch, self.shuffle)[unit]

    def __iter__(self) -> Iterator[tuple[torch.Tensor, dict]]:
        worker = torch.utils.data.get_worker_info()
        worker_id, workers = (worker.id, worker.num_workers) if worker is not None else (0, 1)
        rank, world, _ = self.layout(workers)
        unit, units = rank * workers + worker_id, world * workers
        skip = self.consumed.get(unit, 0) if self.consumed_layout in (None, (world, workers)) else 0
        rng = np.random.default_rng((self.seed, self.epoch, unit))
        stream = self._records(self.tasks(unit, units))
        ordered = shuffled(stream, self.shuffle_buffer, rng) if self.shuffle else stream
        skipped = 0
        for position, (record, shard) in enumerate(ordered):
            if position < skip:
                continue
            sample = self._load(record, shard)
            if sample is None:
                skipped += 1
                continue
            sample[1][POSITION_KEY] = [self.epoch, unit, position]
            yield sample
        if skipped:
            log.warning("Reader %d of %d skipped %d sample(s) this epoch (unreadable, rejected or out of the length "
                        "range)", unit, units, skipped)

    def _records(self, tasks: list[ShardTask]) -> Iterator[tuple[Record, _Shard]]:
        for task in tasks:
            shard = self.shards[task.shard]
            position = 0
            try:
                for record in stream_shard(shard.file.path, size=shard.file.size):
                    if not record.is_latent(self.latent_suffix):
                        continue
                    if task.keeps(position):
                        yield record, shard
                    position += 1
            except ReadError as err:
                log.warning("Shard %s: %s; the samples before the damage were used", shard.file.path, err)

    def _load(self, record: Record, shard: _Shard) -> tuple[torch.Tensor, dict] | None:
        key = f"{shard.file.relpath}:{record.key}".encode()
        rng = np.random.default_rng((self.seed, self.epoch, shard.source, zlib.crc32(key)))
        try:
            lo, hi = self.length_ranges[shard.source]
            if (lo is not None or hi is not None) and not in_length_range(record.load_meta().seconds_total, lo, hi):
                return None
            manifest = self.manifests[shard.source]
            if manifest is not None and manifest.why_superseded(record.key, record.load_meta()) is not None:
                return None  # an update replacing it was interrupted: the manifest is the truth
            return load_sample(record, self.rules[shard.source], rng)
        except (ReadError, OSError, ValueError, KeyError, TypeError, EOFError) as err:
            log.warning("Skipping unreadable latent %s: %s", record.location(self.latent_suffix), err)
            return None


class LatentStreamLoader(torch.utils.data.DataLoader):
    """A DataLoader over a :class:`LatentShardDataset` that knows where it is, to resume mid-epoch.

    Iterating it yields :class:`~preencode.data.loaders.Batch` es (samples batched within each worker); each full
    pass is one epoch, after which the next iteration starts the next epoch. A pass left early (``max_steps``)
    is continued by the next iteration.

    API for the training loop (and Lightning, which calls both for a train dataloader)::

        state = loader.state_dict()      # {"epoch", "consumed": {reader: samples delivered}, ...}, JSON-ready
        loader.load_state_dict(state)    # before iterating: the epoch continues where it was left

    A training loop that fetches batches ahead of the step that uses them (Lightning fetches one ahead) sets
    ``count_on_yield = False`` and calls :meth:`trained` before each step, so that the saved position
    counts what was trained, not what was fetched (:class:`preencode.train.data_position.StreamPosition`).

    Args:
        dataset: the shard dataset.
        batch_size, num_workers, drop_last: as for a DataLoader (``drop_last`` drops each worker's last partial
            batch).
    """

    def __init__(self, dataset: LatentShardDataset, *, batch_size: int, num_workers: int = 0,
                 drop_last: bool = False, worker_init_fn: Callable[[int], None] | None = None) -> None:
        super().__init__(dataset, batch_size=batch_size, num_workers=num_workers, collate_fn=collate_latents,
                         drop_last=drop_last, persistent_workers=False, pin_memory=False,
                         worker_init_fn=worker_init_fn)
        self.stream = dataset
        self.count_on_yield = True
        self.fetched: deque[list[list[int]]] = deque()  # the positions of the batches not yet counted

    def __iter__(self) -> Iterator[Batch]:  # type: ignore[override]
        stream = self.stream
        stream.begin(*stream.layout(self.num_workers))
        self.fetched.clear()
        for batch in super().__iter__():
            if batch is None:
                continue
            positions = [info.pop(POSITION_KEY) for info in batch.infos]
            if self.count_on_yield:
                stream.note(positions)
            else:
                self.fetched.append(positions)
            yield batch
        # every batch of the epoch was handed out: a position saved from here on is of the next epoch
        stream.set_epoch(stream.epoch + 1)
        self.fetched.clear()

    def trained(self) -> None:
        """Count the oldest batch fetched and not yet counted (``count_on_yield`` off) as trained on: the loop
        trains on batches in the order it fetched them."""
        if self.fetched:
            self.stream.note(self.fetched.popleft())

    def state_dict(self) -> dict[str, Any]:
        return self.stream.state_dict()

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.stream.load_state_dict(state)


def shard_latent_channels(dataset: LatentShardDataset) -> tuple[int, str] | None:
    """The latent channel count and where it was read: a details file, else the first latent of the first shard."""
    for details in dataset.details:
        if details.latent.latent_dim is not None:
            return details.latent.latent_dim, str(details.path)
    for shard in dataset.shards[:3]:
        try:
            for record in stream_shard(shard.file.path, size=shard.file.size):
                if record.is_latent(dataset.latent_suffix):
                    latent = record.load_latent(dataset.latent_suffix)
                    return int(latent.shape[0]), record.location(dataset.latent_suffix)
        except (ReadError, IndexError):
            continue
    return None
