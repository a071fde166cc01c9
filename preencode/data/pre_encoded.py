"""A map-style dataset of pre-encoded latents (our output and stable-audio-tools').

Each item is ``(latents [C, L] float32, info)`` where ``info`` is the sample's JSON metadata plus
``padding_mask`` (bool ``[L]``), ``latent_filename``, ``dataset_id`` and, after a crop,
``latent_crop_start``/``latent_crop_length``.

Differences from stable-audio-tools' ``PreEncodedDataset`` (documented behaviour):

- ``min_length_sec``/``max_length_sec`` filter the index once when it is built; a sample is never
  replaced by a random other one. A file that fails to read, or that a custom metadata function
  rejects (``__reject__``), yields ``None``; :func:`preencode.data.loaders.collate_latents` drops it
  from the batch and counts it.
- ``latent_crop_length`` may be set per dataset (it overrides the top-level value).
- A crop moves ``seconds_start`` (and ``timestamps``) to the crop's real position.
- Random crops start within the content (the padding mask's ones); an all-padding mask crops at 0.
- Latents shorter than the crop are padded with zeros and a zero mask, so batches always stack.
- When a posterior std sidecar is stored next to a latent (see :func:`read_posterior_std`), a fresh
  ``mean + std * noise`` is drawn per epoch.

Random choices use a generator seeded by ``(seed, epoch, index)``: they are reproducible, and differ
between epochs once :meth:`PreEncodedDataset.set_epoch` is called.
"""

from __future__ import annotations

import importlib.util
import io
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..errors import DatasetError
from ..store.index import LatentRecord, index_root

log = logging.getLogger(__name__)

PosteriorReader = Callable[[LatentRecord], "np.ndarray | None"]
MetadataFn = Callable[[dict, Any], dict]


@dataclass(frozen=True)
class LatentSource:
    """One ``datasets[]`` entry as the dataset needs it (per-entry values already resolved)."""

    id: str
    path: str
    latent_crop_length: int | None = None
    min_length_sec: float | None = None
    max_length_sec: float | None = None
    custom_metadata_module: str | None = None


def read_posterior_std(record: LatentRecord) -> np.ndarray | None:
    """The default posterior reader: ``<id>.std.npy`` or ``<id>.std.npz`` (array ``std``) beside a
    loose latent, or an ``<id>.std.npz`` member of its shard; shaped like the latent; None when there is none."""
    if record.in_shard:
        if record.std_offset is None:
            return None
        with open(record.latent, "rb") as f:
            f.seek(record.std_offset)
            payload = f.read(record.std_size)
        with np.load(io.BytesIO(payload)) as data:
            return data["std"]
    stem = record.latent.rsplit(".", 1)[0]
    if Path(stem + ".std.npy").is_file():
        return np.load(stem + ".std.npy")
    if Path(stem + ".std.npz").is_file():
        with np.load(stem + ".std.npz") as data:
            return data["std"]
    return None


def load_metadata_fn(path: str) -> MetadataFn:
    """``get_custom_metadata(info, audio)`` from a user's Python file.

    Raises:
        DatasetError: the file is missing or defines no ``get_custom_metadata``.
    """
    if not Path(path).is_file():
        raise DatasetError(f"custom_metadata_module {path} does not exist.", "Check the path in the dataset config.")
    spec = importlib.util.spec_from_file_location(f"preencode_custom_metadata_{abs(hash(path))}", path)
    module = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
    spec.loader.exec_module(module)  # type: ignore[union-attr]
    fn = getattr(module, "get_custom_metadata", None)
    if not callable(fn):
        raise DatasetError(f"custom_metadata_module {path} defines no get_custom_metadata(info, audio) function.",
                           "Add it to the file.")
    return fn


def _read_record(record: LatentRecord) -> tuple[np.ndarray, dict]:
    if not record.in_shard:
        latents = np.load(record.latent)
        with open(record.meta, encoding="utf-8") as f:
            return latents, json.load(f)
    with open(record.latent, "rb") as f:
        f.seek(record.latent_offset)  # type: ignore[arg-type]
        latents = np.load(io.BytesIO(f.read(record.latent_size)))
        f.seek(record.meta_offset)  # type: ignore[arg-type]
        return latents, json.loads(f.read(record.meta_size))


def content_length(mask: np.ndarray) -> int:
    """Index after the last 1 of a padding mask (0 for an all-padding mask)."""
    ones = np.flatnonzero(mask)
    return int(ones[-1]) + 1 if len(ones) else 0


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
            each root's ``details.json`` when present, this is the fallback (e.g. from the model config).
        seed: seed of the per-sample random generator.
        posterior_reader: finds a stored posterior std for a record (None to never use one).
        use_index_cache: reuse a cached index while the folders are unchanged.

    Raises:
        DatasetError: a root is missing or holds no latents.
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
        self.records: list[LatentRecord] = []
        self.record_source: list[int] = []
        self.crop_lengths: list[int | None] = []
        self.frame_seconds: list[float | None] = []
        self.metadata_fns: list[MetadataFn | None] = []
        self.details: list[dict | None] = []
        self.index_skipped = 0
        self.filtered = 0
        for i, src in enumerate(sources):
            try:
                records, skipped = index_root(src.path, latent_extension, use_cache=use_index_cache)
            except FileNotFoundError:
                raise DatasetError(f"Pre-encoded dataset {src.id!r}: folder {src.path} does not exist.",
                                   "Check 'path' in the dataset config.") from None
            self.index_skipped += skipped
            lo = src.min_length_sec if src.min_length_sec is not None else min_length_sec
            hi = src.max_length_sec if src.max_length_sec is not None else max_length_sec
            kept = [r for r in records if _in_range(r.seconds_total, lo, hi)]
            self.filtered += len(records) - len(kept)
            if not records:
                raise DatasetError(f"Pre-encoded dataset {src.id!r}: no .{latent_extension} latents with a "
                                   f"sibling .json found under {src.path}.",
                                   "Point 'path' at the output folder of the pre-encoding run.")
            details = read_details(src.path)
            self.details.append(details)
            self.records.extend(kept)
            self.record_source.extend([i] * len(kept))
            self.crop_lengths.append(src.latent_crop_length if src.latent_crop_length is not None
                                     else latent_crop_length)
            self.frame_seconds.append(_details_frame_seconds(details) or seconds_per_frame)
            self.metadata_fns.append(load_metadata_fn(src.custom_metadata_module)
                                     if src.custom_metadata_module else None)
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
        except (OSError, ValueError, KeyError, TypeError, EOFError) as err:
            log.warning("Skipping unreadable latent %s: %s", record.latent, err)
            return None

    def _load(self, index: int, record: LatentRecord) -> tuple[torch.Tensor, dict] | None:
        src = self.record_source[index]
        rng = np.random.default_rng((self.seed, self.epoch, index))
        latents, info = _read_record(record)
        if latents.ndim != 2:
            raise ValueError(f"expected a [channels, frames] latent, got shape {latents.shape}")
        latents = latents.astype(np.float32)
        std = self.posterior_reader(record) if self.posterior_reader else None
        if std is not None:
            latents = latents + std.astype(np.float32) * rng.standard_normal(latents.shape, dtype=np.float32)
        info = dict(info)
        info["latent_filename"] = record.latent if not record.in_shard else record.meta
        info["dataset_id"] = self.sources[src].id
        mask = np.asarray(info.get("padding_mask", np.ones(latents.shape[1])), dtype=bool)
        fn = self.metadata_fns[src]
        if fn is not None:
            info.update(fn(info, None))
            if info.get("__reject__"):
                log.debug("Sample %s rejected by its custom metadata function", record.latent)
                return None
            replacement = info.pop("__replace__", None)
            if replacement is not None:
                latents = np.asarray(replacement, dtype=np.float32)
        if len(mask) != latents.shape[1]:
            mask = np.ones(latents.shape[1], dtype=bool)
        crop = self.crop_lengths[src]
        if crop is not None:
            latents, mask = self._crop(latents, mask, crop, info, rng, self.frame_seconds[src])
        info["padding_mask"] = torch.from_numpy(mask)
        return torch.from_numpy(np.ascontiguousarray(latents)), info

    def _crop(self, latents: np.ndarray, mask: np.ndarray, crop: int, info: dict, rng: np.random.Generator,
              frame_seconds: float | None) -> tuple[np.ndarray, np.ndarray]:
        """Crop/pad ``latents [C, N]`` and ``mask [N]`` to ``crop`` frames and move the timing fields."""
        total = latents.shape[1]
        content = content_length(mask)
        start = int(rng.integers(0, content - crop + 1)) if self.random_crop and content > crop else 0
        out = np.zeros((latents.shape[0], crop), dtype=np.float32)
        out_mask = np.zeros(crop, dtype=bool)
        piece = latents[:, start:start + crop]
        out[:, :piece.shape[1]] = piece
        out_mask[:piece.shape[1]] = mask[start:start + crop]
        info["latent_crop_start"] = start
        info["latent_crop_length"] = crop
        if start and frame_seconds is not None and isinstance(info.get("seconds_start"), (int, float)):
            info["seconds_start"] = info["seconds_start"] + start * frame_seconds
        stamps = info.get("timestamps")
        if total and isinstance(stamps, (list, tuple)) and len(stamps) == 2:
            t0, t1 = float(stamps[0]), float(stamps[1])
            span = t1 - t0
            info["timestamps"] = [t0 + span * start / total, t0 + span * min(start + crop, total) / total]
        return out, out_mask


def _in_range(seconds: float | None, lo: float | None, hi: float | None) -> bool:
    if seconds is None:
        return True
    return (lo is None or seconds >= lo) and (hi is None or seconds <= hi)


def read_details(root: str | Path) -> dict | None:
    """The root's ``details.json`` (None when missing or unreadable)."""
    path = Path(root) / "details.json"
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
        return data if isinstance(data, dict) else None
    except (OSError, ValueError):
        return None


def _details_frame_seconds(details: dict | None) -> float | None:
    latent = (details or {}).get("latent")
    if isinstance(latent, dict):
        ratio, rate = latent.get("downsampling_ratio"), latent.get("sample_rate")
        if isinstance(ratio, (int, float)) and isinstance(rate, (int, float)) and rate > 0:
            return float(ratio) / float(rate)
    return None


def latent_channels(dataset: PreEncodedDataset) -> tuple[int, str] | None:
    """The latent channel count and where it was read (details.json, else the first readable file)."""
    for src, details in zip(dataset.sources, dataset.details):
        latent = (details or {}).get("latent")
        if isinstance(latent, dict) and isinstance(latent.get("latent_dim"), int):
            return latent["latent_dim"], f"{src.path}/details.json"
    for record in dataset.records[:20]:
        try:
            return int(_read_record(record)[0].shape[0]), record.latent
        except (OSError, ValueError, KeyError, IndexError):
            continue
    return None
