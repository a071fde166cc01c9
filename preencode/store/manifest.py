"""The manifest as typed entries: which input each id stands for, and which stored copies are current.

``manifest.jsonl`` holds one JSON object per id (keys sorted), sorted by id::

    {"fingerprint": {...}, "id": "0000000000003", "path": "/data/a.wav", "run": 1}
    {"fingerprint": {...}, "id": "0000000000011", "path": "/data/b.wav", "run": 2, "vanished": 3}
    {"fingerprint": {...}, "id": "0000000000012", "path": "/data/c.wav", "pruned": 4, "run": 2}

``run`` is the number of the run (its position in ``details.json``'s ``runs``, from 1) that added the input or
last saw it change; manifests written before runs were recorded have none (read as run 1). ``vanished``: the
input was gone in that run and its latent is kept (still valid data); ``pruned``: the input was gone and its
files were removed by that run (``--prune``); such an entry stays so that its id is never given again.

The manifest is the truth for coverage: a stored copy of id ``X`` is *current* when ``X``'s entry is not pruned
and the copy's metadata records the entry's input fingerprint (copies written before the metadata held one count
as current). Any other copy is *superseded*: left by an ``--update`` that re-encoded a changed input (until the
run removes it) or by an interrupted prune; every reader of the output skips it (:func:`superseded_why`).
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, replace
from typing import Any

from ..errors import UserError
from .logs import read_manifest, write_manifest
from .meta import LatentMeta
from .names import ID_DIGITS, MANIFEST, format_id, is_id
from .objects import StorePath

log = logging.getLogger(__name__)

@dataclass(frozen=True)
class ManifestEntry:
    """One id of the manifest.

    Attributes:
        id: the output id (the ``<id>`` of the files).
        path: the input (a file, or ``shard#member``).
        fingerprint: the input's fingerprint when it was encoded (what the stored latent's metadata records).
        run: the run that added the input or last saw it change (1 for the first run).
        vanished: the run that found the input gone (its latent is kept), else None.
        pruned: the run that removed the files of the gone input, else None.
    """

    id: int
    path: str
    fingerprint: dict[str, Any]
    run: int = 1
    vanished: int | None = None
    pruned: int | None = None

    @property
    def present(self) -> bool:
        """Whether the input was there in the last run."""
        return self.vanished is None and self.pruned is None

    def to_line(self) -> str:
        data: dict[str, Any] = {"id": format_id(self.id), "path": self.path, "fingerprint": self.fingerprint,
                                "run": self.run}
        if self.vanished is not None:
            data["vanished"] = self.vanished
        if self.pruned is not None:
            data["pruned"] = self.pruned
        return json.dumps(data, sort_keys=True)

    def same_input(self, other: ManifestEntry) -> bool:
        """Equal but for ``run``: the same id, input, fingerprint and state."""
        return replace(self, run=other.run) == other


def _positive(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 1


def parse_entry(data: Any) -> ManifestEntry:
    """One manifest line's object. Raises ValueError saying what is wrong."""
    if not isinstance(data, dict):
        raise ValueError("expected a JSON object")
    id_ = data.get("id")
    if not isinstance(id_, str) or not is_id(id_):
        raise ValueError(f"'id' must be a {ID_DIGITS}-digit string, got {id_!r}")
    if not isinstance(data.get("path"), str) or not isinstance(data.get("fingerprint"), dict):
        raise ValueError("'path' (a string) and 'fingerprint' (an object) are required")
    for key in ("run", "vanished", "pruned"):
        if key in data and not _positive(data[key]):
            raise ValueError(f"{key!r} must be a run number >= 1, got {data[key]!r}")
    return ManifestEntry(int(id_), data["path"], data["fingerprint"], data.get("run", 1), data.get("vanished"),
                         data.get("pruned"))


def read_entries(output: StorePath) -> list[ManifestEntry] | None:
    """The manifest's entries in file order, ``None`` when there is none.

    Raises:
        UserError: a line is not a valid entry, or an id is listed twice.
    """
    lines = read_manifest(output)
    if lines is None:
        return None
    entries: list[ManifestEntry] = []
    seen: set[int] = set()
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            entry = parse_entry(json.loads(line))
            if entry.id in seen:
                raise ValueError(f"id {format_id(entry.id)} is listed twice")
        except ValueError as err:  # json.JSONDecodeError is a ValueError
            raise UserError(f"{output / MANIFEST}:{number}: {err}; the manifest is damaged.",
                            "Restore it from a backup, or re-encode into a new --output-path.") from err
        seen.add(entry.id)
        entries.append(entry)
    return entries


def write_entries(output: StorePath, entries: list[ManifestEntry]) -> None:
    """Replace the manifest (atomically) with ``entries``, sorted by id."""
    write_manifest(output, [e.to_line() for e in sorted(entries, key=lambda e: e.id)])


def superseded_why(entry: ManifestEntry | None, meta: LatentMeta) -> str | None:
    """Why a stored copy whose id has manifest ``entry`` (None: not in the manifest) and metadata ``meta`` is not
    current, or None when it is (see the module's docstring). An id missing from the manifest is not judged here
    (``verify`` reports it)."""
    if entry is None:
        return None
    if entry.pruned is not None:
        return f"its input {entry.path} is gone and was pruned in run {entry.pruned}"
    stored = meta.input_fingerprint
    if stored is not None and stored != entry.fingerprint:
        return f"its input {entry.path} changed (run {entry.run} encodes it again under the same id)"
    return None


class ManifestView:
    """The manifest of an output read once, to tell current copies from superseded ones (readers use it)."""

    def __init__(self, entries: list[ManifestEntry]) -> None:
        self.entries = {e.id: e for e in entries}

    @classmethod
    def of(cls, root: StorePath) -> ManifestView | None:
        """The view of ``root``'s manifest (None when it has none). Raises UserError for a damaged one."""
        entries = read_entries(root)
        return None if entries is None else cls(entries)

    def entry(self, key: str) -> ManifestEntry | None:
        return self.entries.get(int(key)) if is_id(key) else None

    def why_superseded(self, key: str, meta: LatentMeta) -> str | None:
        """:func:`superseded_why` for the copy of id ``key``."""
        return superseded_why(self.entry(key), meta)


def reader_view(root: StorePath) -> ManifestView | None:
    """The manifest view of a training root (None when it has none; a damaged one is logged and ignored, so
    that training reads what is there)."""
    try:
        return ManifestView.of(root)
    except UserError as err:
        log.warning("%s Reading every stored copy of %s.", err.message, root)
        return None
