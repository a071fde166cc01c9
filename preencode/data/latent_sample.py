"""One stored latent made into a training sample: the per-sample rules shared by both training datasets.

:class:`~preencode.data.pre_encoded.PreEncodedDataset` (loose files, indexed) and
:class:`~preencode.data.latent_shards.LatentShardDataset` (shards streamed from folders or S3) read records
through :mod:`preencode.store.reader` and turn each into ``(latents [C, L] float32, info)`` here, so that both
honour every option the same way:

- a posterior std sidecar (``<id>.std.npz``) draws a fresh ``mean + std * noise`` per epoch;
- ``info`` is the sample's JSON metadata plus ``padding_mask`` (bool ``[L]``), ``latent_filename`` and
  ``dataset_id``; a custom metadata function's result is merged in (``__reject__`` skips the sample,
  ``__replace__`` replaces the latent);
- a crop (``latent_crop_length``) starts within the content (the padding mask's ones) when random, moves
  ``seconds_start`` and ``timestamps`` to the crop's real position (the reference leaves them at the window's
  start), records ``latent_crop_start``/``latent_crop_length``, and pads latents shorter than the crop with zeros
  and a zero mask so that batches always stack.

Random choices come from the generator the dataset passes in, seeded per sample and epoch.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from ..store.names import LATENT, STD
from ..store.reader import Record
from .metadata import CustomMetadataFn

log = logging.getLogger(__name__)

PosteriorReader = Callable[[Record], "np.ndarray | None"]


@dataclass(frozen=True)
class LatentSource:
    """One ``datasets[]`` entry as a training dataset needs it (per-entry values already resolved).

    Attributes:
        path: a local folder, or an ``s3://`` prefix (shards only).
        profile: the AWS profile for an ``s3://`` path (None: the default credentials).
    """

    id: str
    path: str
    latent_crop_length: int | None = None
    min_length_sec: float | None = None
    max_length_sec: float | None = None
    custom_metadata_module: str | None = None
    profile: str | None = None


def read_posterior_std(record: Record) -> np.ndarray | None:
    """The default posterior reader: the record's ``<id>.std.npz`` (array ``std``, shaped like the latent),
    loose or a member of its shard; None when there is none. Raises ReadError."""
    return record.load_std() if STD in record.parts else None


def content_length(mask: np.ndarray) -> int:
    """Index after the last 1 of a padding mask (0 for an all-padding mask)."""
    ones = np.flatnonzero(mask)
    return int(ones[-1]) + 1 if len(ones) else 0


def in_length_range(seconds: float | None, lo: float | None, hi: float | None) -> bool:
    """Whether ``seconds_total`` is within ``[lo, hi]`` (samples without one are kept)."""
    if seconds is None:
        return True
    return (lo is None or seconds >= lo) and (hi is None or seconds <= hi)


@dataclass(frozen=True)
class SampleRules:
    """How the latents of one source become samples.

    Attributes:
        dataset_id: the source's ``id``, copied to ``info["dataset_id"]``.
        crop_length: crop/pad to this many frames (None keeps the full length).
        random_crop: draw the crop start within the content instead of starting at 0.
        frame_seconds: seconds per latent frame, to move ``seconds_start`` after a crop (None: unknown).
        metadata_fn: the source's custom metadata function.
        latent_suffix: the latent member's suffix (``.npy``).
        posterior_reader: finds a stored posterior std for a record (None never uses one).
    """

    dataset_id: str
    crop_length: int | None = None
    random_crop: bool = False
    frame_seconds: float | None = None
    metadata_fn: CustomMetadataFn | None = None
    latent_suffix: str = LATENT
    posterior_reader: PosteriorReader | None = read_posterior_std


def load_sample(record: Record, rules: SampleRules, rng: np.random.Generator) -> tuple[torch.Tensor, dict] | None:
    """``(latents [C, L] float32, info)`` of one stored latent, or None when its metadata function rejects it.

    Raises:
        ReadError, ValueError, KeyError, TypeError, OSError, EOFError: the record cannot be read or is not a
            ``[channels, frames]`` latent (the datasets skip it and say so).
    """
    latents = record.load_latent(rules.latent_suffix)
    meta = record.load_meta()
    if latents.ndim != 2:
        raise ValueError(f"expected a [channels, frames] latent, got shape {latents.shape}")
    latents = latents.astype(np.float32)
    std = rules.posterior_reader(record) if rules.posterior_reader else None
    if std is not None:
        latents = latents + std.astype(np.float32) * rng.standard_normal(latents.shape, dtype=np.float32)
    info = meta.to_dict()
    info["latent_filename"] = record.location(rules.latent_suffix)
    info["dataset_id"] = rules.dataset_id
    stored_mask = meta.padding_mask if meta.padding_mask is not None else np.ones(latents.shape[1])
    mask = np.asarray(stored_mask, dtype=bool)
    if rules.metadata_fn is not None:
        info.update(rules.metadata_fn(info, None))
        if info.get("__reject__"):
            log.debug("Sample %s rejected by its custom metadata function", info["latent_filename"])
            return None
        replacement = info.pop("__replace__", None)
        if replacement is not None:
            latents = np.asarray(replacement, dtype=np.float32)
    if len(mask) != latents.shape[1]:
        mask = np.ones(latents.shape[1], dtype=bool)
    if rules.crop_length is not None:
        latents, mask = crop(latents, mask, rules.crop_length, info, rng, rules.random_crop, rules.frame_seconds)
    info["padding_mask"] = torch.from_numpy(mask)
    return torch.from_numpy(np.ascontiguousarray(latents)), info


def crop(latents: np.ndarray, mask: np.ndarray, length: int, info: dict, rng: np.random.Generator,
         random_crop: bool, frame_seconds: float | None) -> tuple[np.ndarray, np.ndarray]:
    """Crop/pad ``latents [C, N]`` and ``mask [N]`` to ``length`` frames and move the timing fields of ``info``."""
    total = latents.shape[1]
    content = content_length(mask)
    start = int(rng.integers(0, content - length + 1)) if random_crop and content > length else 0
    out = np.zeros((latents.shape[0], length), dtype=np.float32)
    out_mask = np.zeros(length, dtype=bool)
    piece = latents[:, start:start + length]
    out[:, :piece.shape[1]] = piece
    out_mask[:piece.shape[1]] = mask[start:start + length]
    info["latent_crop_start"] = start
    info["latent_crop_length"] = length
    if start and frame_seconds is not None and isinstance(info.get("seconds_start"), (int, float)):
        info["seconds_start"] = info["seconds_start"] + start * frame_seconds
    stamps = info.get("timestamps")
    if total and isinstance(stamps, (list, tuple)) and len(stamps) == 2:
        t0, t1 = float(stamps[0]), float(stamps[1])
        span = t1 - t0
        info["timestamps"] = [t0 + span * start / total, t0 + span * min(start + length, total) / total]
    return out, out_mask
