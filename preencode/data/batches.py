"""Training batches of ``(tensor, info)`` samples: :class:`Batch` and :func:`collate_latents`."""

from __future__ import annotations

import logging
from dataclasses import dataclass

import torch

from ..errors import DatasetError

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
