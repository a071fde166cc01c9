"""Splitting pending work over ranks and batching it: the Lightning data modules of an encode job.

Windows come in :class:`~preencode.data.audio_windows.WindowBatch` es built here; ``--full-length``
chunks in :class:`~preencode.encode.full_length.stream.ChunkBatch` es built by the streaming dataset.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import lightning.pytorch as L
import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, Sampler

from ...data.audio_windows import collate
from ...data.sharding import split_list
from ..full_length.stream import FullLengthStream
from .limits import PREFETCH_BATCHES
from .stopping import ignore_in_worker


class ListBatchSampler(Sampler[list[int]]):
    def __init__(self, batches: list[list[int]]) -> None:
        self.batches = batches

    def __iter__(self) -> Iterator[list[int]]:
        return iter(self.batches)

    def __len__(self) -> int:
        return len(self.batches)


class EncodeDataModule(L.LightningDataModule):
    """Builds each rank's data loader once the rank and world size are known.

    Args:
        dataset: map-style dataset indexed by global input index.
        pending: the input indices still to encode, sorted.
        make_batches: turns this rank's ordered indices into batches (e.g. length-aware bucketing).
    """

    def __init__(self, dataset: Dataset, pending: list[int], batch_size: int, num_workers: int,
                 shuffle: bool, seed: int, make_batches: Callable[[list[int], int], list[list[int]]] | None = None,
                 on_setup: Callable[[L.Trainer], None] | None = None) -> None:
        super().__init__()
        self.dataset, self.pending = dataset, pending
        self.batch_size, self.num_workers = batch_size, num_workers
        self.shuffle, self.seed = shuffle, seed
        self.make_batches = make_batches or _chunks
        self.on_setup = on_setup
        self.share: list[int] = []

    @property
    def attached_trainer(self) -> L.Trainer:
        """The Trainer running this module (Lightning sets it before ``setup``)."""
        if self.trainer is None:
            raise RuntimeError("the data module is not attached to a Trainer")
        return self.trainer

    def setup(self, stage: str) -> None:
        if self.on_setup is not None:
            self.on_setup(self.attached_trainer)

    def rank_order(self) -> list[int]:
        """This rank's share of the pending inputs, in processing order (shuffled with ``--shuffle``)."""
        trainer = self.attached_trainer
        self.share = split_list(self.pending, trainer.world_size, trainer.global_rank)
        if not self.shuffle:
            return list(self.share)
        return [self.share[i] for i in np.random.default_rng(self.seed).permutation(len(self.share))]

    def predict_dataloader(self) -> DataLoader:
        order = self.rank_order()
        batches = _chunks(order, self.batch_size) if self.shuffle else self.make_batches(order, self.batch_size)
        return DataLoader(self.dataset, batch_sampler=ListBatchSampler(batches), num_workers=self.num_workers,
                          collate_fn=collate, pin_memory=torch.cuda.is_available(), worker_init_fn=ignore_in_worker,
                          persistent_workers=False, prefetch_factor=PREFETCH_BATCHES if self.num_workers else None)


def _chunks(order: list[int], size: int) -> list[list[int]]:
    return [order[i:i + size] for i in range(0, len(order), size)]


def _as_is(batch: Any) -> Any:
    return batch


class FullLengthDataModule(EncodeDataModule):
    """:class:`EncodeDataModule` whose loader streams the rank's share of inputs in chunks.

    ``dataset`` is a :class:`FullLengthStream`; ``--shuffle`` shuffles the order of files.
    """

    def predict_dataloader(self) -> DataLoader:
        if not isinstance(self.dataset, FullLengthStream):
            raise TypeError(f"expected a FullLengthStream, got {type(self.dataset).__name__}")
        self.dataset.order = self.rank_order()
        return DataLoader(self.dataset, batch_size=None, num_workers=self.num_workers, collate_fn=_as_is,
                          pin_memory=torch.cuda.is_available(), persistent_workers=False,
                          worker_init_fn=ignore_in_worker,
                          prefetch_factor=2 if self.num_workers else None)
