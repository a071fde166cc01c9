"""The training loader's index of the latents under a dataset root, cached between runs.

A pre-encoded dataset root holds latents (our output and stable-audio-tools' output) in any folder depth:
records of :mod:`preencode.store.reader` holding ``<key>.npy`` and ``<key>.json``, loose or in ``*.tar``
shards (indexed by member offset, so that a sample is read with one seek). A ``filelist.txt`` at the root
(one latent or shard path per line, relative to the root or absolute) replaces the scan.

Scanning a folder of a million latents takes minutes, so the index is cached (see :func:`index_root`)
and reused while every folder seen by the scan keeps its modification time: adding, removing or renaming
a file changes its folder's time and invalidates the cache. Editing a file in place does not; delete the
cache (``PREENCODE_CACHE_DIR``) after doing that.

At the root of an encode output, copies that its manifest says are superseded (an ``--update`` replacing them
was interrupted, or a prune) are left out (:mod:`preencode.store.manifest`).

A root of shards streamed for training (a folder or an ``s3://`` prefix) needs only its shards and their sizes:
:func:`find_shards`, one listing, nothing read.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path

from .atomic import atomic_write
from .manifest import ManifestView, reader_view
from .meta import LatentMeta
from .names import FILELIST, MANIFEST, META, SHARD_SUFFIX, is_temporary
from .objects import ObjectPath, StorePath
from .reader import ReadError, Record, group_names, latent_file_record, read_shard

log = logging.getLogger(__name__)

INDEX_VERSION = 3  # 3: superseded copies left out


@dataclass(frozen=True)
class IndexedLatent:
    """One latent of the index: its record and ``seconds_total`` from its metadata (None when absent)."""

    record: Record
    seconds_total: float | None = None


def cache_dir() -> Path:
    """The folder of cached indexes (``$PREENCODE_CACHE_DIR`` or ``~/.cache/preencode/latent_index``)."""
    env = os.environ.get("PREENCODE_CACHE_DIR")
    return Path(env) if env else Path.home() / ".cache" / "preencode" / "latent_index"


def index_root(root: str | Path, extension: str = "npy", use_cache: bool = True) -> tuple[list[IndexedLatent], int]:
    """All latents under ``root`` (loose ones sorted by path, then each shard's), and the number of files
    skipped while indexing.

    Args:
        extension: the latent files' extension (``npy``; stable-audio-tools' ``latent_extension``).

    Raises:
        FileNotFoundError: ``root`` does not exist.
    """
    root = Path(root).resolve()
    if not root.is_dir():
        raise FileNotFoundError(root)
    key = hashlib.sha256(f"{root}|{extension}|{INDEX_VERSION}".encode()).hexdigest()[:24]
    cache_file = cache_dir() / f"{key}.json"
    if use_cache:
        cached = _read_cache(cache_file)
        if cached is not None:
            log.info("Using the cached latent index of %s (%d latents)", root, len(cached[0]))
            return cached
    latents, skipped, folders = _scan(root, extension)
    if use_cache:
        _write_cache(cache_file, latents, skipped, folders)
    return latents, skipped


def _fingerprint(folders: list[str]) -> dict[str, int] | None:
    stamps = {}
    for folder in folders:
        try:
            stamps[folder] = os.stat(folder).st_mtime_ns
        except OSError:
            return None
    return stamps


def _read_cache(cache_file: Path) -> tuple[list[IndexedLatent], int] | None:
    try:
        with open(cache_file, encoding="utf-8") as f:
            data = json.load(f)
        if data.get("version") != INDEX_VERSION or _fingerprint(list(data["folders"])) != data["folders"]:
            return None
        latents = [IndexedLatent(Record.from_dict(r["record"]), r["seconds_total"]) for r in data["latents"]]
        return latents, int(data["skipped"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _write_cache(cache_file: Path, latents: list[IndexedLatent], skipped: int, folders: list[str]) -> None:
    stamps = _fingerprint(folders)
    if stamps is None:
        return
    entries = [{"record": x.record.to_dict(), "seconds_total": x.seconds_total} for x in latents]
    data = {"version": INDEX_VERSION, "folders": stamps, "skipped": skipped, "latents": entries}
    try:
        cache_file.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(cache_file, json.dumps(data))
    except OSError as err:
        log.warning("Could not write the latent index cache %s: %s", cache_file, err)


def _listed(root: Path, suffix: str) -> tuple[list[Record], list[Path], int]:
    """Records and shards named by ``filelist.txt`` (no folder is listed), and the lines skipped."""
    records, shards, skipped = [], [], 0
    for line in (root / FILELIST).read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        path = Path(line) if os.path.isabs(line) else root / line
        if path.suffix == SHARD_SUFFIX:
            shards.append(path)
            continue
        record = latent_file_record(path)
        if record.is_latent(suffix):
            records.append(record)
        else:
            skipped += 1
            log.warning("Skipping %s of %s: not a %s latent with a sibling %s", line, root / FILELIST, suffix, META)
    return records, shards, skipped


def _seconds(meta: LatentMeta) -> float | None:
    return None if meta.seconds_total is None else float(meta.seconds_total)


def _add_current(latents: list[IndexedLatent], record: Record, view: ManifestView | None) -> None:
    """Index ``record`` unless the manifest says it is superseded. Raises ReadError for unreadable metadata."""
    meta = record.load_meta()
    why = view.why_superseded(record.id, meta) if view is not None else None
    if why is not None:
        log.info("Leaving out %s: superseded, %s.", record.where, why)
        return
    latents.append(IndexedLatent(record, _seconds(meta)))


def _scan(root: Path, extension: str) -> tuple[list[IndexedLatent], int, list[str]]:
    """Returns (latents, skipped, folders whose modification time guards the cache)."""
    suffix = f".{extension}"
    folders = [str(root)]
    records: list[Record] = []
    shards: list[Path] = []
    skipped = 0
    if (root / FILELIST).is_file():
        folders.append(str(root / FILELIST))  # a file's own time guards the list
        records, shards, skipped = _listed(root, suffix)
    else:
        for dirpath, dirnames, filenames in os.walk(root, followlinks=True):
            dirnames[:] = sorted(d for d in dirnames if not is_temporary(d))  # hidden folders are not scanned
            folders.extend(str(Path(dirpath) / d) for d in dirnames)
            listing = group_names(Path(dirpath), filenames)
            records.extend(listing.records)
            shards.extend(listing.shards)
    latents: list[IndexedLatent] = []
    view = reader_view(root)
    if view is not None:
        folders.append(str(root / MANIFEST))  # a rewritten manifest (an update) invalidates the cache
    for record in sorted(records, key=lambda r: r.parts[suffix].path if suffix in r.parts else ""):
        if not record.is_latent(suffix):
            continue
        try:
            _add_current(latents, record, view)
        except ReadError as err:
            skipped += 1
            log.warning("Skipping latent %s: its metadata cannot be read (%s)", record.location(suffix), err)
    for shard in sorted(shards):
        try:
            found = read_shard(shard)
        except ReadError as err:
            log.warning("Skipping shard %s: it cannot be read (%s)", shard, err)
            skipped += 1
            continue
        for record in sorted(found, key=lambda r: r.key):
            if not record.is_latent(suffix):
                continue
            try:
                _add_current(latents, record, view)
            except ReadError as err:
                skipped += 1
                log.warning("Skipping %s: bad metadata (%s)", record.location(suffix), err)
    return latents, skipped, folders


@dataclass(frozen=True)
class ShardFile:
    """A ``.tar`` shard under a training root: where it is, its path relative to the root, its size in bytes."""

    path: StorePath
    relpath: str
    size: int


def find_shards(root: StorePath) -> list[ShardFile]:
    """Every ``.tar`` shard under ``root`` at any depth, sorted by relative path; names starting with a dot or
    ending in ``.tmp`` (files or folders) are temporaries of a writer, never shards.

    Raises:
        FileNotFoundError: ``root`` is not a folder (locally), or its bucket does not exist.
        StorageError: S3 cannot be reached.
    """
    found: list[ShardFile] = []
    if isinstance(root, ObjectPath):
        prefix = len(root.key) + 1 if root.key else 0
        for info in root.list_all():
            relpath = info.path.key[prefix:]
            if relpath.endswith(SHARD_SUFFIX) and not any(is_temporary(part) for part in relpath.split("/")):
                found.append(ShardFile(info.path, relpath, info.size))
        return found
    if not root.is_dir():
        raise FileNotFoundError(root)
    for dirpath, dirnames, filenames in os.walk(root, followlinks=True):
        dirnames[:] = sorted(d for d in dirnames if not is_temporary(d))
        for name in filenames:
            if name.endswith(SHARD_SUFFIX) and not is_temporary(name):
                path = Path(dirpath) / name
                found.append(ShardFile(path, path.relative_to(root).as_posix(), path.stat().st_size))
    return sorted(found, key=lambda shard: shard.relpath)
