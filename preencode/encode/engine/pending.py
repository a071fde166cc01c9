"""What is left to encode: the output scanned once (each copy judged by the manifest), and the summary of a
resumed run with nothing left, found before the model is built or Lightning is imported.

Nothing here writes but a stale shard list: an output whose inputs are all done is only read (its leftovers
and logs are tidied by the next run that encodes something).
"""

from __future__ import annotations

import logging
import os
import time
from typing import Any

from ... import clock
from ...store.logs import manifest_line
from ...store.manifest import read_entries
from ...store.resume import DoneScan, Expected, scan_done
from ...store.s3_output import remote_shard_summary
from ...store.shards import shard_summary
from .job import Job
from .progress import run_times
from .update import Assignment, unchanged

log = logging.getLogger(__name__)


def manifest_lines(items: list[Any]) -> list[str]:
    return [manifest_line(it.id, it.path, it.input_fingerprint()) for it in items]


def _global_rank() -> int:
    """This process's rank as the launcher set it (torchrun, SLURM), before any process group exists."""
    for name in ("RANK", "LOCAL_RANK", "SLURM_PROCID", "JSM_NAMESPACE_RANK"):  # the order Lightning reads them
        value = os.environ.get(name, "")
        if value.isdigit():
            return int(value)
    return 0


def scan_output(job: Job) -> DoneScan | None:
    """What a resume may skip in the job's output, each sample checked cheaply and current by its manifest (None
    for a new output).

    Raises:
        UserError: the manifest is damaged.
    """
    if not job.resuming or job.options.overwrite:
        return None
    if job.remote is not None:  # (--update is refused for an S3 output: its copies are all current)
        from .remote import remote_done

        return remote_done(job)[0]
    entries = read_entries(job.output)
    return scan_done(job.output, Expected.from_details(job.details),
                     None if entries is None else {e.id: e for e in entries})


def pending_count(plan: Any, scan: DoneScan | None) -> int:
    """How many inputs of ``plan`` are not encoded (sound) in the output yet (all of them for a new output)."""
    if scan is None:
        return len(plan.items)
    return sum(1 for item in plan.items if item.index not in scan.done)


def finished_summary(job: Job, plan: Any, assignment: Assignment, scan: DoneScan | None) -> dict[str, Any] | None:
    """The run summary when every input of ``plan`` is already encoded in the job's output, else None.

    Only a resumed job (same settings as the output's) can be finished; its items have their ids
    (:func:`~preencode.encode.engine.update.assign`). An update that changes the manifest, or an output holding
    superseded copies, is never finished here: the run writes the manifest and removes them.
    """
    if not job.resuming or job.options.overwrite or plan.failures:  # scan failures are logged by a run
        return None
    if not unchanged(read_entries(job.where), assignment.entries):
        return None
    if scan is None or scan.damaged or scan.superseded or pending_count(plan, scan):
        return None
    log.info("Nothing left to encode: all %d inputs of %s are done.", len(plan.items), job.where)
    if _global_rank() != 0:
        return {}
    summary: dict[str, Any] = {
        "output": str(job.where), "inputs": len(plan.items), "encoded": 0, "skipped": len(plan.items),
        "failed": 0, "rejected": 0, "complete": len(plan.items), "audio_seconds": 0.0,
        "audio_hours": 0.0, "damaged": [],
    }
    if job.options.output_format == "wds":
        # rewrites the shard list only if a kill left it stale
        summary.update(remote_shard_summary(job.remote.root) if job.remote is not None else shard_summary(job.output))
    summary.update(run_times(clock.command_start(), None, None, time.monotonic(), 0.0))
    return summary
