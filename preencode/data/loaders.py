"""Data loaders for training: batching of ``(tensor, info)`` samples and the pre_encoded factory."""

from __future__ import annotations

import logging
from dataclasses import dataclass

import torch

from ..errors import DatasetError
from .config import DatasetConfig
from .pre_encoded import LatentSource, PreEncodedDataset

log = logging.getLogger(__name__)


@dataclass
class Batch:
    """A training batch.

    Attributes:
        data: latents ``[B, C, L]`` or audio ``[B, C, T]``.
        infos: one metadata dict per sample (each with a bool ``padding_mask`` of length L or T).
        skipped: samples of this batch that were dropped (unreadable or rejected).
    """

    data: torch.Tensor
    infos: list[dict]
    skipped: int = 0

    @property
    def padding_mask(self) -> torch.Tensor:
        """Bool ``[B, L]``."""
        return torch.stack([torch.as_tensor(_unwrap(i["padding_mask"])).bool() for i in self.infos])

    def to(self, device: torch.device | str) -> Batch:
        return Batch(self.data.to(device), self.infos, self.skipped)


def _unwrap(value: object) -> object:
    # stable-audio-tools wraps the mask in a one-element list
    return value[0] if isinstance(value, list) and len(value) == 1 else value


def collate_latents(samples: list) -> Batch | None:
    """Stack ``(tensor, info)`` samples; ``None`` samples are dropped and counted (None if all were)."""
    kept = [s for s in samples if s is not None]
    skipped = len(samples) - len(kept)
    if skipped:
        log.warning("%d sample(s) of this batch were skipped (unreadable or rejected)", skipped)
    if not kept:
        return None
    shapes = {tuple(s[0].shape) for s in kept}
    if len(shapes) > 1:
        raise DatasetError(f"Samples of one batch have different shapes {sorted(shapes)}.",
                           "Set latent_crop_length in the dataset config so that latents are cropped/padded "
                           "to one length.")
    return Batch(torch.stack([s[0] for s in kept]), [s[1] for s in kept], skipped)


def build_pre_encoded_dataset(config: DatasetConfig, *, seconds_per_frame: float | None = None,
                              seed: int = 0) -> PreEncodedDataset:
    """The :class:`PreEncodedDataset` of a validated ``pre_encoded`` dataset config."""
    if config.dataset_type != "pre_encoded":
        raise DatasetError(f"Expected a dataset config with dataset_type 'pre_encoded', got {config.dataset_type!r}.",
                           "Use a pre_encoded dataset config.")
    sources = [LatentSource(id=e.id, path=e.path or "", latent_crop_length=e.latent_crop_length,
                            min_length_sec=e.min_length_sec, max_length_sec=e.max_length_sec,
                            custom_metadata_module=e.custom_metadata_module) for e in config.datasets]
    return PreEncodedDataset(sources, latent_crop_length=config.latent_crop_length, random_crop=config.random_crop,
                             min_length_sec=config.min_length_sec, max_length_sec=config.max_length_sec,
                             latent_extension=config.latent_extension, seconds_per_frame=seconds_per_frame,
                             seed=seed)


def make_loader(dataset: torch.utils.data.Dataset, *, batch_size: int, num_workers: int, shuffle: bool,
                drop_last: bool, seed: int = 0) -> torch.utils.data.DataLoader:
    """A DataLoader with :func:`collate_latents` and a seeded shuffle."""
    generator = torch.Generator().manual_seed(seed)
    if drop_last and len(dataset) < batch_size:  # type: ignore[arg-type]
        raise DatasetError(f"The dataset has {len(dataset)} samples, fewer than the batch size {batch_size}, "  # type: ignore[arg-type]
                           "so drop_last leaves no batch.", "Lower --batch-size or set \"drop_last\": false.")
    return torch.utils.data.DataLoader(dataset, batch_size=batch_size, shuffle=shuffle, num_workers=num_workers,
                                       collate_fn=collate_latents, drop_last=drop_last, generator=generator,
                                       persistent_workers=False, pin_memory=False)
