"""``--output-format wds``: WebDataset tar shards per rank, each committed by a rename.

``<output>/<rank>/shard-<first id>.tar`` holds, per sample, the members ``<id>.npy`` (the latent, as
``np.save`` writes it), ``<id>.json`` (its metadata) and, with ``--store-std``, ``<id>.std.npz``: the
layout stable-audio-tools' WebDataset loader reads with ``pre_encoded: true`` (``np.load`` of the
``npy`` member, the parsed ``json``).

A shard is written as ``.shard-<first id>.tar.tmp`` and renamed when it is closed (after ``--shard-size``
samples, ``--shard-bytes`` bytes, or at the end of the run): only complete shards carry a ``.tar``
name, so a loader never finds a truncated one. Resume reads the member names of the committed shards
(:func:`shard_ids`); a killed run's temporary shard is removed and its samples are encoded again into
new shards. Shards are named after their first id, which is unique because each id is committed once.
"""

from __future__ import annotations

import io
import json
import logging
import os
import tarfile
from pathlib import Path

import numpy as np

from .layout import SHARD_PREFIX, SHARD_SUFFIX, format_id
from .writer import EncodedSample, json_safe, npy_bytes

log = logging.getLogger(__name__)

def _add(tar: tarfile.TarFile, name: str, payload: bytes) -> int:
    info = tarfile.TarInfo(name)
    info.size, info.mode, info.mtime = len(payload), 0o644, 0  # no wall-clock time: re-runs give equal bytes
    tar.addfile(info, io.BytesIO(payload))
    return len(payload)


class ShardWriter:
    """Appends samples to the rank's open shard and commits it when full.

    Args:
        rank_dir: ``<output>/<rank>``.
        shard_size: samples per shard.
        shard_bytes: optional limit on a shard's payload bytes (the shard closes after the sample
            that reaches it).
    """

    def __init__(self, rank_dir: Path, shard_size: int, shard_bytes: int | None = None) -> None:
        self.rank_dir = rank_dir
        self.shard_size, self.shard_bytes = shard_size, shard_bytes
        rank_dir.mkdir(parents=True, exist_ok=True)
        self.tar: tarfile.TarFile | None = None
        self.tmp: Path | None = None
        self.final: Path | None = None
        self.count = self.bytes = 0

    def _open(self, first_index: int) -> tarfile.TarFile:
        name = f"{SHARD_PREFIX}{format_id(first_index)}{SHARD_SUFFIX}"
        self.final = self.rank_dir / name
        self.tmp = self.rank_dir / f".{name}.tmp"
        self.count = self.bytes = 0
        return tarfile.open(self.tmp, mode="w", format=tarfile.PAX_FORMAT)

    def write(self, sample: EncodedSample) -> None:
        if self.tar is None:
            self.tar = self._open(sample.index)
        stem = format_id(sample.index)
        meta = json.dumps(json_safe(sample.metadata), ensure_ascii=False).encode("utf-8")
        self.bytes += _add(self.tar, f"{stem}.npy", npy_bytes(sample.latent))
        self.bytes += _add(self.tar, f"{stem}.json", meta)
        if sample.std is not None:
            buf = io.BytesIO()
            np.savez(buf, std=sample.std)
            self.bytes += _add(self.tar, f"{stem}.std.npz", buf.getvalue())
        self.count += 1
        if self.count >= self.shard_size or (self.shard_bytes is not None and self.bytes >= self.shard_bytes):
            self.commit()

    def commit(self) -> None:
        """Close the open shard and rename it into place (nothing to do when none is open)."""
        if self.tar is None:
            return
        self.tar.close()
        self.tar = None
        assert self.tmp is not None and self.final is not None
        with open(self.tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(self.tmp, self.final)
        log.debug("Committed %s (%d samples)", self.final, self.count)

    def close(self) -> None:
        self.commit()
