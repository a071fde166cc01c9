"""``preencode encode`` / ``pre_encode.py``: validate everything, plan, encode, summarise."""

from __future__ import annotations

import argparse
import json
import logging
import sys
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

from ...errors import EXIT_OK, EXIT_PARTIAL, Interrupted
from ...store.names import FAILURES
from .options import EncodeOptions
from .stopping import ALL_NON_FINITE, EARLY_BATCHES, StopFlag, stop_on_signals

if TYPE_CHECKING:
    from ...data.audio_windows import AudioWindowDataset
    from ..full_length.stream import FullLengthStream
    from .job import Job

log = logging.getLogger("preencode")


def format_summary(s: dict) -> str:
    """The summary's lines: counts, audio, shards, and the time from the process's start, split into start-up
    and encoding."""
    padding = s.get("padding_skipped")
    lines = [f"Done: {s['encoded']} encoded, {s['skipped']} skipped (already done), {s['failed']} failed, "
             f"{s['rejected']} rejected; {s['complete']}/{s['inputs']} inputs complete.",
             f"Audio: {s['audio_hours']:.4f} h ({s['audio_seconds']:.1f} s)"
             + (f", {100 * padding:.0f}% of the window samples were padding not encoded" if padding else "")
             + f". Output: {s['output']}"]
    update = s.get("update")
    if update:
        lines.append(f"Update: {update['added']} new input(s), {update['changed']} changed, "
                     f"{update['vanished']} gone and kept, {update['pruned']} gone and pruned.")
        for what, key in (("gone, latent kept (--prune removes it)", "vanished"), ("pruned", "pruned")):
            for gone in s.get(key, [])[:10]:
                lines.append(f"  {what}: {gone['id']:013d} {gone['path']}")
    if s.get("shards"):
        lines.append(f"Shards: {s['shards']}, listed in {s['shard_list']}; WebDataset URL: {s['shard_urls']}")
    if s["encoded"]:
        lines.append(f"Time: {s['wall_seconds']:.1f} s = start-up {s['startup_seconds']:.1f} s + encoding "
                     f"{s['encoding_seconds']:.1f} s ({s['audio_seconds_per_second']:.1f} audio s/s while encoding, "
                     f"{s['realtime_factor']:.2f}x realtime end to end).")
    else:
        lines.append(f"Time: {s['wall_seconds']:.1f} s, nothing encoded.")
    return "\n".join(lines)


def run_encode(args: argparse.Namespace) -> int:
    """``preencode encode`` / ``pre_encode.py``."""
    return encode(EncodeOptions.from_args(args))


def encode(opts: EncodeOptions) -> int:
    """Encode a dataset; returns the exit code: 0, or 3 when some inputs failed (the rest encoded).

    Raises:
        UserError: a flag, config, checkpoint or output folder problem, before any model or data work.
        ResourceError: the environment failed (disk full, permissions, unreachable storage, output in use).
        Interrupted: SIGINT or SIGTERM stopped the run (what was encoded is kept).
    """
    from .output import storage_error

    with stop_on_signals() as stop:
        try:
            summary, job = _encode(opts, stop)
        except OSError as err:  # what is left unhandled is the environment's: disk, permissions
            # an S3 output's local files are its spool folders
            local = Path(tempfile.gettempdir()) if opts.output_path.startswith("s3://") else Path(opts.output_path)
            raise storage_error(err, local) from err
    if not summary:  # ranks other than 0
        return EXIT_OK
    print(format_summary(summary), file=sys.stderr)
    if summary.get("damaged"):
        print(f"{len(summary['damaged'])} damaged latent(s) or shard(s) found when resuming were encoded again "
              "(listed above).", file=sys.stderr)
    if opts.summary_json:
        Path(opts.summary_json).write_text(json.dumps(summary, indent=2), encoding="utf-8")
    stopped = summary.get("stopped")
    if stopped == ALL_NON_FINITE:
        left = summary["inputs"] - summary["complete"] - summary["failed"] - summary["rejected"]
        print(f"Stopped early: every window of the first {EARLY_BATCHES} batches encoded to NaN or Inf, so the "
              f"checkpoint {opts.ckpt_path} most likely holds NaN/Inf weights (or the model overflows in float16). "
              f"Nothing non-finite was written (see {job.where / FAILURES}); {left} input(s) were not tried. "
              "With a fixed checkpoint, re-run with --overwrite.", file=sys.stderr)
        return EXIT_PARTIAL
    if stopped:
        raise Interrupted(f"interrupted: {summary['complete']} of {summary['inputs']} encoded", stop.exit_code)
    if summary["failed"]:
        print(f"{summary['failed']} input(s) failed; see {job.where / FAILURES}", file=sys.stderr)
        return EXIT_PARTIAL
    return EXIT_OK


def _encode(opts: EncodeOptions, stop: StopFlag) -> tuple[dict, Job]:
    from ...store.lock import refuse_if_locked
    from .launch import launched_as_rank_zero

    remote = opts.output_path.startswith("s3://")
    if launched_as_rank_zero() and not remote:  # a second run is refused at once, before torch is even imported
        refuse_if_locked(Path(opts.output_path))
    from .job import check_lightning, validate
    from .output import claim_output
    from .remote import claim_remote_output

    job = validate(opts)  # configs, flags, checkpoint, output folder: before any model or data work
    claim = claim_remote_output if job.remote is not None else claim_output
    with claim(job) as job:  # the lock and details.json, before any model or data work too
        from ...data.plan import build_plan
        from .pending import finished_summary, pending_count, scan_output
        from .update import Assignment, assign

        opts = job.options
        plan = None
        assignment: Assignment | None = None
        scan = scan_output(job)  # read once: by the nothing-left check and the speed choices
        if job.resuming:
            # Same settings and checkpoint as the output's: scan first, so that an output with nothing left
            # to encode costs neither the model nor Lightning.
            plan = build_plan(job.dataset_config)
            assignment = assign(job, plan)
            finished = finished_summary(job, plan, assignment, scan)
            if finished is not None:
                return finished, job
        check_lightning(opts)

        from ...data.audio_windows import AudioWindowDataset
        from ...models.checkpoint import load_autoencoder
        from .run import run
        from .speed import batching_for

        # The checkpoint is checked (strictly) before the dataset is scanned, which can take long.
        model = load_autoencoder(job.model_config, opts.ckpt_path, half=opts.model_half, device="cpu")
        if plan is None or assignment is None:
            plan = build_plan(job.dataset_config)
            assignment = assign(job, plan)
        cfg = job.model_config
        windows = AudioWindowDataset(
            plan.items, cfg.sample_rate, cfg.in_channels, opts.sample_size, random_crop=job.dataset_config.random_crop,
            seed=opts.seed, drop_silent=opts.drop_silence or job.dataset_config.drop_silent,
            augment_phase=opts.phase_flip or job.dataset_config.augment_phase)
        dataset: AudioWindowDataset | FullLengthStream = windows
        if opts.full_length:
            from ..full_length.chunks import chunk_margin
            from ..full_length.stream import FullLengthStream

            dataset = FullLengthStream(windows, opts.sample_size, chunk_margin(cfg), cfg.downsampling_ratio,
                                       opts.batch_size)
        return run(job, plan, dataset, model, assignment, make_batches=batching_for(job, plan), stop=stop,
                   windows=None if opts.full_length else pending_count(plan, scan)), job
