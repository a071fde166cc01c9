"""``--output-format wds``: WebDataset tar shards per rank, each committed by a rename.

``<output>/<rank>/shard-<first id>.tar`` holds, per sample, the members ``<id>.npy`` (the latent, as
``np.save`` writes it), ``<id>.json`` (its metadata) and, with ``--store-std``, ``<id>.std.npz``: the
layout stable-audio-tools' WebDataset loader reads with ``pre_encoded: true`` (``np.load`` of the
``npy`` member, the parsed ``json``).

A shard is written under a temporary name (:func:`preencode.store.names.temp_name`) and renamed when it is
closed (after ``--shard-size`` samples, ``--shard-bytes`` bytes, or at the end of the run): only complete
shards carry a ``.tar`` name, so a loader never finds a truncated one. Resume reads the member names of
the committed shards (:func:`preencode.store.layout.shard_ids`); a killed run's temporary shard is removed
and its samples are encoded again into new shards. Shards are named after their first id, which is unique
because each id is committed once.
"""

from __future__ import annotations

import io
import logging
import tarfile
from pathlib import Path

from .atomic import AtomicFile
from .names import shard_name
from .sample import EncodedSample, sample_files

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
        self.file: AtomicFile | None = None
        self.tar: tarfile.TarFile | None = None
        self.count = self.bytes = 0

    def write(self, sample: EncodedSample) -> None:
        """Append ``sample``'s files to the open shard. On a failure (e.g. a full disk) the open shard is
        discarded, never committed with a partial member: its samples are encoded again by the next run."""
        try:
            if self.tar is None:
                self.file = AtomicFile(self.rank_dir / shard_name(sample.index))
                # open across write() calls until commit() closes it
                self.tar = tarfile.open(fileobj=self.file.file, mode="w", format=tarfile.PAX_FORMAT)  # noqa: SIM115
                self.count = self.bytes = 0
            for name, payload in sample_files(sample):
                self.bytes += _add(self.tar, name, payload)
        except BaseException:
            self.discard()
            raise
        self.count += 1
        if self.count >= self.shard_size or (self.shard_bytes is not None and self.bytes >= self.shard_bytes):
            self.commit()

    def commit(self) -> None:
        """Close the open shard and rename it into place (nothing to do when none is open)."""
        if self.tar is None or self.file is None:
            return
        try:
            self.tar.close()  # writes the end-of-archive blocks; the file itself stays open
            self.file.commit()
        except BaseException:
            self.discard()
            raise
        log.debug("Committed %s (%d samples)", self.file.path, self.count)
        self.tar = self.file = None

    def discard(self) -> None:
        """Drop the open shard (its temporary is removed; nothing is committed)."""
        if self.file is not None:
            self.file.discard()
        self.tar = self.file = None

    def close(self) -> None:
        self.commit()
