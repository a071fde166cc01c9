"""Claiming the output folder, before any model or data work: where it may be, whose it is, one run at a time.

Global rank 0 (:func:`~preencode.encode.engine.launch.launched_as_rank_zero`) checks the location,
refuses a folder that holds files preencode did not write, takes the output's lock for the whole
run, checks the settings of an existing output (or removes our own files with ``--overwrite``) and
writes ``details.json`` first, atomically. The other ranks only read: they check the same things and
later (once the process group exists) that the lock names their run.
"""

from __future__ import annotations

import contextlib
import errno
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

from ...data.input_roots import InputRoot
from ...errors import ResourceError, UserError
from ...store.details import RUNS, check_compatible, next_run, read_details, write_details
from ...store.layout import rank_dirs, remove_output
from ...store.lock import acquire_output_lock
from ...store.names import ROOT_FILES
from ...store.ownership import Ownership, check_ownership
from .launch import launched_as_rank_zero

if TYPE_CHECKING:
    from .job import Job  # job.py imports check_output_location from here


def _refuse(output: Path, given: str, why: str) -> UserError:
    return UserError(f"--output-path {given or repr(given)} ({output}) is {why}.", "Choose a new folder for the "
                     "output, e.g. beside the dataset folders.")


def check_output_location(given: str, roots: list[InputRoot]) -> Path:
    """Refuse output folders that would put other files at risk; returns the resolved folder.

    Refused: ``/``, the home folder, the current folder or any folder above them (a mistyped or unset
    variable gives ``.`` or ``~``), an input folder or one above or inside it (inputs are scanned
    recursively: latents inside an input folder would be mixed with the inputs of the next run), a
    path under a file, an existing file. Symlinks and relative paths are resolved before comparing.

    Raises:
        UserError: naming the path and the rule.
    """
    output = Path(given).expanduser().resolve()
    guarded = {Path("/").resolve(): "the filesystem root", Path.cwd().resolve(): "the current folder"}
    with contextlib.suppress(RuntimeError):  # no home folder known
        guarded[Path.home().resolve()] = "your home folder"
    for folder, name in guarded.items():
        if output == folder or output in folder.parents:
            raise _refuse(output, given, f"{name}" if output == folder else f"above {name} ({folder})")
    for root in roots:
        if root.local is None:
            continue
        if output == root.local or output in root.local.parents:
            raise _refuse(output, given, f"{'the' if output == root.local else 'above the'} input folder of "
                          f"{root.where} ({root.given}); inputs are scanned recursively")
        if root.local in output.parents:
            raise _refuse(output, given, f"inside the input folder of {root.where} ({root.given}); inputs are "
                          "scanned recursively, so the next run would read its own output")
    existing = next(p for p in (output, *output.parents) if p.exists())
    if not existing.is_dir():
        where = "is a file" if existing == output else f"is inside {existing}, which is a file"
        raise UserError(f"--output-path {given} {where}.", "Choose a folder path for the output.")
    return output


def storage_error(err: OSError, output: Path) -> ResourceError:
    """A one-line :class:`ResourceError` for an OS error met while running (disk full, permissions...)."""
    where = Path(err.filename) if err.filename else output
    resolved, out = where.resolve(), output.resolve()
    in_output = resolved == out or out in resolved.parents
    code = err.errno
    if code in (errno.ENOSPC, errno.EDQUOT):
        what = "No space left" if code == errno.ENOSPC else "Disk quota exceeded"
        return ResourceError(f"{what} on the device of {output}" + (f" (writing {where})." if err.filename else "."),
                             "Free some space (or raise the quota) and re-run the same command: what was "
                             "written is kept.")
    fix = "Fix the problem and re-run the same command."
    if code in (errno.EACCES, errno.EPERM):
        return ResourceError(f"Permission denied: {where}.", "Choose an --output-path you can write to, or fix its "
                             "permissions." if in_output else "Fix the permissions of that file.")
    if code == errno.EROFS:
        return ResourceError(f"{where} is on a read-only filesystem.",
                             "Choose a writable --output-path." if in_output else fix)
    return ResourceError(f"{err.strerror or err}: {where}.", fix)


@contextlib.contextmanager
def claim_output(job: Job) -> Iterator[Job]:
    """Hold ``job.output`` for the run; yields the job with ``resuming``, ``run_token`` and ``run`` set.

    On rank 0: create the folder, take its lock (released on any exit), check the settings of an
    existing output (``--overwrite``: remove our files instead), write ``details.json`` for a new output. A run that
    fails before writing any sample leaves a folder it created as it found it.

    Raises:
        UserError: the folder is not ours, or holds a run with other settings.
        ResourceError: another run holds the lock; the folder cannot be created or written.
    """
    output = job.output
    ownership = check_ownership(output)
    if not launched_as_rank_zero():
        resuming = False if job.options.overwrite else check_compatible(output, job.details)
        yield replace(job, resuming=resuming)
        return
    existed = output.exists()
    try:
        output.mkdir(parents=True, exist_ok=True)
        lock = acquire_output_lock(output)
    except OSError as err:
        raise storage_error(err, output) from err
    finished = False
    try:
        ownership = check_ownership(output)  # again, now that no other run can change it
        resuming = False
        if job.options.overwrite:
            if ownership is Ownership.OURS:
                remove_output(output)
        else:
            resuming = check_compatible(output, job.details)
        if resuming:  # a resumed output keeps the details of the run that made it (runs are listed as they start)
            run = next_run(read_details(output).data)
        else:
            run = 1
            write_details(output, {**job.details, RUNS: []})
        yield replace(job, resuming=resuming, run_token=lock.info.token, run=run)
        finished = True
    finally:
        if not finished and ownership is Ownership.NEW and not rank_dirs(output):
            for name in ROOT_FILES:  # nothing was encoded: take back what this run wrote
                (output / name).unlink(missing_ok=True)
        lock.release()
        if not finished and not existed and ownership is Ownership.NEW:
            with contextlib.suppress(OSError):
                output.rmdir()

