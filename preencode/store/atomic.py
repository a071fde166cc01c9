"""Crash-safe writes: a file appears under its name complete, or not at all.

Every file of the output (and the training index cache) is written the same way: to a temporary name in
the same folder (:func:`preencode.store.names.temp_name`), flushed and fsynced, renamed into place,
then the folder is fsynced so that the rename itself survives a power cut. A failure while writing
removes the temporary and leaves any earlier file of that name untouched.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterable, Sequence
from pathlib import Path
from types import TracebackType
from typing import BinaryIO, Self

from .names import temp_name
from .objects import ObjectPath, StorePath


def fsync_dir(folder: Path) -> None:
    """Make the renames in ``folder`` durable (a no-op where folders cannot be opened, e.g. Windows)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class AtomicFile:
    """A file written under a temporary name, renamed to ``path`` by :meth:`commit`.

    As a context manager it commits on success and discards the temporary on an exception.

    Args:
        path: the final name.

    Attributes:
        file: the open temporary, for writers that stream into it (e.g. ``tarfile``).
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self.tmp = path.with_name(temp_name(path.name))
        self.file: BinaryIO = open(self.tmp, "wb")  # noqa: SIM115 - stays open until finish() or discard()
        self.done = False

    def write(self, data: bytes) -> int:
        return self.file.write(data)

    def finish(self) -> None:
        """Flush, fsync and close the temporary (still under its temporary name)."""
        if not self.file.closed:
            self.file.flush()
            os.fsync(self.file.fileno())
            self.file.close()

    def commit(self, sync_dir: bool = True) -> None:
        """Finish the temporary and rename it to ``path``; ``sync_dir`` then fsyncs the folder. On a failure
        the temporary is removed."""
        try:
            self.finish()
            os.replace(self.tmp, self.path)
        except BaseException:
            self.discard()
            raise
        self.done = True
        if sync_dir:
            fsync_dir(self.path.parent)

    def discard(self) -> None:
        """Close and remove the temporary (the final name is not touched)."""
        if not self.done:
            # A full disk can fail the flush of what was buffered: the temporary goes anyway.
            with contextlib.suppress(OSError):
                self.file.close()
            self.tmp.unlink(missing_ok=True)
            self.done = True

    def __enter__(self) -> Self:
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 traceback: TracebackType | None) -> None:
        if kind is None:
            self.commit()
        else:
            self.discard()


def commit_in_order(files: Sequence[AtomicFile]) -> None:
    """Rename finished files into place in the given order, then fsync each folder once.

    Every file is complete on disk before the first rename, so the last one renamed can serve as the
    commit marker of the group (the ``.npy`` of a sample). On an error the files not yet renamed are
    discarded.
    """
    try:
        for f in files:
            f.finish()
        for f in files:
            f.commit(sync_dir=False)
    except BaseException:
        for f in files:
            f.discard()
        raise
    for folder in dict.fromkeys(f.path.parent for f in files):
        fsync_dir(folder)


def atomic_write(path: StorePath, payload: bytes | str | Iterable[bytes]) -> None:
    """Write ``payload`` to ``path`` atomically (temporary name, fsync, rename, fsync of the folder; on S3 the
    object is written whole with one PUT, which is atomic there).

    Args:
        path: the final name; an existing file is replaced only once the new one is complete.
        payload: bytes, text (written as UTF-8), or an iterable of byte chunks (streamed; an exception
            raised while iterating leaves the old file intact and no temporary behind).
    """
    if isinstance(payload, str):
        payload = payload.encode("utf-8")
    chunks: Iterable[bytes] = (payload,) if isinstance(payload, bytes) else payload
    if isinstance(path, ObjectPath):
        path.write_bytes(b"".join(chunks))
        return
    with AtomicFile(path) as f:
        for chunk in chunks:
            f.write(chunk)
