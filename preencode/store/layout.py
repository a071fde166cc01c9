"""The output tree: ``<out>/<rank>/<13-digit id>.npy`` + ``.json`` (the .npy renamed into place last, as the
commit marker) or ``<out>/<rank>/shard-<first id>.tar`` shards holding the same members (renamed into place
when complete), ``details.json``, ``manifest.jsonl`` and ``failures.jsonl``; what is done; cleaning leftovers."""

from __future__ import annotations

import logging
import os
import shutil
import tarfile
from collections.abc import Iterator
from pathlib import Path

from ..errors import UserError

log = logging.getLogger(__name__)

ID_DIGITS = 13
MANIFEST = "manifest.jsonl"
FAILURES = "failures.jsonl"
REJECTED = "rejected.jsonl"
SHARD_PREFIX = "shard-"  # --output-format wds: <rank>/shard-<first id>.tar
SHARD_SUFFIX = ".tar"


def format_id(index: int) -> str:
    """The file name stem of input ``index``: its position in the sorted input list, 13 digits."""
    if not 0 <= index < 10**ID_DIGITS:
        raise ValueError(f"index {index} does not fit in {ID_DIGITS} digits")
    return f"{index:0{ID_DIGITS}d}"


def is_id(stem: str) -> bool:
    return len(stem) == ID_DIGITS and stem.isdigit()


def rank_dirs(output: Path) -> list[Path]:
    if not output.exists():
        return []
    return sorted((p for p in output.iterdir() if p.is_dir() and p.name.isdigit()), key=lambda p: int(p.name))


def is_temporary(name: str) -> bool:
    return name.startswith(".") or name.endswith(".tmp")


def iter_files(output: Path) -> Iterator[os.DirEntry]:
    for folder in rank_dirs(output):
        with os.scandir(folder) as entries:
            yield from entries


def done_indices(output: Path) -> set[int]:
    """Inputs whose ``<id>.npy`` (the commit marker) and ``<id>.json`` both exist, loose or inside a
    committed shard."""
    done: set[int] = set()
    for folder in rank_dirs(output):
        names = set(os.listdir(folder))
        for name in names:
            stem, ext = os.path.splitext(name)
            if ext == ".json" and is_id(stem) and f"{stem}.npy" in names:
                done.add(int(stem))
            elif is_shard(name):
                done |= shard_ids(folder / name)
    return done


def is_shard(name: str) -> bool:
    """A committed shard's file name (temporaries start with a dot)."""
    return name.startswith(SHARD_PREFIX) and name.endswith(SHARD_SUFFIX)


def shard_ids(path: Path) -> set[int]:
    """Ids of the samples complete in a committed shard (both ``.npy`` and ``.json`` members).

    Raises:
        UserError: the shard cannot be read (it was damaged after it was committed).
    """
    suffixes: dict[str, set[str]] = {}
    try:
        with tarfile.open(path, mode="r:") as tar:
            for member in tar:
                key, _, suffix = member.name.partition(".")
                suffixes.setdefault(key, set()).add(suffix)
    except (OSError, tarfile.TarError, EOFError) as err:
        raise UserError(f"The committed shard {path} cannot be read ({err}).",
                        "Delete it and re-run the same command: its samples are encoded again.") from err
    return {int(key) for key, got in suffixes.items() if is_id(key) and {"npy", "json"} <= got}


def clean_leftovers(output: Path) -> int:
    """Remove a killed run's leftovers: temporaries, and metadata or sidecars whose latent is missing."""
    removed = 0
    for folder in rank_dirs(output):
        names = set(os.listdir(folder))
        for name in names:
            stem, ext = os.path.splitext(name)
            orphan = ((ext == ".npy" and is_id(stem) and f"{stem}.json" not in names)
                      or (ext == ".json" and is_id(stem) and f"{stem}.npy" not in names))
            sidecar = name.endswith(".std.npz") and f"{name[:-len('.std.npz')]}.npy" not in names
            if is_temporary(name) or orphan or sidecar:
                path = folder / name
                if path.is_dir():
                    shutil.rmtree(path)
                else:
                    path.unlink(missing_ok=True)
                removed += 1
    for name in os.listdir(output) if output.exists() else []:
        if is_temporary(name):
            (output / name).unlink(missing_ok=True)
            removed += 1
    if removed:
        log.info("Removed %d leftover file(s) of an interrupted run in %s.", removed, output)
    return removed


def remove_output(output: Path) -> None:
    """Delete what an earlier run wrote (only our own files: rank folders, details, manifest, failures)."""
    for folder in rank_dirs(output):
        shutil.rmtree(folder)
    for name in ("details.json", MANIFEST, FAILURES, REJECTED):
        (output / name).unlink(missing_ok=True)
