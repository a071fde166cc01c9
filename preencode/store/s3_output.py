"""An output tree written to S3 (``--output-path s3://bucket/prefix``, ``--output-format wds`` only).

The tree has the layout of a local one (:mod:`preencode.store.names`); how each part is committed:

* a shard is written to a local spool folder (:class:`UploadingShardWriter`), renamed there when complete,
  then uploaded (one PUT, or a multipart upload completed at the end: :meth:`ObjectPath.upload`) and removed
  from the spool. The completed request is the commit: no partial shard is ever listed. The spool holds at
  most the rank's one open shard;
* ``details.json``, ``manifest.jsonl``, the logs and ``shards.txt`` are objects written whole by global rank 0;
* each rank writes under its own ``<rank>/`` prefix, so nodes share nothing but the bucket.

Ownership (:func:`check_remote_ownership`): a prefix holding objects preencode does not name is refused, as a
local folder is. The lock (:func:`acquire_remote_lock`) is the object ``preencode.lock`` naming the run; it is
created with a conditional PUT (``If-None-Match: *``) where the server supports one, so two runs cannot both
create it. Where it is not supported the check-then-write leaves a short race: S3 itself has no lock. A lock of
a run on this host whose process is gone is taken over; one of another host is refused (nothing here can tell
whether that run is alive), and its message says which object to delete.

Resuming lists the committed shards and reads each once (:func:`scan_remote_done`): ids, and the cheap checks
of :mod:`preencode.store.resume` done on the bytes read; results are kept per shard (name, size, ETag) in a
:class:`ShardScan` so the end of the run reads only the shards it wrote.
"""

from __future__ import annotations

import contextlib
import datetime
import json
import logging
import os
import socket
import sys
import uuid
from dataclasses import asdict, dataclass, field
from pathlib import Path

from ..errors import ResourceError, StorageError, UserError
from .details import read_details
from .lock import LockInfo
from .names import (
    DETAILS,
    LATENT,
    LOCK,
    META,
    ROOT_FILES,
    SHARD_LIST,
    STD,
    is_id,
    is_own_rank_file,
    is_own_root_file,
    is_rank_dir,
    is_shard,
    shard_number,
)
from .objects import ObjectInfo, ObjectPath
from .ownership import Ownership
from .reader import ReadError, Record, stream_shard
from .resume import DoneScan, Expected
from .shards import ShardWriter, shard_urls

log = logging.getLogger(__name__)

_EXAMPLES = 3


# ---- what is there --------------------------------------------------------------------------------------------

def _relative(root: ObjectPath, info: ObjectInfo) -> str:
    return info.path.key[len(root.key) + 1:] if root.key else info.path.key


def _is_ours(name: str) -> bool:
    rank, slash, rest = name.partition("/")
    if not slash:
        return is_own_root_file(name)
    return is_rank_dir(rank) and "/" not in rest and is_own_rank_file(rest)


def check_remote_ownership(root: ObjectPath) -> Ownership:
    """Whether the prefix is new (no objects, or only a lock) or preencode's own; refuses anything else.

    Raises:
        UserError: objects preencode does not name (a few are named), output of another tool, an unreadable
            details object, or our shards without their details object.
        StorageError: S3 cannot be reached.
    """
    details = read_details(root)
    if details.exists:
        if details.problems:
            raise UserError(f"{details.problems[0]}; preencode cannot tell whether it wrote {root}.",
                            f"Restore {root / DETAILS}, or choose an empty or new --output-path.")
        if details.is_reference:
            raise UserError(f"{root} holds output of another tool (its {DETAILS} has no format_version); "
                            "preencode did not write it and will not change it.",
                            "Choose an empty or new --output-path.")
    names = [_relative(root, info) for info in root.list_all()]
    foreign = [n for n in names if not _is_ours(n)]
    if foreign:
        raise UserError(f"{root} holds objects that preencode did not write (e.g. "
                        f"{', '.join(foreign[:_EXAMPLES])}).",
                        "Choose an empty or new --output-path prefix; preencode never deletes what it did not write.")
    if details.exists:
        return Ownership.OURS
    if any(n != LOCK for n in names):
        raise UserError(f"{root} holds preencode output but no {DETAILS}: the settings it was encoded with are "
                        "unknown, so it can be neither resumed nor overwritten safely.",
                        f"Restore {root / DETAILS}, or delete the prefix yourself, or choose a new --output-path.")
    return Ownership.NEW


def remove_remote_output(root: ObjectPath) -> None:
    """``--overwrite``: delete the objects earlier runs wrote (only names preencode writes), details last."""
    for info in root.list_all():
        name = _relative(root, info)
        if _is_ours(name) and name not in (DETAILS, LOCK):
            info.path.unlink(missing_ok=True)
    (root / DETAILS).unlink(missing_ok=True)


def remove_start_files(root: ObjectPath) -> None:
    """Take back the root objects of a run that encoded nothing into a new prefix."""
    for name in ROOT_FILES:
        (root / name).unlink(missing_ok=True)


def has_shards(root: ObjectPath) -> bool:
    return any(is_shard(_relative(root, info).rpartition("/")[2]) for info in root.list_all())


# ---- one run at a time ----------------------------------------------------------------------------------------

def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _read_remote_lock(root: ObjectPath) -> LockInfo | None:
    try:
        return LockInfo.parse((root / LOCK).read_text(errors="replace"))
    except FileNotFoundError:
        return None


def _error_code(err: BaseException) -> str:
    """The S3 error code behind ``err`` (botocore's ClientError, kept as a cause by s3fs and the retries)."""
    seen: BaseException | None = err
    while seen is not None:
        response = getattr(seen, "response", None)
        if isinstance(response, dict):
            return str(response.get("Error", {}).get("Code", ""))
        seen = seen.__cause__
    return ""


def _create(obj: ObjectPath, body: bytes) -> bool:
    """Create ``obj`` only if it does not exist (``If-None-Match: *``); False when it exists. A server that does
    not support conditional writes gets a check, then a plain write."""
    try:
        obj._s3("write", "put_object", missing_ok=False, Key=obj.key, Body=body, IfNoneMatch="*")
        return True
    except StorageError as err:
        code = _error_code(err)
        if code in ("PreconditionFailed", "ConditionalRequestConflict"):
            return False
        if code not in ("NotImplemented", "InvalidArgument", "InvalidRequest"):
            raise
    log.warning("%s does not support conditional writes: the lock is checked, then written (a second run started "
                "at the same moment could slip through).", obj)
    if obj.is_file():
        return False
    obj.write_bytes(body)
    return True


@dataclass
class RemoteLock:
    """The lock object of an output prefix, held by this run until :meth:`release`."""

    root: ObjectPath
    info: LockInfo
    released: bool = field(default=False)

    def release(self) -> None:
        """Delete the lock object if it still names this run (a no-op the second time)."""
        if self.released:
            return
        self.released = True
        with contextlib.suppress(StorageError):
            current = _read_remote_lock(self.root)
            if current is not None and current.token == self.info.token:
                (self.root / LOCK).unlink(missing_ok=True)


def _in_use(root: ObjectPath, holder: LockInfo | None) -> ResourceError:
    who = holder.describe() if holder else "its record cannot be read"
    return ResourceError(f"{root} is being written by another run ({who}).",
                         f"Wait for it to finish (or stop it); if no run is writing it, delete {root / LOCK} and "
                         "re-run.")


def acquire_remote_lock(root: ObjectPath) -> RemoteLock:
    """Create ``<root>/preencode.lock`` naming this run, or take over the lock of a dead run on this host.

    Raises:
        ResourceError: another run holds it (or one on another host whose state cannot be known).
        StorageError: S3 cannot be reached.
    """
    started = datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")
    info = LockInfo(os.getpid(), socket.gethostname(), started, " ".join(sys.argv), uuid.uuid4().hex)
    body = (json.dumps(asdict(info)) + "\n").encode()
    if _create(root / LOCK, body):
        return RemoteLock(root, info)
    holder = _read_remote_lock(root)
    if holder is None or holder.host != socket.gethostname() or _alive(holder.pid):
        raise _in_use(root, holder)
    log.warning("Taking over the lock of %s left by a run that is no longer running (%s).", root, holder.describe())
    (root / LOCK).write_bytes(body)
    return RemoteLock(root, info)


def check_remote_run_lock(root: ObjectPath, token: str) -> str | None:
    """For a rank other than 0: a problem when the lock object does not name the run with ``token``."""
    info = _read_remote_lock(root)
    if info is None:
        return f"{root / LOCK} is missing or unreadable"
    if info.token != token:
        return f"{root / LOCK} names another run ({info.describe()})"
    return None


# ---- writing shards -------------------------------------------------------------------------------------------

def remote_shard_numbers(folder: ObjectPath) -> set[int]:
    """The numbers of the committed shards under a rank prefix."""
    objects, _ = folder.list_dir()
    return {n for n in (shard_number(info.path.name) for info in objects) if n is not None}


class UploadingShardWriter(ShardWriter):
    """A :class:`ShardWriter` whose shards are written in ``spool`` and uploaded to ``remote`` when complete.

    Args:
        spool: the rank's local spool folder (created; it holds the open shard, then the one being uploaded).
        remote: ``<output>/<rank>`` in S3.
        shard_size, shard_bytes: as for :class:`ShardWriter`.
    """

    def __init__(self, spool: Path, remote: ObjectPath, shard_size: int, shard_bytes: int | None = None) -> None:
        super().__init__(spool, shard_size, shard_bytes, taken=remote_shard_numbers(remote))
        self.remote = remote

    def commit(self) -> None:
        local = self.file.path if self.file is not None else None
        super().commit()
        if local is None:
            return
        try:
            (self.remote / local.name).upload(local)
            log.debug("Uploaded %s", self.remote / local.name)
        finally:
            local.unlink(missing_ok=True)


# ---- what is done ---------------------------------------------------------------------------------------------

def _problem(record: Record, expected: Expected) -> str | None:
    """:func:`preencode.store.resume.check_latent` on the bytes read with the shard."""
    try:
        latent = record.load_latent()
        meta = record.load_meta()
        if expected.std:
            if STD not in record.parts:
                return f"{record.location(STD)}: missing"
            record.load_std()
    except ReadError as err:
        return str(err)
    where = record.location(LATENT)
    if latent.ndim != 2:
        return f"{where}: shape {list(latent.shape)}, expected [channels, frames]"
    if expected.dtype is not None and latent.dtype.name != expected.dtype:
        return f"{where}: dtype {latent.dtype}, expected {expected.dtype}"
    if expected.channels is not None and latent.shape[0] != expected.channels:
        return f"{where}: {latent.shape[0]} channels, expected {expected.channels}"
    if expected.frames is not None and latent.shape[1] != expected.frames:
        return f"{where}: {latent.shape[1]} frames, expected {expected.frames}"
    if meta.padding_mask is not None and len(meta.padding_mask) != latent.shape[1]:
        return f"{record.location(META)}: padding_mask has {len(meta.padding_mask)} values for {latent.shape[1]} frames"
    return None


@dataclass
class _ShardResult:
    ids: set[int]
    problem: str | None


@dataclass
class ShardScan:
    """What was found in each shard read, by ``(key, size, ETag)``: a shard is read once per run."""

    seen: dict[tuple[str, int, str | None], _ShardResult] = field(default_factory=dict)

    def read(self, info: ObjectInfo, expected: Expected) -> _ShardResult:
        key = (info.path.key, info.size, info.etag)
        found = self.seen.get(key)
        if found is None:
            found = self.seen[key] = _read_shard(info, expected)
        return found


def _read_shard(info: ObjectInfo, expected: Expected) -> _ShardResult:
    ids: set[int] = set()
    problems: list[str] = []
    try:
        for record in stream_shard(info.path, size=info.size):
            if is_id(record.key) and record.is_latent():
                ids.add(int(record.key))
                problem = _problem(record, expected)
                if problem is not None:
                    problems.append(problem)
    except ReadError as err:
        return _ShardResult(ids, f"{err}; the samples it held are encoded again")
    if problems:
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        return _ShardResult(ids, f"{problems[0]}{more}; the {len(ids)} samples of {info.path.name} are encoded again")
    return _ShardResult(ids, None)


def remote_shards(root: ObjectPath) -> list[tuple[str, ObjectInfo]]:
    """The committed shards of the tree, as ``(rank, object)``, by rank then number."""
    found = []
    for info in root.list_all():
        rank, slash, name = _relative(root, info).partition("/")
        if slash and is_rank_dir(rank) and "/" not in name and is_shard(name):
            found.append((int(rank), shard_number(name) or 0, name, rank, info))
    return [(rank, info) for *_, rank, info in sorted(found, key=lambda f: f[:3])]


def scan_remote_done(root: ObjectPath, expected: Expected, cache: ShardScan) -> tuple[DoneScan, list[ObjectPath]]:
    """The samples a resume may skip, and the damaged shards to delete before their samples are encoded again."""
    scan = DoneScan()
    damaged: list[ObjectPath] = []
    for _rank, info in remote_shards(root):
        result = cache.read(info, expected)
        if result.problem is None:
            scan.done |= result.ids
        else:
            scan.damaged.append(result.problem)
            scan.damaged_ids |= result.ids
            damaged.append(info.path)
    return scan, damaged


def remove_damaged_shards(damaged: list[str], shards: list[ObjectPath]) -> None:
    for line in damaged:
        log.warning("Damaged: %s", line)
    for path in shards:
        path.unlink(missing_ok=True)


def remote_shard_summary(root: ObjectPath) -> dict[str, object]:
    """Write ``shards.txt`` when it differs from the shards there; the run summary's shard lines."""
    shards = [f"{rank}/{info.path.name}" for rank, info in remote_shards(root)]
    text = "".join(f"{path}\n" for path in shards)
    target = root / SHARD_LIST
    try:
        current: str | None = target.read_text()
    except FileNotFoundError:
        current = None
    if current != text:
        target.write_text(text)
    urls = shard_urls(Path(), shards).split("::") if shards else []  # relative to the prefix
    return {"shards": len(shards), "shard_list": str(target), "shard_urls": "::".join(f"{root}/{u}" for u in urls)}
