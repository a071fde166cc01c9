"""Reading stored latents: records in folders and tar shards, located by path and byte offset.

A *record* groups the files sharing one key (:func:`preencode.store.names.split_name`), loose in a folder
or members of a ``.tar`` shard. Every part of a record is a :class:`Part`: a file, or a byte range of a
shard, so a shard member is read with one seek and records can be cached (the training index) and read
later without listing anything again. Listing is cheap (names and tar headers only); arrays are read on
demand. Names starting with a dot or ending in ``.tmp`` are temporaries: never part of a record.

The same rule decides what every reader accepts (``inspect``, ``verify``, ``decode``, the training
dataset and resume): a latent is a record holding ``<key>.npy`` and ``<key>.json``; ``<key>.std.npz``
is its optional posterior std; any other file is not part of the format.

Trees: :func:`open_tree` lists an output tree (its details file, rank folders, shards) for the tools, in a
local folder or under an S3 prefix (:class:`~preencode.store.objects.ObjectPath`), or one local shard
(``out/0/shard-000000.tar``) or one member of it (``out/0/shard-000000.tar:<id>``); :func:`record_at` finds the
one latent a command line names. A shard on S3 is read front to back once (:func:`stream_shard`: its records
come with their bytes), a single member by one ranged GET. An S3 tree holds shards only: loose latent files
there are not part of the format (one request per file) and are reported, not read.
"""

from __future__ import annotations

import io
import json
import logging
import os
import tarfile
import zipfile
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import IO, Any, Generic, TypeVar

import numpy as np

from ..errors import UserError
from .details import Details, read_details
from .meta import LatentMeta
from .names import (
    LATENT,
    META,
    SHARD_SUFFIX,
    STD,
    is_rank_dir,
    is_temporary,
    split_member,
    split_name,
)
from .objects import ObjectPath, StorePath, is_s3_url, store_path

log = logging.getLogger(__name__)


class ReadError(Exception):
    """A file (or shard member) that cannot be read as what it should be."""


@dataclass(frozen=True)
class Part:
    """Where one file of a record lies: a whole file, or ``size`` bytes at ``offset`` in a shard.

    Attributes:
        path: a local path or an ``s3://`` URL.
        profile: the AWS profile to read an ``s3://`` part with (None: the default credentials).
        data: the bytes themselves, when they were read with the shard (:func:`stream_shard`).
    """

    path: str
    offset: int | None = None
    size: int | None = None
    profile: str | None = None
    data: bytes | None = field(default=None, repr=False, compare=False)

    def read(self) -> bytes:
        """The bytes. Raises OSError, ReadError when a shard ends before the member does, StorageError."""
        if self.data is not None:
            return self.data
        if is_s3_url(self.path):
            obj = ObjectPath(self.path, self.profile)
            data = obj.read_bytes() if self.offset is None else obj.read_range(self.offset, self.size or 0)
        else:
            with open(self.path, "rb") as f:
                if self.offset is None:
                    return f.read()
                f.seek(self.offset)
                data = f.read(self.size)
        if self.size is not None and len(data) != self.size:
            raise ReadError(f"{self.path}: truncated ({len(data)} of {self.size} bytes at offset {self.offset})")
        return data


@dataclass
class Record:
    """The files of one latent, loose or inside a shard.

    Attributes:
        key: the shared name (the 13-digit id in a well-formed tree).
        where: a display location without suffix (``out/0/0000000000001`` or ``out/0/a.tar:0000000000001``).
        parts: suffix -> where that file's bytes are.
        rank: the rank folder's name in an output tree (empty elsewhere).
    """

    key: str
    where: str
    parts: dict[str, Part] = field(default_factory=dict)
    rank: str = ""

    @property
    def id(self) -> str:
        return self.key.rpartition("/")[2]

    @property
    def in_shard(self) -> bool:
        return any(part.offset is not None for part in self.parts.values())

    def is_latent(self, suffix: str = LATENT) -> bool:
        """Whether the record is a latent: it holds ``<key><suffix>`` and ``<key>.json``."""
        return suffix in self.parts and META in self.parts

    def location(self, suffix: str) -> str:
        return self.where + suffix

    def read_bytes(self, suffix: str) -> bytes:
        """The raw bytes of one part. Raises ReadError."""
        try:
            return self.parts[suffix].read()
        except ReadError as err:
            raise ReadError(f"{self.location(suffix)}: cannot be read ({err})") from err
        except OSError as err:
            raise ReadError(f"{self.location(suffix)}: cannot be read ({err})") from err

    def load_latent(self, suffix: str = LATENT) -> np.ndarray:
        """The stored array, ``[channels, N]`` in a well-formed tree. Raises ReadError."""
        try:
            return np.load(io.BytesIO(self.read_bytes(suffix)), allow_pickle=False)
        except (ValueError, OSError, EOFError) as err:
            raise ReadError(f"{self.location(suffix)}: not a readable .npy, truncated or corrupt ({err})") from err

    def load_meta(self) -> LatentMeta:
        """The metadata. Raises ReadError."""
        try:
            meta = json.loads(self.read_bytes(META))
        except (UnicodeDecodeError, json.JSONDecodeError) as err:
            raise ReadError(f"{self.location(META)}: not valid JSON ({err})") from err
        if not isinstance(meta, dict):
            raise ReadError(f"{self.location(META)}: expected a JSON object")
        return LatentMeta.from_dict(meta)

    def load_std(self) -> np.ndarray:
        """The posterior std sidecar ``[latent_dim, N]``. Raises ReadError."""
        try:
            with np.load(io.BytesIO(self.read_bytes(STD)), allow_pickle=False) as npz:
                return npz["std"]
        except KeyError as err:
            raise ReadError(f"{self.location(STD)}: has no array named 'std'") from err
        except (ValueError, OSError, EOFError, zipfile.BadZipFile) as err:
            raise ReadError(f"{self.location(STD)}: not a readable .npz, truncated or corrupt ({err})") from err

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready form (for caches): :meth:`from_dict` restores it."""
        parts = {suffix: [p.path, p.offset, p.size] + ([p.profile] if p.profile else [])
                 for suffix, p in self.parts.items()}
        return {"key": self.key, "where": self.where, "rank": self.rank, "parts": parts}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Record:
        parts = {suffix: Part(str(path), offset, size, *profile)
                 for suffix, (path, offset, size, *profile) in data["parts"].items()}
        return cls(key=str(data["key"]), where=str(data["where"]), parts=parts, rank=str(data.get("rank", "")))


def latent_file_record(path: str | Path) -> Record:
    """The record of one loose latent file, from its name alone (its siblings are looked up, not listed)."""
    path = Path(path)
    key, suffix = split_name(path.name)
    record = Record(key=key, where=str(path.parent / key), parts={suffix: Part(str(path))})
    for other in (META, STD):
        sibling = path.parent / (key + other)
        if other != suffix and sibling.is_file():
            record.parts[other] = Part(str(sibling))
    return record


# A folder of one kind: listing a local folder gives local paths, listing an S3 prefix gives S3 paths.
P = TypeVar("P", Path, ObjectPath)


@dataclass
class Listing(Generic[P]):
    """What one folder holds, by name.

    Attributes:
        records: loose records, sorted by key.
        shards: ``.tar`` files.
        temporaries: files or folders named like temporaries.
        folders: other sub-folders.
    """

    records: list[Record] = field(default_factory=list)
    shards: list[P] = field(default_factory=list)
    temporaries: list[P] = field(default_factory=list)
    folders: list[P] = field(default_factory=list)


def _profile(path: StorePath) -> str | None:
    return path.profile if isinstance(path, ObjectPath) else None


def group_names(folder: P, names: Iterable[str], rank: str = "", subfolders: Iterable[str] = ()) -> Listing[P]:
    """Group a folder's file ``names`` into records (``subfolders`` are sorted out the same way)."""
    listing: Listing[P] = Listing()
    records: dict[str, Record] = {}
    profile = _profile(folder)
    for name in sorted(names):
        if is_temporary(name):
            listing.temporaries.append(folder / name)
        elif name.endswith(SHARD_SUFFIX):
            listing.shards.append(folder / name)
        else:
            key, suffix = split_name(name)
            record = records.setdefault(key, Record(key=key, where=str(folder / key), rank=rank))
            record.parts[suffix] = Part(str(folder / name), profile=profile)
    for name in sorted(subfolders):
        (listing.temporaries if is_temporary(name) else listing.folders).append(folder / name)
    listing.records = list(records.values())
    return listing


def entries(folder: StorePath) -> tuple[list[str], list[str]]:
    """The names of the files and of the sub-folders of a folder (or S3 prefix)."""
    if isinstance(folder, ObjectPath):
        objects, prefixes = folder.list_dir()
        return [info.path.name for info in objects], prefixes
    files: list[str] = []
    folders: list[str] = []
    with os.scandir(folder) as found:
        for entry in found:
            (folders if entry.is_dir() else files).append(entry.name)
    return files, folders


def list_folder(folder: P, rank: str = "") -> Listing[P]:
    """:func:`group_names` over the entries of ``folder``."""
    files, folders = entries(folder)
    return group_names(folder, files, rank, folders)


def _open_shard(path: StorePath, size: int | None) -> tuple[IO[bytes], int]:
    """The shard opened for reading front to back, and its size in bytes."""
    if isinstance(path, ObjectPath):
        if size is None:
            info = path.stat()
            if info is None:
                raise FileNotFoundError(f"{path} does not exist")
            size = info.size
        return path.open_stream(size), size
    f = open(path, "rb")  # noqa: SIM115 - closed by the caller
    return f, os.fstat(f.fileno()).st_size


def _check_complete(tar: tarfile.TarFile, size: int) -> None:
    """tarfile takes a header cut short for the end of the archive; a complete one ends in two zero blocks."""
    if size - tar.offset < 2 * tarfile.BLOCKSIZE:
        raise ReadError(f"it ends at byte {size}, inside a member or header: truncated")


def stream_shard(path: StorePath, rank: str = "", size: int | None = None) -> Iterator[Record]:
    """The records of one ``.tar`` shard with their bytes, in member order, from one front-to-back read.

    On S3 this is one ranged GET per 16 MiB instead of one per member. A record is the run of consecutive
    members that share a key, as WebDataset groups them.

    Args:
        size: the shard's size in bytes when a listing gave it (saves a request on S3).

    Raises:
        ReadError: the shard cannot be opened, or is not a tar, truncated or corrupt (the records before the
            damage have been yielded).
        StorageError: S3 cannot be reached.
    """
    profile = _profile(path)
    record: Record | None = None
    try:
        f, size = _open_shard(path, size)
        with f, tarfile.open(fileobj=f, mode="r|") as tar:
            for member in tar:
                if not member.isfile():
                    continue
                key, suffix = split_name(member.name)
                if record is not None and record.key != key:
                    yield record  # complete: the next member starts another record
                    record = None
                if record is None:
                    record = Record(key=key, where=f"{path}:{key}", rank=rank)
                extracted = tar.extractfile(member)
                data = extracted.read() if extracted is not None else b""
                record.parts[suffix] = Part(str(path), member.offset_data, member.size, profile, data)
            _check_complete(tar, size)
    except (OSError, tarfile.TarError, EOFError, ReadError) as err:
        raise ReadError(f"{path}: not a readable tar shard, truncated or corrupt ({err})") from err
    if record is not None:
        yield record


def read_shard(path: StorePath, rank: str = "") -> list[Record]:
    """The records of one ``.tar`` shard, from its member headers (no member data is kept; on S3 the shard
    is read through once).

    Raises:
        ReadError: the shard cannot be opened or its member list cannot be read (e.g. truncated).
    """
    if isinstance(path, ObjectPath):
        streamed = list(stream_shard(path, rank))
        for record in streamed:
            record.parts = {suffix: replace(part, data=None) for suffix, part in record.parts.items()}
        return streamed
    records: dict[str, Record] = {}
    try:
        with tarfile.open(path, mode="r:") as tar:
            for member in tar:
                if not member.isfile():
                    continue
                key, suffix = split_name(member.name)
                record = records.setdefault(key, Record(key=key, where=f"{path}:{key}", rank=rank))
                record.parts[suffix] = Part(str(path), member.offset_data, member.size)
            _check_complete(tar, os.stat(path).st_size)
    except (OSError, tarfile.TarError, EOFError, ReadError) as err:
        raise ReadError(f"{path}: not a readable tar shard, truncated or corrupt ({err})") from err
    return list(records.values())


def iter_shards(shards: Iterable[tuple[str, StorePath]], on_error: Callable[[ReadError], None]) -> Iterator[Record]:
    """The records of each ``(rank, shard)`` in turn; an unreadable shard goes to ``on_error`` and is skipped
    (on S3, after the records before the damage)."""
    for rank, path in shards:
        try:
            if isinstance(path, ObjectPath):
                yield from stream_shard(path, rank)
                continue
            records = read_shard(path, rank)
        except ReadError as err:
            log.debug("unreadable shard %s: %s", path, err)
            on_error(err)
            continue
        yield from records


@dataclass
class Tree:
    """The listing of an output tree (names only, nothing read yet but its details file).

    Attributes:
        root: the output folder, or its S3 prefix.
        details: its details file.
        ranks: rank folder names (all-digit sub-folders), sorted numerically.
        loose: loose records in listing order (rank, then key).
        shards: ``(rank, path)`` of the ``.tar`` files.
        temporaries: leftover files or folders named like temporaries, anywhere in the tree.
        unexpected: other folders in rank folders, which are no part of the format.
        shard: the shard the command line named, when the tree is that one shard (``root`` is then the
            output folder around it, found from its rank folder).
        member: the key of the one member named (``<shard>.tar:<key>``); only its record is read.
        loose_in_bucket: loose records of an S3 tree: not part of the format there, not read.
    """

    root: StorePath
    details: Details
    ranks: list[str] = field(default_factory=list)
    loose: list[Record] = field(default_factory=list)
    shards: list[tuple[str, StorePath]] = field(default_factory=list)
    temporaries: list[StorePath] = field(default_factory=list)
    unexpected: list[StorePath] = field(default_factory=list)
    loose_in_bucket: list[Record] = field(default_factory=list)
    shard: Path | None = None
    member: str | None = None


def _shard_records(path: Path) -> list[Record]:
    """The records of a shard the user named. Raises UserError when it cannot be read."""
    try:
        return read_shard(path, path.parent.name)
    except ReadError as err:
        raise UserError(f"{err}.", "Run `preencode verify` on the output folder, or delete the shard and re-run "
                                   "the encode command to encode its samples again.") from err


def _check_member(path: Path, key: str, records: list[Record]) -> None:
    if not any(r.key == key or r.id == key for r in records):
        ids = [r.key for r in records if r.is_latent()]
        shown = ", ".join(ids[:5]) + (f", ... ({len(ids)} in all)" if len(ids) > 5 else "")
        raise UserError(f"{path} has no member {key!r} (it holds {shown or 'no latents'}).",
                        f"Pass one of its ids: {path}:<id>.")


def _shard_tree(path: Path, key: str | None, model_config: str | Path | None) -> Tree:
    """A tree of one shard (``out/<rank>/shard-….tar``), read with the details file of its output folder."""
    if key is not None:
        _check_member(path, key, _shard_records(path))
    root = path.parent.parent if is_rank_dir(path.parent.name) else path.parent
    rank = path.parent.name if is_rank_dir(path.parent.name) else ""
    tree = Tree(root=root, details=read_details(root, model_config), shard=path, member=key)
    tree.ranks = [rank] if rank else []
    tree.shards = [(rank, path)]
    return tree


def open_tree(root: str | Path | ObjectPath, model_config: str | Path | None = None) -> Tree:
    """List an output tree (a folder, or an ``s3://bucket/prefix``) and read its details file; ``root`` may
    also name one local shard or one member of it (``out/0/shard-000000.tar``, ``out/0/shard-000000.tar:<id>``).

    Raises:
        UserError: ``root`` is missing or not a folder or shard, a named member is not in its shard, or the
            details file has a format version this version does not read.
        StorageError: S3 cannot be reached.
    """
    if not isinstance(root, ObjectPath) and not is_s3_url(str(root)):
        path, key = split_member(str(root))
        if path.endswith(SHARD_SUFFIX) and Path(path).is_file():
            return _shard_tree(Path(path), key, model_config)
    root = store_path(root)
    if root.is_file():
        raise UserError(f"{root} is a file, expected the output folder of an encode run.",
                        "Pass the folder that holds the details file and the rank folders.")
    if not root.is_dir():
        raise UserError(f"Output folder not found: {root}.", "Pass the --output-path the encoder wrote to.")
    tree = Tree(root=root, details=read_details(root, model_config))
    files, folders = entries(root)
    for name in sorted(files + folders):
        if is_temporary(name):
            tree.temporaries.append(root / name)
        elif name in folders and is_rank_dir(name):
            tree.ranks.append(name)
    tree.ranks.sort(key=int)
    for rank in tree.ranks:
        if isinstance(root, ObjectPath):
            _add_rank(tree, rank, list_folder(root / rank, rank), tree.loose_in_bucket)
        else:
            _add_rank(tree, rank, list_folder(root / rank, rank), tree.loose)
    return tree


def _add_rank(tree: Tree, rank: str, listing: Listing[Path] | Listing[ObjectPath], loose: list[Record]) -> None:
    loose.extend(listing.records)
    tree.shards.extend((rank, path) for path in listing.shards)
    tree.temporaries.extend(listing.temporaries)
    tree.unexpected.extend(listing.folders)


def iter_records(tree: Tree, on_shard_error: Callable[[ReadError], None]) -> Iterator[Record]:
    """Every record of the tree: loose ones first, then each shard's.

    Args:
        tree: from :func:`open_tree`.
        on_shard_error: called with the error of a shard that cannot be read; iteration goes on.
    """
    yield from tree.loose
    for record in iter_shards(tree.shards, on_shard_error):
        if tree.member is None or tree.member in (record.key, record.id):
            yield record


def record_at(location: str | Path) -> Record:
    """The one latent a command line names: a loose file of it (``out/0/<id>.npy``), a shard member
    (``out/0/shard-000000.tar:<id>``), or a shard that holds one latent.

    Raises:
        UserError: nothing is there, the shard cannot be read or does not hold the member, or the shard
            holds several latents and none was named.
    """
    path_text, key = split_member(str(location))
    path = Path(path_text)
    if not path.is_file():
        raise UserError(f"Latent not found: {location}.",
                        f"Pass a stored <id>{LATENT} file, or a shard member as <shard>{SHARD_SUFFIX}:<id>.")
    if not path.name.endswith(SHARD_SUFFIX):
        return latent_file_record(path)
    records = _shard_records(path)
    if key is not None:
        _check_member(path, key, records)
        return next(r for r in records if key in (r.key, r.id))
    latents = [r for r in records if r.is_latent()]
    if len(latents) == 1:
        return latents[0]
    shown = ", ".join(r.key for r in latents[:3]) + (", ..." if len(latents) > 3 else "")
    raise UserError(f"{path} holds {len(latents)} latents ({shown or 'none'}); name one.",
                    f"Pass {path}:<id>, e.g. {path}:{latents[0].key}." if latents else "Pass another shard.")
