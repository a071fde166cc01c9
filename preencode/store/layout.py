"""The output tree as the encode engine sees it: rank folders, what is done, cleaning leftovers.

``<out>/<rank>/<id>.npy`` + ``.json`` (the .npy renamed into place last, as the commit marker) or
``<out>/<rank>/shard-<first id>.tar`` shards holding the same members (renamed into place when complete),
and the files at the root (:data:`preencode.store.names.ROOT_FILES`). Whatever else a user puts in the
folder is never deleted: removal goes by the names of :mod:`preencode.store.names`.
"""

from __future__ import annotations

import contextlib
import logging
import os
from pathlib import Path

from ..errors import UserError
from .names import (
    DETAILS,
    LOCK,
    SAMPLE_SUFFIXES,
    is_id,
    is_own_rank_file,
    is_own_root_file,
    is_own_temporary,
    is_rank_dir,
    is_shard,
)
from .reader import ReadError, list_folder, read_shard

log = logging.getLogger(__name__)


def rank_dirs(output: Path) -> list[Path]:
    if not output.exists():
        return []
    return sorted((p for p in output.iterdir() if p.is_dir() and is_rank_dir(p.name)), key=lambda p: int(p.name))


def done_indices(output: Path) -> set[int]:
    """Inputs whose ``<id>.npy`` (the commit marker) and ``<id>.json`` both exist, loose or inside a
    committed shard.

    Raises:
        UserError: a committed shard cannot be read (it was damaged after it was committed).
    """
    done: set[int] = set()
    for folder in rank_dirs(output):
        listing = list_folder(folder, folder.name)
        done.update(int(r.key) for r in listing.records if is_id(r.key) and r.is_latent())
        for path in listing.shards:
            if is_shard(path.name):
                done |= shard_ids(path)
    return done


def shard_ids(path: Path) -> set[int]:
    """Ids of the samples complete in a committed shard (both ``.npy`` and ``.json`` members).

    Raises:
        UserError: the shard cannot be read (it was damaged after it was committed).
    """
    try:
        records = read_shard(path)
    except ReadError as err:
        raise UserError(f"The committed shard {path} cannot be read ({err}).",
                        "Delete it and re-run the same command: its samples are encoded again.") from err
    return {int(r.key) for r in records if is_id(r.key) and r.is_latent()}


def _unlink_own(path: Path) -> bool:
    """Remove a file (never a folder); True when it was there."""
    if path.is_dir() and not path.is_symlink():
        return False
    try:
        path.unlink()
    except FileNotFoundError:
        return False
    return True


def clean_leftovers(output: Path) -> int:
    """Remove a killed run's leftovers: our temporaries, and metadata or sidecars whose latent is missing.

    Only files named as preencode names them are touched (:func:`~preencode.store.names.is_own_rank_file`,
    :func:`~preencode.store.names.is_own_root_file`); other files and every folder stay. The caller
    holds the output's lock, so no other run is writing these temporaries.
    """
    removed = 0
    for folder in rank_dirs(output):
        listing = list_folder(folder, folder.name)
        leftovers = [p for p in listing.temporaries if is_own_rank_file(p.name)]
        for record in listing.records:
            if not is_id(record.key) or record.is_latent():
                continue
            # A sample whose commit did not finish: metadata or sidecar without the .npy (or the reverse).
            leftovers.extend(Path(record.parts[s].path) for s in SAMPLE_SUFFIXES if s in record.parts)
        removed += sum(_unlink_own(path) for path in leftovers)
    for name in os.listdir(output) if output.exists() else []:
        if is_own_temporary(name) and is_own_root_file(name):
            removed += _unlink_own(output / name)
    if removed:
        log.info("Removed %d leftover file(s) of an interrupted run in %s.", removed, output)
    return removed


def remove_output(output: Path) -> None:
    """Delete what earlier runs wrote (``--overwrite``): only files named as preencode names them, in
    rank folders and at the root; a rank folder goes only when nothing else is left in it. The details
    file goes last, so that an interrupted removal still says what the tree is."""
    for folder in rank_dirs(output):
        for entry in os.scandir(folder):
            if is_own_rank_file(entry.name):
                _unlink_own(Path(entry.path))
        with contextlib.suppress(OSError):  # not empty: files of someone else stay
            folder.rmdir()
    for name in os.listdir(output):
        if name not in (DETAILS, LOCK) and is_own_root_file(name):
            _unlink_own(output / name)
    (output / DETAILS).unlink(missing_ok=True)
