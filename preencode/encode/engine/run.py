"""Running an encode job with Lightning: every input window encoded exactly once across ranks and workers."""

from __future__ import annotations

import hashlib
import logging
import time
from pathlib import Path
from typing import Any

import lightning.pytorch as L
import torch

from ... import clock
from ...errors import DatasetError, ResourceError, UserError
from ...models.autoencoder import AudioAutoencoder
from ...store.details import record_run_end, record_run_start
from ...store.layout import clean_leftovers, done_indices
from ...store.lock import check_run_lock
from ...store.logs import read_jsonl, write_jsonl
from ...store.manifest import read_entries, write_entries
from ...store.names import FAILURES, REJECTED
from ...store.objects import StorePath
from ...store.resume import Expected, remove_damaged, scan_done
from ...store.s3_output import remote_shard_summary
from ...store.shards import shard_summary
from ...store.supersede import drop_superseded
from ...store.writer import SampleWriter, open_writer
from .job import Job, parse_devices
from .loader import EncodeDataModule, FullLengthDataModule
from .module import EncodeModule, EncodeSettings
from .pending import manifest_lines
from .progress import run_times
from .remote import check_lock as check_remote_lock
from .remote import open_remote_writer, prepare_remote, remote_done
from .sink import RankStats, WriteCallback
from .speed import prepare_model
from .stopping import EncodingStopped, StopFlag
from .update import Assignment, unchanged

log = logging.getLogger(__name__)


def _broadcast(obj: Any) -> Any:
    """Rank 0's ``obj`` on every rank (``obj`` itself where there is no process group)."""
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        box = [obj]
        torch.distributed.broadcast_object_list(box, src=0)
        return box[0]
    return obj


def _gather(obj: Any) -> list[Any]:
    """All ranks' ``obj`` (a list of one where there is no process group)."""
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        out: list[Any] = [None] * torch.distributed.get_world_size()
        torch.distributed.all_gather_object(out, obj)
        return out
    return [obj]


class _Preparer:
    """Runs in every rank once the process group exists: the ranks check that they read the same inputs and
    write for the same run; rank 0 cleans the folder, writes the manifest when it changed (before anything is
    encoded: an update's ids are then fixed), removes superseded copies that may go, and finds what is done (each
    done sample checked, and current by the manifest), then sends the pending list to all."""

    def __init__(self, job: Job, manifest: list[str], ids: list[int], assignment: Assignment) -> None:
        self.job, self.manifest, self.ids, self.assignment = job, manifest, ids, assignment
        self.skipped = 0
        self.damaged: list[str] = []
        self.superseded: set[int] = set()

    def __call__(self, trainer: L.Trainer, datamodule: EncodeDataModule) -> None:
        out = self.job.output
        rank0 = trainer.global_rank == 0
        # Every rank scanned the inputs itself; ids only mean the same input everywhere if the scans agree.
        digest = hashlib.sha256("\n".join(self.manifest).encode("utf-8")).hexdigest()
        answers = _gather((digest, self.job.run_token if rank0 else None))
        if len({d for d, _ in answers}) > 1:
            raise DatasetError("The ranks found different inputs (a file changed, appeared or vanished while "
                               "they started, or the dataset paths differ between nodes).",
                               "Make the inputs identical on every node and re-run.")
        token = answers[0][1] or ""
        problem = None
        if not rank0:
            problem = check_remote_lock(self.job, token) if self.job.remote else check_run_lock(out, token)
        problems = [p for p in _gather(problem) if p]
        if problems:
            raise ResourceError(f"{problems[0]}.", "Start one run per output folder, on a folder every rank shares.")
        found: tuple[set[int], list[str]] | None = None
        if rank0:
            where = self.job.where
            record_run_start(where, self.job.run, self.job.options.to_json())
            if self.job.remote is None:
                clean_leftovers(out)
            entries = self.assignment.entries
            stored = read_entries(where)
            if stored is None or not unchanged(stored, entries):
                write_entries(where, entries)  # before anything is encoded: an update's ids are fixed from here on
            if self.job.remote is not None:
                scan = prepare_remote(self.job)
            else:
                scan = scan_done(out, Expected.from_details(self.job.details), {e.id: e for e in entries})
                remove_damaged(scan)
                if scan.superseded:
                    self.superseded = scan.superseded
                    drop_superseded(out, entries, scan.superseded)
            found = (scan.done, scan.damaged)
        done, self.damaged = _broadcast(found)
        datamodule.pending = [position for position, id_ in enumerate(self.ids) if id_ not in done]
        self.skipped = len(self.ids) - len(datamodule.pending)


def run(job: Job, plan: Any, dataset: Any, model: AudioAutoencoder, assignment: Assignment,
        make_batches: Any = None, stop: StopFlag | None = None, windows: int | None = None) -> dict[str, Any]:
    """Encode ``plan`` (its items carrying their ids, see :func:`~preencode.encode.engine.update.assign`) with
    ``dataset`` and the loaded ``model``; returns the run summary (complete on global rank 0). ``stop`` ends the
    encoding loop at a batch boundary when a signal sets it; the summary then says ``stopped`` (the signal's
    name, or ``non-finite`` when the first batches gave only NaN/Inf). ``windows``: about how many windows are
    left to encode (for the speed choices; None: unknown)."""
    opts = job.options
    stop = stop or StopFlag()
    started = clock.command_start()
    manifest = [line.rstrip("\n") for line in manifest_lines(plan.items)]
    model, pre_bottleneck_fn = prepare_model(job, model, windows)
    settings = EncodeSettings(posterior=opts.posterior, seed=opts.seed, is_discrete=opts.is_discrete,
                              store_std=opts.store_std, out_dtype=job.out_dtype)
    module = EncodeModule(model, settings, pre_bottleneck_fn)
    preparer = _Preparer(job, manifest, [item.index for item in plan.items], assignment)
    module_cls = FullLengthDataModule if opts.full_length else EncodeDataModule
    datamodule = module_cls(dataset, [], opts.batch_size, opts.num_workers, opts.shuffle, opts.seed,
                            make_batches=make_batches, on_setup=lambda t: preparer(t, datamodule))

    def make_writer(rank_dir: Path) -> SampleWriter:
        if job.remote is not None:
            return open_remote_writer(job, rank_dir)
        return open_writer(opts.output_format, rank_dir, shard_size=opts.shard_size, shard_bytes=opts.shard_bytes)

    writer = WriteCallback(job.output, job.model_config.sample_rate, opts.progress, make_writer, stop)
    use_half = opts.model_half and torch.cuda.is_available() and opts.accelerator in ("auto", "gpu", "cuda")
    trainer = L.Trainer(
        accelerator=opts.accelerator, devices=parse_devices(opts.devices), num_nodes=opts.num_nodes,
        strategy=opts.strategy, precision="16-true" if use_half else "32-true",
        limit_predict_batches=opts.limit_batches, logger=False, enable_checkpointing=False,
        enable_progress_bar=False, enable_model_summary=False, use_distributed_sampler=False,
        callbacks=[writer], inference_mode=True,
    )
    predict_started = time.monotonic()
    stopped: str | None = None
    stop.graceful = True
    try:
        trainer.predict(module, datamodule=datamodule, return_predictions=False)
    except EncodingStopped as request:
        if request.write_error is not None:
            raise request.write_error from request
        stopped = request.reason
    predict_seconds = time.monotonic() - predict_started
    stats: list[RankStats] = _gather(writer.stats)
    summary: dict[str, Any] = {}
    if trainer.global_rank == 0:
        summary = _finish(job, plan, preparer, stats)
        summary.update(run_times(started, writer.encoding_started, writer.first_batch_at, time.monotonic(),
                                 summary["audio_seconds"]))
        summary["predict_seconds"] = predict_seconds
        summary["damaged"] = preparer.damaged
        if stopped:
            summary["stopped"] = stopped
        if pre_bottleneck_fn is not None:
            summary["padding_skipped"] = pre_bottleneck_fn.skipped_fraction
    trainer.strategy.barrier("preencode-finished")
    return summary


def _finish(job: Job, plan: Any, preparer: _Preparer, stats: list[RankStats]) -> dict[str, Any]:
    out = job.where
    assignment = preparer.assignment
    present = {e.id for e in assignment.entries if e.present}
    if job.remote is not None:
        done = remote_done(job)[0].done  # reads only the shards this run wrote
    else:
        clean_leftovers(job.output)
        # The old copies of the inputs encoded again by this run can go now that the new ones are committed.
        suspects = preparer.superseded | set(assignment.changed)
        kept = drop_superseded(job.output, assignment.entries, suspects).kept if suspects else set()
        done = done_indices(job.output) - kept
    attempted = {i for s in stats for i in s.attempted}
    failures = [f for s in stats for f in s.failures] + [f.to_dict() for f in plan.failures]
    failures = _merge_log(out / FAILURES, failures, done, attempted)
    rejected = _merge_log(out / REJECTED, [r for s in stats for r in s.rejected], done, attempted)
    seconds = sum(s.audio_seconds for s in stats)
    summary: dict[str, Any] = {
        "output": str(out), "inputs": len(plan.items), "encoded": sum(s.encoded for s in stats),
        "skipped": preparer.skipped, "failed": len(failures), "rejected": len(rejected),
        "complete": len(done & present), "audio_seconds": seconds, "audio_hours": seconds / 3600,
    }
    counts = {k: summary[k] for k in ("encoded", "skipped", "failed", "rejected")}
    if job.options.update:
        summary["update"] = assignment.counts()
        summary["vanished"] = [{"id": e.id, "path": e.path} for e in assignment.vanished]
        summary["pruned"] = [{"id": e.id, "path": e.path} for e in assignment.pruned]
        counts.update(assignment.counts())
    if job.remote is not None:
        summary.update(remote_shard_summary(job.remote.root))
    elif job.options.output_format == "wds":
        summary.update(shard_summary(job.output))
    record_run_end(out, job.run, counts)
    return summary


def _merge_log(path: StorePath, new: list[dict], done: set[int], attempted: set[int]) -> list[dict]:
    """Rewrite a failure/rejection log: this run's records, plus earlier records of inputs that are still
    not done and were not retried in this run (e.g. beyond ``--limit-batches``). Scan records (no index)
    are redone by every run."""
    problems: list[str] = []
    old = read_jsonl(path, problems)
    if problems:
        raise UserError(f"{problems[0]}; the log of an earlier run is damaged.",
                        f"Fix or delete {path} and re-run the same command.")
    records = new + [r for r in old if r.get("index") is not None and r["index"] not in done
                     and r["index"] not in attempted]
    records.sort(key=lambda r: (r.get("index") is None, r.get("index") or 0, r.get("path", "")))
    if records or path.exists() or path.name == FAILURES:
        write_jsonl(path, records)
    return records
