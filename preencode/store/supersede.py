"""Removing stored copies that are no longer current: superseded by an ``--update``, or pruned.

An update re-encodes a changed input under its old id. With ``--output-format npy`` the new files replace the old
ones by a rename when the same rank folder writes them, and otherwise appear in another rank folder; with
``--output-format wds`` the new sample goes to a new shard (shards are never appended to). Either way the old copy
stays until the new one is committed: there is never a moment with neither. Then :func:`drop_superseded` removes
it: a loose copy's files are deleted, a shard holding one is rewritten without it (under a temporary name,
renamed over the old shard; a shard left empty is deleted). Until then, and if a run is killed in between, every
reader skips the superseded copy by the manifest (:mod:`preencode.store.manifest`), and the next encode run of
the output removes it.

A copy whose input changed but whose new encoding failed is kept (our readers skip it, the failure log names the
input, and the next run tries again); a pruned id's copies are always removed. Only files named as preencode names
them are touched.
"""

from __future__ import annotations

import io
import logging
import tarfile
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from .atomic import AtomicFile
from .layout import rank_dirs
from .manifest import ManifestEntry, superseded_why
from .names import SAMPLE_SUFFIXES, is_id, is_shard, split_name
from .reader import ReadError, Record, list_folder, read_shard

log = logging.getLogger(__name__)


@dataclass
class Copy:
    """One stored copy of an id: a loose record, or a member of ``shard``; ``why``: why it is superseded."""

    id: int
    record: Record
    shard: Path | None = None
    why: str | None = None


@dataclass
class Supersession:
    """What :func:`drop_superseded` did.

    Attributes:
        removed: superseded copies removed.
        kept: ids whose only copies are superseded (their re-encoding failed or is still to come).
    """

    removed: list[Copy] = field(default_factory=list)
    kept: set[int] = field(default_factory=set)


def _judge(record: Record, entries: dict[int, ManifestEntry]) -> str | None:
    entry = entries.get(int(record.key))
    if entry is None:
        return None
    try:
        meta = record.load_meta()
    except ReadError:
        return None  # damaged: the resume scan deals with it
    return superseded_why(entry, meta)


def find_copies(output: Path, entries: dict[int, ManifestEntry], ids: set[int] | None = None) -> list[Copy]:
    """Every stored copy (loose or in a committed shard) of the ids in ``ids`` (None: all), judged against the
    manifest ``entries``. Unreadable shards are skipped (the resume scan reports them)."""
    copies: list[Copy] = []
    for folder in rank_dirs(output):
        listing = list_folder(folder, folder.name)
        found: list[tuple[Record, Path | None]] = [(r, None) for r in listing.records]
        for path in listing.shards:
            if not is_shard(path.name):
                continue
            try:
                found.extend((r, path) for r in read_shard(path, folder.name))
            except ReadError:
                continue
        for record, shard in found:
            if not (is_id(record.key) and record.is_latent()) or (ids is not None and int(record.key) not in ids):
                continue
            copies.append(Copy(int(record.key), record, shard, _judge(record, entries)))
    return copies


def drop_superseded(output: Path, entries: list[ManifestEntry], ids: set[int] | None = None) -> Supersession:
    """Remove the superseded copies of ``ids`` (None: all) that may go: every copy of a pruned id, and a changed
    input's old copy once a current copy exists. The caller holds the output's lock."""
    by_id = {e.id: e for e in entries}
    copies = find_copies(output, by_id, ids)
    current = {c.id for c in copies if c.why is None}
    result = Supersession()
    for copy in copies:
        if copy.why is None:
            continue
        pruned = by_id[copy.id].pruned is not None
        if pruned or copy.id in current:
            result.removed.append(copy)
        else:
            result.kept.add(copy.id)
    _remove(result.removed)
    for copy in result.removed:
        log.info("Removed %s: %s.", copy.record.where, copy.why)
    return result


def _remove(copies: Iterable[Copy]) -> None:
    by_shard: dict[Path, set[str]] = {}
    for copy in copies:
        if copy.shard is None:
            for suffix in SAMPLE_SUFFIXES:
                if suffix in copy.record.parts:
                    Path(copy.record.parts[suffix].path).unlink(missing_ok=True)
        else:
            by_shard.setdefault(copy.shard, set()).add(copy.record.key)
    for shard, keys in by_shard.items():
        rewrite_shard_without(shard, keys)


def rewrite_shard_without(path: Path, keys: set[str]) -> int:
    """Rewrite the committed shard ``path`` without the members of ``keys`` (order and bytes of the others kept):
    the new shard is written under a temporary name and renamed over the old one; a shard left with no member is
    deleted. Returns the members (files) kept."""
    kept = 0
    with tarfile.open(path, mode="r:") as source:
        members = [m for m in source.getmembers() if m.isfile()]
        if all(split_name(m.name)[0] in keys for m in members):
            path.unlink()
            return 0
        with AtomicFile(path) as target, tarfile.open(fileobj=target.file, mode="w",
                                                      format=tarfile.PAX_FORMAT) as tar:
            for member in members:
                if split_name(member.name)[0] in keys:
                    continue
                extracted = source.extractfile(member)
                data = extracted.read() if extracted is not None else b""
                info = tarfile.TarInfo(member.name)
                info.size, info.mode, info.mtime = len(data), member.mode, member.mtime
                tar.addfile(info, io.BytesIO(data))
                kept += 1
    return kept
