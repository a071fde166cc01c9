"""Writing encoded samples: the writer protocol, loose ``.npy`` files, and the choice of writer.

A writer receives samples one at a time (``write``) and makes each durable under its final name
before reporting it done; ``close`` commits whatever is still open. Loaders only ever see complete
samples: a loose sample's ``.npy`` is renamed into place after its other files (it is the commit
marker: loaders look for ``.npy`` files), a shard after its last sample.
"""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

from .atomic import AtomicFile, commit_in_order
from .names import LATENT
from .sample import EncodedSample, sample_files
from .shards import ShardWriter

OUTPUT_FORMATS = ("npy", "wds")


class SampleWriter(Protocol):
    """Stores encoded samples in one rank folder."""

    def write(self, sample: EncodedSample) -> None:
        """Store ``sample``; once this returns for a loose file (or the shard is closed) it is complete."""

    def close(self) -> None:
        """Commit what is still open (a partly filled shard)."""


class NpyWriter:
    """Writes ``<rank_dir>/<id>.json`` (+ ``<id>.std.npz``) and ``<id>.npy``.

    Every file is first written in full under a temporary name; the renames then put the ``.npy`` in
    place last, so it is the commit marker: loaders (ours and stable-audio-tools') look for ``.npy``
    files, and a killed run can at worst leave a ``.json`` or temporary file that no loader reads and
    the next run removes.
    """

    def __init__(self, rank_dir: Path) -> None:
        self.rank_dir = rank_dir
        rank_dir.mkdir(parents=True, exist_ok=True)

    def write(self, sample: EncodedSample) -> None:
        files = sorted(sample_files(sample), key=lambda named: named[0].endswith(LATENT))  # the .npy last
        staged: list[AtomicFile] = []
        try:
            for name, payload in files:
                staged.append(AtomicFile(self.rank_dir / name))
                staged[-1].write(payload)
        except BaseException:
            for f in staged:
                f.discard()
            raise
        commit_in_order(staged)

    def close(self) -> None:
        pass


def open_writer(output_format: str, rank_dir: Path, *, shard_size: int = 1000,
                shard_bytes: int | None = None) -> SampleWriter:
    """The writer of ``--output-format`` (``npy`` or ``wds``) for one rank folder.

    Raises:
        ValueError: an unknown format.
    """
    if output_format == "npy":
        return NpyWriter(rank_dir)
    if output_format == "wds":
        return ShardWriter(rank_dir, shard_size, shard_bytes)
    raise ValueError(f"unknown output format {output_format!r}; valid: {', '.join(OUTPUT_FORMATS)}")
