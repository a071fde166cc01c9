"""Encoding into S3 (``--output-path s3://bucket/prefix``): where the engine's steps differ from a local folder.

Every process encodes into its own local spool folder (``job.output``, under ``$TMPDIR``), so the engine's
writers and callbacks see a folder as usual; each complete shard is uploaded by the writer thread and leaves
the spool (:class:`~preencode.store.s3_output.UploadingShardWriter`). Global rank 0 claims the prefix
(ownership, the lock object, ``details.json``), writes the manifest, finds what is done by listing and reading
the committed shards, and at the end writes the logs and ``shards.txt``; the other ranks write only their
``<rank>/`` shards. Nodes need no shared filesystem.
"""

from __future__ import annotations

import contextlib
import logging
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING

from ...data.input_roots import InputRoot
from ...errors import UserError
from ...store.details import check_compatible, write_details
from ...store.objects import ObjectPath
from ...store.ownership import Ownership
from ...store.resume import DoneScan, Expected
from ...store.s3_output import (
    ShardScan,
    UploadingShardWriter,
    acquire_remote_lock,
    check_remote_ownership,
    check_remote_run_lock,
    has_shards,
    remove_damaged_shards,
    remove_remote_output,
    remove_start_files,
    scan_remote_done,
)
from .launch import launched_as_rank_zero

if TYPE_CHECKING:
    from .job import Job

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RemoteOutput:
    """The S3 prefix of an output, and the shards read so far by this process."""

    root: ObjectPath
    scan: ShardScan = field(default_factory=ShardScan, compare=False)


def check_remote_location(given: str, output_format: str, roots: list[InputRoot]) -> RemoteOutput:
    """An ``s3://`` ``--output-path``: shards only, not inside or above an input prefix.

    Raises:
        UserError: loose files asked for, no bucket, or the prefix overlaps an input.
    """
    if output_format != "wds":
        raise UserError(f"--output-path {given} is in S3, which needs --output-format wds: loose .npy files cost "
                        "one request per file to write, list and read.", "Add --output-format wds.")
    root = ObjectPath(given)
    for item in roots:
        if item.s3 is None:
            continue
        mine, theirs = str(root) + "/", item.s3.rstrip("/") + "/"
        if mine.startswith(theirs) or theirs.startswith(mine):
            raise UserError(f"--output-path {given} overlaps the input prefix of {item.where} ({item.given}); inputs "
                            "are listed recursively, so the next run would read its own output.",
                            "Choose a prefix apart from the inputs.")
    return RemoteOutput(root)


@contextlib.contextmanager
def claim_remote_output(job: Job) -> Iterator[Job]:
    """:func:`~preencode.encode.engine.output.claim_output` for a prefix in S3; yields the job with its spool
    folder as ``output`` (removed at the end), ``resuming`` and (rank 0) ``run_token`` set.

    Raises:
        UserError: the prefix holds objects that are not ours, or a run with other settings.
        ResourceError: another run holds the lock object.
        StorageError: S3 cannot be reached.
    """
    if job.remote is None:
        raise ValueError("claim_remote_output needs a job with an S3 output")
    root = job.remote.root
    spool = Path(tempfile.mkdtemp(prefix="preencode-spool-"))
    try:
        ownership = check_remote_ownership(root)
        if not launched_as_rank_zero():
            resuming = False if job.options.overwrite else check_compatible(root, job.details)
            yield replace(job, output=spool, resuming=resuming)
            return
        lock = acquire_remote_lock(root)
        finished = False
        try:
            ownership = check_remote_ownership(root)  # again, now that the lock is ours
            resuming = False
            if job.options.overwrite:
                if ownership is Ownership.OURS:
                    remove_remote_output(root)
            else:
                resuming = check_compatible(root, job.details)
            write_details(root, job.details)
            yield replace(job, output=spool, resuming=resuming, run_token=lock.info.token)
            finished = True
        finally:
            if not finished and ownership is Ownership.NEW and not has_shards(root):
                remove_start_files(root)  # nothing was encoded: take back what this run wrote
            lock.release()
    finally:
        shutil.rmtree(spool, ignore_errors=True)  # the spool is this process's own temporary folder


def check_lock(job: Job, token: str) -> str | None:
    """For a rank other than 0: a problem when the lock object does not name rank 0's run."""
    return check_remote_run_lock(job.remote.root, token) if job.remote is not None else None


def remote_done(job: Job) -> tuple[DoneScan, list[ObjectPath]]:
    """The committed samples of the job's prefix, each shard read once per process, and the damaged shards."""
    if job.remote is None:
        raise ValueError("remote_done needs a job with an S3 output")
    return scan_remote_done(job.remote.root, Expected.from_details(job.details), job.remote.scan)


def prepare_remote(job: Job) -> DoneScan:
    """Rank 0 before encoding: what is done; damaged shards deleted (their samples are encoded again)."""
    scan, damaged = remote_done(job)
    remove_damaged_shards(scan.damaged, damaged)
    return scan


def open_remote_writer(job: Job, rank_dir: Path) -> UploadingShardWriter:
    """The writer of one rank: shards in the spool's ``<rank>`` folder, uploaded to ``<prefix>/<rank>/``."""
    if job.remote is None:
        raise ValueError("open_remote_writer needs a job with an S3 output")
    opts = job.options
    return UploadingShardWriter(rank_dir, job.remote.root / rank_dir.name, opts.shard_size, opts.shard_bytes)
