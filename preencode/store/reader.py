"""Listing and reading the latents of an output tree: loose files in rank folders, and ``.tar`` shards.

Layout::

    <root>/details.json, failures.jsonl, rejected.jsonl
    <root>/<rank>/<id>.npy        latent [latent_dim, N] (tokens [n_q, N] when discrete)
    <root>/<rank>/<id>.json       metadata (padding_mask [N], ...)
    <root>/<rank>/<id>.std.npz    optional posterior std (key "std", same shape as the latent)
    <root>/<rank>/<shard>.tar     optional WebDataset shards holding the same members

A *record* groups the files sharing one key (the name up to its first dot, as WebDataset does).
Listing is cheap (names only); arrays are read on demand, one record at a time.
"""

from __future__ import annotations

import io
import json
import logging
import tarfile
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import UserError
from .latent_info import Details, read_details

log = logging.getLogger(__name__)

LATENT = ".npy"
META = ".json"
STD = ".std.npz"
SHARD = ".tar"
KNOWN_SUFFIXES = (LATENT, META, STD)
ID_DIGITS = 13


class ReadError(Exception):
    """A file (or shard member) of the tree that cannot be read as what it should be."""


def is_temporary(name: str) -> bool:
    """Names the writer uses while a file is incomplete: a leading dot or a ``.tmp`` ending."""
    return name.startswith(".") or name.endswith(".tmp")


def split_name(name: str) -> tuple[str, str]:
    """``"0000000000001.std.npz"`` -> ``("0000000000001", ".std.npz")`` (key up to the first dot)."""
    directory, _, base = name.rpartition("/")
    stem, dot, rest = base.partition(".")
    key = f"{directory}/{stem}" if directory else stem
    return key, dot + rest


def is_id(key: str) -> bool:
    return len(key) == ID_DIGITS and key.isdigit()


@dataclass
class Record:
    """The files of one latent, loose or inside a shard.

    Attributes:
        rank: the rank folder's name.
        key: the shared name (the 13-digit id in a well-formed tree).
        where: a display location without suffix (``out/0/0000000000001`` or ``out/0/a.tar:0000000000001``).
        parts: suffix -> a loose path, or a tar member inside ``shard``.
        shard: the open shard holding the members, ``None`` for loose files.
    """

    rank: str
    key: str
    where: str
    parts: dict[str, Path | tarfile.TarInfo] = field(default_factory=dict)
    shard: tarfile.TarFile | None = None

    @property
    def id(self) -> str:
        return self.key.rpartition("/")[2]

    def location(self, suffix: str) -> str:
        return self.where + suffix

    def read_bytes(self, suffix: str) -> bytes:
        """The raw bytes of one part. Raises ReadError."""
        part = self.parts[suffix]
        try:
            if isinstance(part, Path):
                return part.read_bytes()
            assert self.shard is not None  # members always come with their shard
            handle = self.shard.extractfile(part)
            if handle is None:
                raise ReadError(f"{self.location(suffix)}: not a regular file in the shard")
            return handle.read()
        except (OSError, tarfile.TarError, EOFError) as err:
            raise ReadError(f"{self.location(suffix)}: cannot be read ({err})") from err

    def load_latent(self) -> np.ndarray:
        """The stored array, ``[channels, N]`` in a well-formed tree. Raises ReadError."""
        try:
            return np.load(io.BytesIO(self.read_bytes(LATENT)), allow_pickle=False)
        except (ValueError, OSError, EOFError) as err:
            raise ReadError(f"{self.location(LATENT)}: not a readable .npy, truncated or corrupt ({err})") from err

    def load_meta(self) -> dict[str, Any]:
        """The metadata object. Raises ReadError."""
        try:
            meta = json.loads(self.read_bytes(META))
        except (UnicodeDecodeError, json.JSONDecodeError) as err:
            raise ReadError(f"{self.location(META)}: not valid JSON ({err})") from err
        if not isinstance(meta, dict):
            raise ReadError(f"{self.location(META)}: expected a JSON object")
        return meta

    def load_std(self) -> np.ndarray:
        """The posterior std sidecar ``[latent_dim, N]``. Raises ReadError."""
        try:
            with np.load(io.BytesIO(self.read_bytes(STD)), allow_pickle=False) as npz:
                return npz["std"]
        except KeyError as err:
            raise ReadError(f"{self.location(STD)}: has no array named 'std'") from err
        except (ValueError, OSError, EOFError, zipfile.BadZipFile) as err:
            raise ReadError(f"{self.location(STD)}: not a readable .npz, truncated or corrupt ({err})") from err


def padding_mask(meta: dict[str, Any], frames: int) -> np.ndarray | None:
    """The metadata's ``padding_mask`` as booleans ``[frames]``; ``None`` when absent or malformed."""
    mask = meta.get("padding_mask")
    if not isinstance(mask, list) or len(mask) != frames:
        return None
    values = np.asarray(mask)
    if values.ndim != 1 or values.dtype.kind not in "iuf" or not np.isin(values, (0, 1)).all():
        return None
    return values.astype(bool)


@dataclass
class Tree:
    """The listing of an output tree (names only, nothing read yet but ``details.json``).

    Attributes:
        root: the output folder.
        details: its ``details.json``.
        ranks: rank folder names (all-digit sub-folders), sorted numerically.
        loose: loose records in listing order (rank, then key).
        shards: ``.tar`` files per rank.
        temporaries: leftover files or folders named like temporaries, anywhere in the tree.
        unexpected: other files or folders in rank folders that are no part of the format.
    """

    root: Path
    details: Details
    ranks: list[str] = field(default_factory=list)
    loose: list[Record] = field(default_factory=list)
    shards: list[tuple[str, Path]] = field(default_factory=list)
    temporaries: list[Path] = field(default_factory=list)
    unexpected: list[Path] = field(default_factory=list)


def open_tree(root: str | Path, model_config: str | Path | None = None) -> Tree:
    """List an output tree.

    Raises:
        UserError: ``root`` is missing or not a folder.
    """
    root = Path(root)
    if not root.exists():
        raise UserError(f"Output folder not found: {root}.", "Pass the --output-path the encoder wrote to.")
    if not root.is_dir():
        raise UserError(f"{root} is a file, expected the output folder of an encode run.",
                        "Pass the folder that holds details.json and the rank folders.")
    tree = Tree(root=root, details=read_details(root, model_config))
    for entry in sorted(root.iterdir()):
        if is_temporary(entry.name):
            tree.temporaries.append(entry)
        elif entry.is_dir() and entry.name.isdigit():
            tree.ranks.append(entry.name)
    tree.ranks.sort(key=int)
    for rank in tree.ranks:
        _list_rank(tree, rank)
    return tree


def _list_rank(tree: Tree, rank: str) -> None:
    records: dict[str, Record] = {}
    for entry in sorted((tree.root / rank).iterdir()):
        if is_temporary(entry.name):
            tree.temporaries.append(entry)
        elif entry.is_dir():
            tree.unexpected.append(entry)
        elif entry.name.endswith(SHARD):
            tree.shards.append((rank, entry))
        else:
            key, suffix = split_name(entry.name)
            record = records.setdefault(key, Record(rank=rank, key=key, where=str(tree.root / rank / key)))
            record.parts[suffix] = entry
    tree.loose.extend(records.values())


def _open_shard(path: Path) -> tarfile.TarFile:
    try:
        return tarfile.open(path, mode="r:")
    except (OSError, tarfile.TarError, EOFError) as err:
        raise ReadError(f"{path}: not a readable tar shard ({err})") from err


def iter_shard(rank: str, path: Path) -> Iterator[Record]:
    """The records of one ``.tar`` shard, read member by member (the shard stays open while iterating).

    Raises:
        ReadError: the shard cannot be opened or its member list cannot be read (e.g. truncated).
    """
    with _open_shard(path) as shard:
        try:
            members = shard.getmembers()
        except (OSError, tarfile.TarError, EOFError) as err:
            raise ReadError(f"{path}: tar shard is truncated or corrupt ({err})") from err
        records: dict[str, Record] = {}
        for member in members:
            if not member.isfile():
                continue
            key, suffix = split_name(member.name)
            record = records.setdefault(key, Record(rank=rank, key=key, where=f"{path}:{key}", shard=shard))
            record.parts[suffix] = member
        yield from records.values()


def iter_records(tree: Tree, on_shard_error: Callable[[ReadError], None]) -> Iterator[Record]:
    """Every record of the tree: loose ones first, then each shard's.

    Args:
        tree: from :func:`open_tree`.
        on_shard_error: called with the error of a shard that cannot be read; iteration goes on.
    """
    yield from tree.loose
    for rank, path in tree.shards:
        try:
            yield from iter_shard(rank, path)
        except ReadError as err:
            log.debug("unreadable shard %s: %s", path, err)
            on_shard_error(err)
