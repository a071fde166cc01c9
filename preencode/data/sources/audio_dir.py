"""Recursive, sorted scan of a local folder for audio files (or tar shards).

Symlinked folders are followed; a link back to a folder being scanned (a loop) and a second link
to a folder already scanned are not entered twice. Entries that cannot be read are reported as
:class:`Failure` records instead of being skipped in silence. Hidden files (names starting with
``.``) are skipped, as in the reference.
"""

from __future__ import annotations

import errno
import logging
import os
from collections.abc import Iterable
from dataclasses import dataclass

from ..failures import Failure
from .items import Fingerprint

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class FoundFile:
    path: str
    relpath: str
    fingerprint: Fingerprint


def scan_folder(root: str, extensions: Iterable[str], dataset_id: str | None = None
                ) -> tuple[list[FoundFile], list[Failure]]:
    """Files under ``root`` whose extension (case-insensitive) is in ``extensions``.

    Returns:
        ``(files, failures)``, files sorted by their relative path's components.
    """
    exts = {"." + e.lower().lstrip(".") for e in extensions}
    found: list[FoundFile] = []
    failures: list[Failure] = []
    visited: dict[tuple[int, int], str] = {}

    def fail(path: str, reason: str) -> None:
        failures.append(Failure(path, "scan", reason, dataset_id=dataset_id))

    def walk(folder: str, ancestors: frozenset[tuple[int, int]]) -> None:
        try:
            with os.scandir(folder) as it:
                entries = sorted(it, key=lambda e: e.name)
        except OSError as err:
            fail(folder, f"folder cannot be read ({err.strerror or err}); files in it were not scanned")
            return
        for entry in entries:
            _visit(entry, ancestors)

    def _visit(entry: os.DirEntry, ancestors: frozenset[tuple[int, int]]) -> None:
        path = entry.path
        ext = os.path.splitext(entry.name)[1].lower()
        try:
            st = os.stat(path)  # follows symlinks
        except OSError as err:
            if err.errno == errno.ELOOP:
                fail(path, "symlink loop (the link points back to itself); skipped")
            elif ext in exts:
                fail(path, f"cannot be read ({err.strerror or err}), e.g. a broken symlink")
            return
        if entry.is_dir(follow_symlinks=True):
            ident = (st.st_dev, st.st_ino)
            if ident in ancestors:
                fail(path, "symlink loop (the link points to a folder that contains it); not entered")
            elif ident in visited:
                log.warning("Not scanning %s again: it is the folder %s, already scanned", path, visited[ident])
            else:
                visited[ident] = path
                walk(path, ancestors | {ident})
            return
        if entry.name.startswith(".") or ext not in exts:
            return
        if not entry.is_file(follow_symlinks=True):
            fail(path, "not a regular file (a device, pipe or socket)")
            return
        found.append(FoundFile(path, os.path.relpath(path, root), Fingerprint(st.st_size, st.st_mtime_ns)))

    root_stat = os.stat(root)
    visited[(root_stat.st_dev, root_stat.st_ino)] = root
    walk(root, frozenset({(root_stat.st_dev, root_stat.st_ino)}))
    found.sort(key=lambda f: f.relpath.split(os.sep))
    return found, failures
