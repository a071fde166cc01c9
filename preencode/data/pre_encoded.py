"""A map-style dataset of pre-encoded latents (our output and stable-audio-tools').

Each item is ``(latents [C, L] float32, info)``, made by :func:`preencode.data.latent_sample.load_sample` (the
rules shared with the shard-streaming :class:`~preencode.data.latent_shards.LatentShardDataset`).

Differences from stable-audio-tools' ``PreEncodedDataset`` (documented behaviour):

- ``min_length_sec``/``max_length_sec`` filter the index once when it is built; a sample is never
  replaced by a random other one. A file that fails to read, or that a custom metadata function
  rejects (``__reject__``), yields ``None``; :func:`preencode.data.loaders.collate_latents` drops it
  from the batch and counts it.
- ``latent_crop_length`` may be set per dataset (it overrides the top-level value).
- A crop moves ``seconds_start`` (and ``timestamps``) to the crop's real position.
- Random crops start within the content (the padding mask's ones); an all-padding mask crops at 0.
- Latents shorter than the crop are padded with zeros and a zero mask, so batches always stack.
- When a posterior std sidecar is stored with a latent (``<id>.std.npz``), a fresh ``mean + std * noise`` is
  drawn per epoch.

Files are found and read by :mod:`preencode.store` (:mod:`~preencode.store.index` over
:mod:`~preencode.store.reader`), the same code that ``preencode verify`` uses: both accept the same files.

Random choices use a generator seeded by ``(seed, epoch, index)``: they are reproducible, and differ
between epochs once :meth:`PreEncodedDataset.set_epoch` is called.
"""

from __future__ import annotations

import logging

import numpy as np
import torch

from ..errors import DatasetError
from ..store.details import Details, read_details
from ..store.index import index_root
from ..store.reader import ReadError, Record
from .latent_sample import (
    LatentSource,
    PosteriorReader,
    SampleRules,
    content_length,
    in_length_range,
    load_sample,
    read_posterior_std,
)
from .metadata import load_custom_metadata_fn

log = logging.getLogger(__name__)

__all__ = ["LatentSource", "PreEncodedDataset", "content_length", "latent_channels", "read_posterior_std"]


class PreEncodedDataset(torch.utils.data.Dataset):
    """Pre-encoded latents from one or more dataset roots.

    Args:
        sources: the dataset roots with their per-entry options.
        latent_crop_length: crop/pad every latent to this many frames (None keeps full length).
        random_crop: draw the crop start within the content instead of starting at 0.
        min_length_sec / max_length_sec: keep only samples whose ``seconds_total`` is in range (sources
            may override); samples without ``seconds_total`` are kept.
        latent_extension: extension of latent files.
        seconds_per_frame: seconds per latent frame, to move ``seconds_start`` after a crop; read from
            each root's details file when present, this is the fallback (e.g. from the model config).
        seed: seed of the per-sample random generator.
        posterior_reader: finds a stored posterior std for a record (None to never use one).
        use_index_cache: reuse a cached index while the folders are unchanged.

    Raises:
        DatasetError: a root is missing or holds no latents, or a custom metadata module cannot be loaded.
        UserError: a root's details file has a format version this version does not read.
    """

    def __init__(self, sources: list[LatentSource], *, latent_crop_length: int | None = None,
                 random_crop: bool = False, min_length_sec: float | None = None,
                 max_length_sec: float | None = None, latent_extension: str = "npy",
                 seconds_per_frame: float | None = None, seed: int = 0,
                 posterior_reader: PosteriorReader | None = read_posterior_std,
                 use_index_cache: bool = True) -> None:
        super().__init__()
        self.random_crop = random_crop
        self.seed = seed
        self.epoch = 0
        self.posterior_reader = posterior_reader
        self.latent_suffix = f".{latent_extension}"
        self.records: list[Record] = []
        self.record_source: list[int] = []
        self.rules: list[SampleRules] = []
        self.details: list[Details] = []
        self.index_skipped = 0
        self.filtered = 0
        for i, src in enumerate(sources):
            details = read_details(src.path)  # refuses a format this version cannot read, before the scan
            for problem in details.problems:
                log.warning("Pre-encoded dataset %r: %s", src.id, problem)
            try:
                indexed, skipped = index_root(src.path, latent_extension, use_cache=use_index_cache)
            except FileNotFoundError:
                raise DatasetError(f"Pre-encoded dataset {src.id!r}: folder {src.path} does not exist.",
                                   "Check 'path' in the dataset config.") from None
            self.index_skipped += skipped
            lo = src.min_length_sec if src.min_length_sec is not None else min_length_sec
            hi = src.max_length_sec if src.max_length_sec is not None else max_length_sec
            kept = [x.record for x in indexed if in_length_range(x.seconds_total, lo, hi)]
            self.filtered += len(indexed) - len(kept)
            if not indexed:
                raise DatasetError(f"Pre-encoded dataset {src.id!r}: no {self.latent_suffix} latents with a "
                                   f"sibling .json found under {src.path}.",
                                   "Point 'path' at the output folder of the pre-encoding run.")
            self.details.append(details)
            self.records.extend(kept)
            self.record_source.extend([i] * len(kept))
            self.rules.append(SampleRules(
                dataset_id=src.id, random_crop=random_crop, latent_suffix=self.latent_suffix,
                crop_length=src.latent_crop_length if src.latent_crop_length is not None else latent_crop_length,
                frame_seconds=details.latent.seconds_per_frame or seconds_per_frame,
                metadata_fn=load_custom_metadata_fn(src.custom_metadata_module) if src.custom_metadata_module
                else None, posterior_reader=posterior_reader))
        self.sources = list(sources)
        log.info("Pre-encoded dataset: %d latents (%d filtered by length, %d unreadable while indexing)",
                 len(self.records), self.filtered, self.index_skipped)

    def __len__(self) -> int:
        return len(self.records)

    def set_epoch(self, epoch: int) -> None:
        """Make random crops and posterior samples differ per epoch (call before each epoch)."""
        self.epoch = epoch

    def __getitem__(self, index: int) -> tuple[torch.Tensor, dict] | None:
        record = self.records[index]
        try:
            return self._load(index, record)
        except (ReadError, OSError, ValueError, KeyError, TypeError, EOFError) as err:
            log.warning("Skipping unreadable latent %s: %s", record.location(self.latent_suffix), err)
            return None

    def _load(self, index: int, record: Record) -> tuple[torch.Tensor, dict] | None:
        rng = np.random.default_rng((self.seed, self.epoch, index))
        return load_sample(record, self.rules[self.record_source[index]], rng)


def latent_channels(dataset: PreEncodedDataset) -> tuple[int, str] | None:
    """The latent channel count and where it was read (a details file, else the first readable latent)."""
    for details in dataset.details:
        if details.latent.latent_dim is not None:
            return details.latent.latent_dim, str(details.path)
    for record in dataset.records[:20]:
        try:
            return int(record.load_latent(dataset.latent_suffix).shape[0]), record.location(dataset.latent_suffix)
        except (ReadError, IndexError):
            continue
    return None
