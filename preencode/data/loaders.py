"""Data loaders for training: the datasets of pre-encoded latents chosen from a dataset config, and their
loaders (batches of ``(tensor, info)`` samples, :mod:`preencode.data.batches`)."""

from __future__ import annotations

import logging
from collections.abc import Callable

import torch

from ..errors import DatasetError
from .batches import Batch, collate_latents
from .config import DatasetConfig
from .latent_shards import LatentShardDataset, LatentStreamLoader
from .pre_encoded import LatentSource, PreEncodedDataset

log = logging.getLogger(__name__)

__all__ = ["Batch", "build_latent_dataset", "build_pre_encoded_dataset", "collate_latents", "make_latent_loader",
           "make_loader"]


def build_pre_encoded_dataset(config: DatasetConfig, *, seconds_per_frame: float | None = None,
                              seed: int = 0) -> PreEncodedDataset:
    """The :class:`PreEncodedDataset` of a validated ``pre_encoded`` dataset config."""
    if config.dataset_type != "pre_encoded":
        raise DatasetError(f"Expected a dataset config with dataset_type 'pre_encoded', got {config.dataset_type!r}.",
                           "Use a pre_encoded dataset config.")
    return PreEncodedDataset(_sources(config), latent_crop_length=config.latent_crop_length,
                             random_crop=config.random_crop, min_length_sec=config.min_length_sec,
                             max_length_sec=config.max_length_sec, latent_extension=config.latent_extension,
                             seconds_per_frame=seconds_per_frame, seed=seed)


def _sources(config: DatasetConfig) -> list[LatentSource]:
    return [LatentSource(id=e.id, path=e.s3_path or e.path or "", latent_crop_length=e.latent_crop_length,
                         min_length_sec=e.min_length_sec, max_length_sec=e.max_length_sec,
                         custom_metadata_module=e.custom_metadata_module, profile=e.profile)
            for e in config.datasets]


def build_latent_dataset(config: DatasetConfig, *, seconds_per_frame: float | None = None, seed: int = 0,
                         shuffle: bool = True, rank: int | None = None,
                         world_size: int | None = None) -> PreEncodedDataset | LatentShardDataset:
    """The training dataset of a validated config of latents: loose files (``dataset_type: "pre_encoded"``,
    a map-style :class:`PreEncodedDataset`) or shards in folders or S3 (``"wds"``/``"s3"`` with ``"pre_encoded":
    true``, a streamed :class:`LatentShardDataset`). Load it with :func:`make_latent_loader`.

    Args:
        shuffle: shards only: shuffled shard order and shuffle buffer (False for validation).
        rank, world_size: shards only: this process's share (None: from ``torch.distributed`` at each epoch).

    Raises:
        DatasetError: an audio config, or a dataset root that cannot be used.
    """
    if not config.holds_latents:
        raise DatasetError(f"Expected a dataset config of pre-encoded latents, got dataset_type "
                           f"{config.dataset_type!r} without \"pre_encoded\": true.",
                           "Use dataset_type 'pre_encoded', or 'wds'/'s3' with \"pre_encoded\": true.")
    if config.dataset_type == "pre_encoded":
        return build_pre_encoded_dataset(config, seconds_per_frame=seconds_per_frame, seed=seed)
    return LatentShardDataset(_sources(config), latent_crop_length=config.latent_crop_length,
                              random_crop=config.random_crop, min_length_sec=config.min_length_sec,
                              max_length_sec=config.max_length_sec, latent_extension=config.latent_extension,
                              seconds_per_frame=seconds_per_frame, seed=seed, shuffle=shuffle,
                              shuffle_buffer=config.shuffle_buffer, rank=rank, world_size=world_size)


def make_latent_loader(dataset: PreEncodedDataset | LatentShardDataset, *, batch_size: int, num_workers: int,
                       shuffle: bool, drop_last: bool, seed: int = 0,
                       worker_init_fn: Callable[[int], None] | None = None) -> torch.utils.data.DataLoader:
    """The loader of :func:`build_latent_dataset`'s dataset: :func:`make_loader` for loose files, a resumable
    :class:`LatentStreamLoader` for shards (``shuffle`` is then the dataset's own)."""
    if isinstance(dataset, LatentShardDataset):
        return LatentStreamLoader(dataset, batch_size=batch_size, num_workers=num_workers, drop_last=drop_last,
                                  worker_init_fn=worker_init_fn)
    return make_loader(dataset, batch_size=batch_size, num_workers=num_workers, shuffle=shuffle,
                       drop_last=drop_last, seed=seed, worker_init_fn=worker_init_fn)


def make_loader(dataset: torch.utils.data.Dataset, *, batch_size: int, num_workers: int, shuffle: bool,
                drop_last: bool, seed: int = 0,
                worker_init_fn: Callable[[int], None] | None = None) -> torch.utils.data.DataLoader:
    """A DataLoader with :func:`collate_latents` and a seeded shuffle (``worker_init_fn``: run in each worker
    process, e.g. the training loop's signal policy)."""
    generator = torch.Generator().manual_seed(seed)
    if drop_last and len(dataset) < batch_size:  # type: ignore[arg-type]
        raise DatasetError(f"The dataset has {len(dataset)} samples, fewer than the batch size {batch_size}, "  # type: ignore[arg-type]
                           "so drop_last leaves no batch.", "Lower --batch-size or set \"drop_last\": false.")
    return torch.utils.data.DataLoader(dataset, batch_size=batch_size, shuffle=shuffle, num_workers=num_workers,
                                       collate_fn=collate_latents, drop_last=drop_last, generator=generator,
                                       persistent_workers=False, pin_memory=False, worker_init_fn=worker_init_fn)
