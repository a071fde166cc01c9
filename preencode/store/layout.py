"""The output tree as the encode engine sees it: rank folders, what is done, cleaning leftovers.

``<out>/<rank>/<id>.npy`` + ``.json`` (the .npy renamed into place last, as the commit marker) or
``<out>/<rank>/shard-<first id>.tar`` shards holding the same members (renamed into place when complete),
and the files at the root (:data:`preencode.store.names.ROOT_FILES`).
"""

from __future__ import annotations

import logging
import os
import shutil
from pathlib import Path

from ..errors import UserError
from .names import (
    ROOT_FILES,
    SAMPLE_SUFFIXES,
    is_id,
    is_rank_dir,
    is_shard,
    is_temporary,
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


def _remove(path: Path) -> None:
    if path.is_dir():
        shutil.rmtree(path)
    else:
        path.unlink(missing_ok=True)


def clean_leftovers(output: Path) -> int:
    """Remove a killed run's leftovers: temporaries, and metadata or sidecars whose latent is missing."""
    removed = 0
    for folder in rank_dirs(output):
        listing = list_folder(folder, folder.name)
        leftovers = list(listing.temporaries)
        for record in listing.records:
            if not is_id(record.key) or record.is_latent():
                continue
            # A sample whose commit did not finish: metadata or sidecar without the .npy (or the reverse).
            leftovers.extend(Path(record.parts[s].path) for s in SAMPLE_SUFFIXES if s in record.parts)
        for path in leftovers:
            _remove(path)
        removed += len(leftovers)
    for name in os.listdir(output) if output.exists() else []:
        if is_temporary(name):
            (output / name).unlink(missing_ok=True)
            removed += 1
    if removed:
        log.info("Removed %d leftover file(s) of an interrupted run in %s.", removed, output)
    return removed


def remove_output(output: Path) -> None:
    """Delete what an earlier run wrote (only our own files: rank folders, details, manifest, logs)."""
    for folder in rank_dirs(output):
        shutil.rmtree(folder)
    for name in ROOT_FILES:
        (output / name).unlink(missing_ok=True)
