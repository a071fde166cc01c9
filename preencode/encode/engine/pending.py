"""What is left to encode: this run's inputs checked against the output's manifest, and the summary of a
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
from ...errors import UserError
from ...store.logs import manifest_line, read_manifest
from ...store.objects import StorePath
from ...store.resume import DoneScan, Expected, scan_done
from ...store.s3_output import remote_shard_summary
from ...store.shards import shard_summary
from .job import Job
from .progress import run_times

log = logging.getLogger(__name__)


def manifest_lines(items: list[Any]) -> list[str]:
    return [manifest_line(it.id, it.path, it.input_fingerprint()) for it in items]


def check_manifest(output: StorePath, lines: list[str]) -> None:
    old = read_manifest(output)
    if old is not None and old != lines:
        changed = sum(1 for a, b in zip(old, lines, strict=False) if a != b) + abs(len(old) - len(lines))
        raise UserError(f"The inputs changed since {output} was started ({len(old)} inputs then, {len(lines)} now, "
                        f"{changed} differ); ids are positions in the sorted input list and would no longer match.",
                        "Encode the new inputs into another --output-path, or pass --overwrite to start over.")


def _global_rank() -> int:
    """This process's rank as the launcher set it (torchrun, SLURM), before any process group exists."""
    for name in ("RANK", "LOCAL_RANK", "SLURM_PROCID", "JSM_NAMESPACE_RANK"):  # the order Lightning reads them
        value = os.environ.get(name, "")
        if value.isdigit():
            return int(value)
    return 0


def scan_output(job: Job) -> DoneScan | None:
    """What a resume may skip in the job's output, each sample checked cheaply (None for a new output)."""
    if not job.resuming or job.options.overwrite:
        return None
    if job.remote is not None:
        from .remote import remote_done

        return remote_done(job)[0]
    return scan_done(job.output, Expected.from_details(job.details))


def pending_count(plan: Any, scan: DoneScan | None) -> int:
    """How many inputs of ``plan`` are not encoded (sound) in the output yet (all of them for a new output)."""
    if scan is None:
        return len(plan.items)
    return sum(1 for item in plan.items if item.index not in scan.done)


def finished_summary(job: Job, plan: Any, scan: DoneScan | None) -> dict[str, Any] | None:
    """The run summary when every input of ``plan`` is already encoded in the job's output, else None.

    Only a resumed job (same settings as the output's) can be finished; its inputs must be those of the
    output's manifest.

    Raises:
        UserError: the inputs changed since the output was started.
    """
    if not job.resuming or job.options.overwrite or plan.failures:  # scan failures are logged by a run
        return None
    check_manifest(job.where, [line.rstrip("\n") for line in manifest_lines(plan.items)])
    if scan is None or scan.damaged or pending_count(plan, scan):
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
