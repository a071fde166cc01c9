"""Where a dataset config's inputs are: each entry's local folder (resolved) or S3 prefix.

Folders are scanned recursively, so two entries that name the same folder, or one folder inside
another, would give the same files twice, under two ids (and possibly two dataset ids and custom
metadata modules). Such configs are refused with the paths, rather than deduplicated: which entry
should keep a file is the user's choice, and silently dropping one would change the ids of
everything after it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..errors import DatasetError
from .config import DatasetConfig


@dataclass(frozen=True)
class InputRoot:
    """One entry's inputs.

    Attributes:
        where: the config's name for it, e.g. ``datasets[1].path``.
        given: the path or URL as written in the config.
        local: the folder, absolute with symlinks resolved (None for S3).
        s3: the ``s3://bucket/prefix`` without a trailing slash (None for a local folder).
    """

    where: str
    given: str
    local: Path | None = None
    s3: str | None = None

    def contains(self, other: InputRoot) -> bool:
        """Whether every input of ``other`` is also an input of this root (equal, or inside it)."""
        if self.local is not None and other.local is not None:
            return self.local == other.local or self.local in other.local.parents
        if self.s3 is not None and other.s3 is not None:
            return other.s3 == self.s3 or other.s3.startswith(self.s3 + "/")
        return False


def input_roots(config: DatasetConfig) -> list[InputRoot]:
    """The local folders and S3 prefixes of ``config``'s entries, in config order."""
    roots = []
    for i, entry in enumerate(config.datasets):
        if entry.s3_path:
            roots.append(InputRoot(f"datasets[{i}].s3_path", entry.s3_path, s3=entry.s3_path.rstrip("/")))
        elif entry.path:
            roots.append(InputRoot(f"datasets[{i}].path", entry.path, local=Path(entry.path).expanduser().resolve()))
    return roots


def check_distinct_inputs(config: DatasetConfig) -> None:
    """Refuse entries whose inputs overlap (the same folder, or one inside another).

    Raises:
        DatasetError: listing every overlapping pair with both paths.
    """
    roots = input_roots(config)
    problems = []
    for i, a in enumerate(roots):
        for b in roots[i + 1:]:
            if a.contains(b) and b.contains(a):
                problems.append(f"{a.where} ({a.given}) and {b.where} ({b.given}) are the same folder")
            elif a.contains(b) or b.contains(a):
                outer, inner = (a, b) if a.contains(b) else (b, a)
                problems.append(f"{inner.where} ({inner.given}) is inside {outer.where} ({outer.given})")
    if problems:
        raise DatasetError(f"Dataset entries overlap: {'; '.join(problems)}. Folders are scanned recursively, so "
                           "their files would be encoded twice, under two ids.",
                           "Keep one entry per folder (list sibling folders instead of a folder and its parent).")
