"""What a resumed run may skip: the samples already written, each checked cheaply first.

A sample is done when its ``.npy`` (the commit marker) and ``.json`` exist, loose or in a committed
shard. Before a resume skips it, it is checked without reading the array: the ``.npy`` header parses,
the file (or shard member) is exactly as long as the header says, its shape and dtype are those the
tree's ``details.json`` promises (channels, frames of one window, dtype), the ``.json`` parses and its
``padding_mask`` has one value per frame, and the std sidecar is there (and is a zip) when the tree
stores one. A sample that fails is *damaged*: the run encodes it again. ``preencode verify`` remains
the thorough check (every array read, finiteness, ids unique across ranks).

A damaged loose sample's files are removed before it is encoded again (the new ones may be written
under another rank folder, and an id must never be in two); a shard with a damaged member is removed
whole and all its samples are encoded again (a shard cannot be partly replaced).
"""

from __future__ import annotations

import logging
import math
import os
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.lib.format as npy_format

from .layout import rank_dirs
from .manifest import ManifestEntry, superseded_why
from .names import LATENT, META, SAMPLE_SUFFIXES, STD, is_id, is_shard
from .reader import Part, ReadError, Record, list_folder, read_shard

log = logging.getLogger(__name__)

_TAR_BLOCK = 512
_TAR_END = 2 * _TAR_BLOCK


@dataclass(frozen=True)
class Expected:
    """What every latent of a tree must look like (``None``: not checked).

    Attributes:
        channels: ``latent_dim`` (``num_quantizers`` for tokens).
        dtype: the numpy dtype name.
        frames: latent frames per sample (None with ``--full-length``: it depends on the file).
        std: whether each sample has a ``.std.npz`` sidecar.
    """

    channels: int | None = None
    dtype: str | None = None
    frames: int | None = None
    std: bool = False

    @classmethod
    def from_details(cls, details: dict[str, Any]) -> Expected:
        """From the content of our ``details.json`` (see :func:`preencode.store.details.build_details`)."""
        latent = details.get("latent") or {}
        mode = details.get("mode") or {}
        channels = latent.get("num_quantizers") if latent.get("is_discrete") else latent.get("latent_dim")
        ratio, size = latent.get("downsampling_ratio"), details.get("sample_size")
        frames = None
        if not mode.get("full_length") and isinstance(ratio, int) and isinstance(size, int) and ratio > 0:
            frames = size // ratio
        return cls(channels if isinstance(channels, int) else None, latent.get("dtype"), frames,
                   bool(latent.get("posterior_std_sidecar")))


@dataclass
class DoneScan:
    """The done samples of a tree, and what was found damaged.

    Attributes:
        done: ids of the samples that passed the checks.
        damaged: one line per damaged sample or shard: where and what is wrong.
        remove: the files to remove before their samples are encoded again.
        damaged_ids: ids known to be in the removed files (a truncated shard may hide more).
        superseded: ids with a copy that is not current by the manifest (see :mod:`preencode.store.manifest`).
    """

    done: set[int] = field(default_factory=set)
    damaged: list[str] = field(default_factory=list)
    remove: list[Path] = field(default_factory=list)
    damaged_ids: set[int] = field(default_factory=set)
    superseded: set[int] = field(default_factory=set)


def _size(part: Part) -> int:
    return part.size if part.size is not None else os.stat(part.path).st_size


def _npy_problem(part: Part, expected: Expected) -> tuple[str | None, int | None]:
    """(a problem with the ``.npy`` at ``part``, its number of frames)."""
    try:
        with open(part.path, "rb") as f:
            start = part.offset or 0
            if part.offset is not None:
                if part.offset + _size(part) > os.fstat(f.fileno()).st_size:
                    return "the shard ends inside this member", None
                f.seek(part.offset)
            version = npy_format.read_magic(f)
            if version == (1, 0):
                shape, _fortran, dtype = npy_format.read_array_header_1_0(f)
            else:
                shape, _fortran, dtype = npy_format.read_array_header_2_0(f)
            header = f.tell() - start
    except (OSError, ValueError, EOFError) as err:
        return f"no readable .npy header ({err})", None
    length = _size(part)
    if dtype.hasobject:
        return "holds Python objects", None
    want = header + math.prod(shape) * dtype.itemsize
    if length != want:
        return f"{length} bytes where its header says {want} (truncated or overwritten)", None
    if len(shape) != 2:
        return f"shape {list(shape)}, expected [channels, frames]", None
    if expected.dtype is not None and dtype != np.dtype(expected.dtype):
        return f"dtype {dtype}, expected {expected.dtype}", None
    if expected.channels is not None and shape[0] != expected.channels:
        return f"{shape[0]} channels, expected {expected.channels}", None
    if expected.frames is not None and shape[1] != expected.frames:
        return f"{shape[1]} frames, expected {expected.frames}", None
    return None, int(shape[1])


def check_latent(record: Record, expected: Expected) -> str | None:
    """What is wrong with a done sample (None when it passes the cheap checks)."""
    problem, frames = _npy_problem(record.parts[LATENT], expected)
    if problem:
        return f"{record.location(LATENT)}: {problem}"
    try:
        meta = record.load_meta()
    except ReadError as err:
        return str(err)
    mask = meta.padding_mask
    if mask is not None and len(mask) != frames:
        return f"{record.location(META)}: padding_mask has {len(mask)} values for {frames} frames"
    if expected.std:
        if STD not in record.parts:
            return f"{record.location(STD)}: missing"
        try:
            part = record.parts[STD]
            if part.offset is None:
                with zipfile.ZipFile(part.path) as z:
                    z.namelist()
            else:
                record.load_std()
        except (OSError, zipfile.BadZipFile, ReadError) as err:
            return f"{record.location(STD)}: not a readable .npz ({err})"
    return None


def _current(record: Record, entries: dict[int, ManifestEntry] | None) -> bool:
    """Whether a sound copy is current by the manifest (always, without one)."""
    if entries is None:
        return True
    try:
        return superseded_why(entries.get(int(record.key)), record.load_meta()) is None
    except ReadError:
        return False


def scan_done(output: Path, expected: Expected, entries: dict[int, ManifestEntry] | None = None) -> DoneScan:
    """The samples of ``output`` a resume may skip, each checked with :func:`check_latent`; with the manifest's
    ``entries`` (by id), a copy that is not current (an input changed, or pruned) is not done either."""
    scan = DoneScan()
    for folder in rank_dirs(output):
        listing = list_folder(folder, folder.name)
        for record in listing.records:
            if not is_id(record.key) or not record.is_latent():
                continue
            problem = check_latent(record, expected)
            if problem is None and not _current(record, entries):
                scan.superseded.add(int(record.key))
            elif problem is None:
                scan.done.add(int(record.key))
            else:
                scan.damaged.append(problem)
                scan.damaged_ids.add(int(record.key))
                scan.remove.extend(Path(record.parts[s].path) for s in SAMPLE_SUFFIXES if s in record.parts)
        for path in listing.shards:
            if is_shard(path.name):
                _scan_shard(path, expected, scan, entries)
    return scan


def _shard_end_problem(path: Path) -> str | None:
    """A shard that tarfile wrote ends with zero blocks (the end-of-archive marker and padding); one cut
    after a member's data still lists as a shorter, valid-looking archive."""
    try:
        with open(path, "rb") as f:
            size = os.fstat(f.fileno()).st_size
            f.seek(max(0, size - _TAR_END))
            end = f.read()
    except OSError as err:
        return f"{path}: cannot be read ({err})"
    if size % _TAR_BLOCK or len(end) < _TAR_END or end.count(0) != len(end):
        return f"{path}: its end-of-archive marker is missing (truncated after it was committed)"
    return None


def _scan_shard(path: Path, expected: Expected, scan: DoneScan, entries: dict[int, ManifestEntry] | None) -> None:
    try:
        problem = _shard_end_problem(path)
        if problem:
            raise ReadError(problem)
        records = read_shard(path)
    except ReadError as err:
        scan.damaged.append(f"{err}; the samples it held are encoded again")
        scan.remove.append(path)
        return
    ids, problems, superseded = set(), [], set()
    for record in records:
        if is_id(record.key) and record.is_latent():
            ids.add(int(record.key))
            problem = check_latent(record, expected)
            if problem is not None:
                problems.append(problem)
            elif not _current(record, entries):
                superseded.add(int(record.key))
    if problems:
        scan.damaged.append(f"{problems[0]}{f' (and {len(problems) - 1} more)' if len(problems) > 1 else ''}; "
                            f"the {len(ids)} samples of {path.name} are encoded again")
        scan.remove.append(path)
        scan.damaged_ids |= ids
    else:
        scan.done |= ids - superseded
        scan.superseded |= superseded


def remove_damaged(scan: DoneScan) -> None:
    """Remove the files of damaged samples and shards (all named as preencode names them), logging why."""
    for line in scan.damaged:
        log.warning("Damaged: %s", line)
    for path in scan.remove:
        path.unlink(missing_ok=True)
