"""WebDataset tar shards, local or on S3, indexed once so that any sample can be read by offset.

A sample is a run of consecutive tar members sharing a key (the member path up to the first dot
of its basename, the webdataset convention): one audio member (the first whose extension ends in a
supported audio extension) and an optional ``.json`` member. Indexing reads each shard once,
front to back, reading headers and skipping member data; samples are then read with one range
read per member (see :func:`read_range`).
"""

from __future__ import annotations

import logging
import posixpath
import tarfile
from collections.abc import Iterable
from dataclasses import dataclass
from typing import IO

from ...audio import AUDIO_EXTENSIONS
from ...store.s3_client import s3_filesystem, strip_scheme
from ..failures import Failure
from .items import Fingerprint, TarMember

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Shard:
    url: str
    relpath: str
    fingerprint: Fingerprint


def split_key(name: str) -> tuple[str, str]:
    """``("dir/abc", "flac")`` for ``dir/abc.flac``; the extension is everything after the first dot."""
    folder, base = posixpath.split(name)
    stem, _, ext = base.partition(".")
    return posixpath.join(folder, stem) if folder else stem, ext


def _is_audio(ext: str) -> bool:
    return ext.rsplit(".", 1)[-1].lower() in AUDIO_EXTENSIONS


def index_tar(fileobj: IO[bytes], shard: str, dataset_id: str | None = None
              ) -> tuple[list[TarMember], list[Failure]]:
    """Index the samples of one tar shard (one pass over its headers).

    Returns:
        ``(samples, failures)``: samples in member order; a failure for each sample without audio
        and for a shard that is corrupt (samples before the damage are kept).
    """
    groups: list[tuple[str, list[tarfile.TarInfo]]] = []
    failures: list[Failure] = []
    try:
        with tarfile.open(fileobj=fileobj, mode="r:") as tar:
            for info in tar:
                if not info.isfile():
                    continue
                key, _ = split_key(info.name)
                if groups and groups[-1][0] == key:
                    groups[-1][1].append(info)
                else:
                    groups.append((key, [info]))
    except (tarfile.TarError, OSError, EOFError) as err:
        failures.append(Failure(shard, "scan", f"tar shard is corrupt or truncated ({err}); "
                                f"{len(groups)} samples before the damage are used", dataset_id=dataset_id))
    samples = []
    for key, members in groups:
        audio = next((m for m in members if _is_audio(split_key(m.name)[1])), None)
        if audio is None:
            names = ", ".join(m.name for m in members)
            failures.append(Failure(f"{shard}#{key}", "scan", f"sample has no audio member (members: {names})",
                                    dataset_id=dataset_id))
            continue
        meta = next((m for m in members if split_key(m.name)[1].lower() == "json"), None)
        samples.append(TarMember(shard, key, audio.name, audio.offset_data, audio.size,
                                 meta.name if meta else None, meta.offset_data if meta else None,
                                 meta.size if meta else None))
    return samples, failures


def index_local_shard(shard: Shard, dataset_id: str | None = None) -> tuple[list[TarMember], list[Failure]]:
    try:
        with open(shard.url, "rb") as f:
            return index_tar(f, shard.url, dataset_id)
    except OSError as err:
        return [], [Failure(shard.url, "scan", f"tar shard cannot be read ({err.strerror or err})",
                            dataset_id=dataset_id)]


def list_s3_shards(s3_path: str, profile: str | None = None) -> list[Shard]:
    """The ``.tar`` objects under an ``s3://bucket/prefix``, sorted by key.

    Raises:
        OSError: the prefix cannot be listed (credentials, endpoint, bucket).
    """
    fs = s3_filesystem(profile)
    prefix = strip_scheme(s3_path).rstrip("/")
    listing = fs.find(prefix, detail=True)
    shards = []
    for key in sorted(listing):
        info = listing[key]
        if info.get("type", "file") != "file" or not key.lower().endswith(".tar"):
            continue
        etag = str(info.get("ETag") or info.get("etag") or "").strip('"') or None
        rel = key[len(prefix):].lstrip("/") or posixpath.basename(key)
        shards.append(Shard(f"s3://{key}", rel, Fingerprint(size=info.get("size"), etag=etag)))
    return shards


def index_s3_shard(shard: Shard, profile: str | None = None, dataset_id: str | None = None,
                   block_size: int = 1 << 20) -> tuple[list[TarMember], list[Failure]]:
    fs = s3_filesystem(profile)
    try:
        with fs.open(strip_scheme(shard.url), "rb", block_size=block_size, cache_type="readahead") as f:
            return index_tar(f, shard.url, dataset_id)
    except OSError as err:
        return [], [Failure(shard.url, "scan", f"tar shard cannot be read ({err})", dataset_id=dataset_id)]


def member_relpath(shard: Shard, member_name: str) -> str:
    return posixpath.join(shard.relpath.replace("\\", "/"), member_name)


def shards_from_found(found: Iterable) -> list[Shard]:
    return [Shard(f.path, f.relpath, f.fingerprint) for f in found]
