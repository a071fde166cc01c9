"""Finding pre-encoded latents on disk, with an index cached between runs.

A pre-encoded dataset root holds ``<id>.npy`` latents, each with a sibling ``<id>.json`` (our output and
stable-audio-tools' output), in any folder depth; a ``filelist.txt`` at the root (one latent path per
line, relative to the root or absolute) replaces the scan. WebDataset latent shards (``*.tar`` files
holding ``<id>.npy`` and ``<id>.json`` members) are indexed by member offset, so that a sample is read
with one seek.

Scanning a folder of a million latents takes minutes, so the index is cached (see
:func:`index_root`) and reused while every folder seen by the scan keeps its modification time: adding,
removing or renaming a file changes its folder's time and invalidates the cache. Editing a file in place
does not; delete the cache (``PREENCODE_CACHE_DIR``) after doing that.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import tarfile
from dataclasses import asdict, dataclass
from pathlib import Path

log = logging.getLogger(__name__)

INDEX_VERSION = 1


@dataclass(frozen=True)
class LatentRecord:
    """Where one latent and its metadata are.

    For a loose file ``latent``/``meta`` are file paths and the offsets are None; for a shard member
    ``latent`` is the ``.tar`` path and the offsets/sizes locate the two members inside it.
    ``seconds_total`` is read from the metadata when the index is built (None when absent).
    """

    latent: str
    meta: str
    seconds_total: float | None = None
    latent_offset: int | None = None
    latent_size: int | None = None
    meta_offset: int | None = None
    meta_size: int | None = None
    std_offset: int | None = None  # a posterior std member ``<id>.std.npz`` in the same shard
    std_size: int | None = None

    @property
    def in_shard(self) -> bool:
        return self.latent_offset is not None


def cache_dir() -> Path:
    """The folder of cached indexes (``$PREENCODE_CACHE_DIR`` or ``~/.cache/preencode/latent_index``)."""
    env = os.environ.get("PREENCODE_CACHE_DIR")
    return Path(env) if env else Path.home() / ".cache" / "preencode" / "latent_index"


def index_root(root: str | Path, extension: str = "npy", use_cache: bool = True) -> tuple[list[LatentRecord], int]:
    """All latents under ``root``, sorted by path, and the number of files skipped while indexing.

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
    records, skipped, folders = _scan(root, extension)
    if use_cache:
        _write_cache(cache_file, records, skipped, folders)
    return records, skipped


def _fingerprint(folders: list[str]) -> dict[str, int] | None:
    stamps = {}
    for folder in folders:
        try:
            stamps[folder] = os.stat(folder).st_mtime_ns
        except OSError:
            return None
    return stamps


def _read_cache(cache_file: Path) -> tuple[list[LatentRecord], int] | None:
    try:
        with open(cache_file, encoding="utf-8") as f:
            data = json.load(f)
        if data.get("version") != INDEX_VERSION or _fingerprint(list(data["folders"])) != data["folders"]:
            return None
        return [LatentRecord(**r) for r in data["records"]], int(data["skipped"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _write_cache(cache_file: Path, records: list[LatentRecord], skipped: int, folders: list[str]) -> None:
    stamps = _fingerprint(folders)
    if stamps is None:
        return
    data = {"version": INDEX_VERSION, "folders": stamps, "skipped": skipped, "records": [asdict(r) for r in records]}
    try:
        cache_file.parent.mkdir(parents=True, exist_ok=True)
        tmp = cache_file.with_suffix(f".tmp{os.getpid()}")
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump(data, f)
        os.replace(tmp, cache_file)
    except OSError as err:
        log.warning("Could not write the latent index cache %s: %s", cache_file, err)


def _scan(root: Path, extension: str) -> tuple[list[LatentRecord], int, list[str]]:
    """Returns (records, skipped, folders whose modification time guards the cache)."""
    suffix = f".{extension}"
    filelist = root / "filelist.txt"
    folders = [str(root)]
    latents: list[Path] = []
    shards: list[Path] = []
    if filelist.is_file():
        folders.append(str(filelist))  # a file's own time guards the list
        for line in filelist.read_text(encoding="utf-8").splitlines():
            line = line.strip()
            if line and not line.startswith("#"):
                path = Path(line) if os.path.isabs(line) else root / line
                (shards if path.suffix == ".tar" else latents).append(path)
    else:
        for dirpath, dirnames, filenames in os.walk(root, followlinks=True):
            dirnames.sort()
            folders.extend(str(Path(dirpath) / d) for d in dirnames)
            names = set(filenames)
            for name in filenames:
                if name.endswith(suffix) and name[: -len(suffix)] + ".json" in names:
                    latents.append(Path(dirpath) / name)
                elif name.endswith(".tar"):
                    shards.append(Path(dirpath) / name)
    records: list[LatentRecord] = []
    skipped = 0
    for path in sorted(latents):
        meta = path.with_name(path.name[: -len(suffix)] + ".json")
        try:
            with open(meta, encoding="utf-8") as f:
                info = json.load(f)
            records.append(LatentRecord(str(path), str(meta), _seconds_total(info)))
        except (OSError, ValueError) as err:
            skipped += 1
            log.warning("Skipping latent %s: its metadata %s cannot be read (%s)", path, meta, err)
    for shard in sorted(shards):
        found, bad = _index_shard(shard, suffix)
        records.extend(found)
        skipped += bad
    return records, skipped, folders


def _seconds_total(info: object) -> float | None:
    value = info.get("seconds_total") if isinstance(info, dict) else None
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def _index_shard(shard: Path, suffix: str) -> tuple[list[LatentRecord], int]:
    """Records of the ``<id><suffix>`` + ``<id>.json`` member pairs of one tar shard."""
    members: dict[str, tarfile.TarInfo] = {}
    try:
        with tarfile.open(shard, "r:") as tar:
            for member in tar:
                if member.isfile():
                    members[member.name] = member
            records, skipped = [], 0
            for name in sorted(members):
                if not name.endswith(suffix):
                    continue
                meta = members.get(name[: -len(suffix)] + ".json")
                if meta is None:
                    continue
                latent = members[name]
                try:
                    info = json.loads(tar.extractfile(meta).read())  # type: ignore[union-attr]
                except (OSError, ValueError) as err:
                    skipped += 1
                    log.warning("Skipping %s in shard %s: bad metadata (%s)", name, shard, err)
                    continue
                std = members.get(name[: -len(suffix)] + ".std.npz")
                records.append(LatentRecord(str(shard), f"{shard}::{meta.name}", _seconds_total(info),
                                            latent.offset_data, latent.size, meta.offset_data, meta.size,
                                            std.offset_data if std else None, std.size if std else None))
    except (OSError, tarfile.TarError) as err:
        log.warning("Skipping shard %s: it cannot be read (%s)", shard, err)
        return [], 1
    return records, skipped
