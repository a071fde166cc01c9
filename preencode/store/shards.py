"""``--output-format wds``: WebDataset tar shards per rank, each committed by a rename, and their list.

``<output>/<rank>/shard-000000.tar``, ``shard-000001.tar``, ... hold, per sample, the members ``<id>.npy``
(the latent, as ``np.save`` writes it), ``<id>.json`` (its metadata) and, with ``--store-std``,
``<id>.std.npz``: the layout stable-audio-tools' WebDataset loader reads with ``pre_encoded: true``
(``np.load`` of the ``npy`` member, the parsed ``json``).

A shard is written under a temporary name (:func:`preencode.store.names.temp_name`) and renamed when it is
closed (after ``--shard-size`` samples, ``--shard-bytes`` bytes, or at the end of the run): only complete
shards carry a ``.tar`` name, so a loader never finds a truncated one. Resume reads the member names of
the committed shards (:func:`preencode.store.layout.shard_ids`); a killed run's temporary shard is removed
and its samples are encoded again into new shards.

Numbering: each rank numbers its shards from 000000 in the order it commits them, taking the lowest number
no committed shard of the rank folder has. A killed run's temporary shard never took a number, so a resumed
run goes on right after the last committed shard and the numbers stay contiguous (0..N-1) through kills and
resumes; the samples of the shard that was being written when the run was killed are in the resumed run's
shards. A committed shard deleted by hand leaves a gap that the next run fills. ``shards.txt`` at the root
lists every shard (:func:`write_shard_list`), and :func:`shard_urls` gives the brace pattern WebDataset
expands.
"""

from __future__ import annotations

import io
import logging
import os
import tarfile
from pathlib import Path

from .atomic import AtomicFile, atomic_write
from .names import SHARD_LIST, is_rank_dir, is_shard, shard_name, shard_number, shard_pattern
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
        taken: the numbers of the rank's committed shards when they are not in ``rank_dir`` (S3 output: the
            folder is a spool, see :mod:`preencode.store.s3_output`).
    """

    def __init__(self, rank_dir: Path, shard_size: int, shard_bytes: int | None = None,
                 taken: set[int] | None = None) -> None:
        self.rank_dir = rank_dir
        self.shard_size, self.shard_bytes = shard_size, shard_bytes
        rank_dir.mkdir(parents=True, exist_ok=True)
        if taken is None:
            taken = {n for n in map(shard_number, os.listdir(rank_dir)) if n is not None}
        self.taken = set(taken)
        self.number: int | None = None  # of the open shard
        self.file: AtomicFile | None = None
        self.tar: tarfile.TarFile | None = None
        self.count = self.bytes = 0

    def write(self, sample: EncodedSample) -> None:
        """Append ``sample``'s files to the open shard. On a failure (e.g. a full disk) the open shard is
        discarded, never committed with a partial member: its samples are encoded again by the next run."""
        try:
            if self.tar is None:
                self.number = min(set(range(len(self.taken) + 1)) - self.taken)  # the lowest free number
                self.taken.add(self.number)
                self.file = AtomicFile(self.rank_dir / shard_name(self.number))
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
        """Close the open shard and rename it into place (nothing to do when none is open). The one place a
        shard is committed."""
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
        self.number = None

    def discard(self) -> None:
        """Drop the open shard (its temporary is removed; nothing is committed)."""
        if self.file is not None:
            self.file.discard()
        if self.number is not None:
            self.taken.discard(self.number)  # the number stays free: shards remain contiguous
        self.tar = self.file = None
        self.number = None

    def close(self) -> None:
        self.commit()


def list_shards(output: Path) -> list[str]:
    """Every committed shard of an output, as paths relative to it, by rank then number (then name)."""
    found: list[tuple[int, int, str, str]] = []
    for rank in os.listdir(output) if output.is_dir() else []:
        if not (is_rank_dir(rank) and (output / rank).is_dir()):
            continue
        for name in os.listdir(output / rank):
            if is_shard(name):
                number = shard_number(name)
                found.append((int(rank), -1 if number is None else number, name, f"{rank}/{name}"))
    return [path for *_, path in sorted(found)]


def write_shard_list(output: Path) -> list[str]:
    """Write ``<output>/shards.txt`` (one shard path relative to the output per line) when it differs from
    the shards there; returns the list."""
    shards = list_shards(output)
    text = "".join(f"{path}\n" for path in shards)
    target = output / SHARD_LIST
    try:
        current = target.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        current = None
    if current != text:
        atomic_write(target, text)
    return shards


def shard_urls(output: Path, shards: list[str]) -> str:
    """The shards as one WebDataset URL string: a brace pattern per rank (``out/0/shard-{000000..000009}.tar``),
    joined by ``::`` when there are several ranks; names of other versions are listed as they are."""
    by_rank: dict[str, list[int]] = {}
    others: list[str] = []
    for path in shards:
        rank, _, name = path.partition("/")
        number = shard_number(name)
        if number is not None and shard_name(number) == name:
            by_rank.setdefault(rank, []).append(number)
        else:
            others.append(str(output / path))
    patterns = [str(output / rank / shard_pattern(numbers)) for rank, numbers in by_rank.items()]
    return "::".join(patterns + others)


def shard_summary(output: Path) -> dict[str, object]:
    """Write the shard list of a finished run and describe it for the run summary: ``shards`` (count),
    ``shard_list`` (its path) and ``shard_urls`` (:func:`shard_urls`)."""
    shards = write_shard_list(output)
    return {"shards": len(shards), "shard_list": str(output / SHARD_LIST),
            "shard_urls": shard_urls(output, shards) if shards else ""}
