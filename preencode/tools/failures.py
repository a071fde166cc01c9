"""Reading ``failures.jsonl`` / ``rejected.jsonl`` and grouping failures by stage and kind of reason.

Reasons usually embed a path or numbers (``could not decode /a/b.mp3: 12 bytes``); grouping uses a
normalised reason where the failed path, quoted text, other paths and numbers are replaced by
placeholders, so that one cause shows as one line with a count and an example.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..store.logs import read_jsonl
from ..store.names import FAILURES, REJECTED
from ..store.objects import ObjectPath, store_path

_QUOTED = re.compile(r"'[^']*'|\"[^\"]*\"")
_PATH = re.compile(r"(?:[A-Za-z]:)?(?:[\w.~-]*[/\\])+[\w.~-]+")
_NUMBER = re.compile(r"\b\d+(?:\.\d+)?(?:e[-+]?\d+)?\b")
_SPACE = re.compile(r"\s+")


def normalise_reason(reason: str, path: str | None = None) -> str:
    """A reason with its variable parts replaced: the failed path -> ``<path>``, quotes -> ``'…'``,
    other paths -> ``<path>``, numbers -> ``<n>``."""
    text = reason.replace(path, "<path>") if path else reason
    text = _QUOTED.sub("'…'", text)
    text = _PATH.sub("<path>", text)
    text = _NUMBER.sub("<n>", text)
    return _SPACE.sub(" ", text).strip()


@dataclass
class FailureGroup:
    """Failures sharing a stage and a normalised reason."""

    stage: str
    reason: str
    count: int = 0
    example: str = ""

    def as_dict(self) -> dict[str, Any]:
        return {"stage": self.stage, "reason": self.reason, "count": self.count, "example": self.example}


@dataclass
class FailureLog:
    """The contents of ``failures.jsonl`` and ``rejected.jsonl``.

    Attributes:
        failures: number of failure lines (parseable or not).
        groups: failures grouped, largest group first.
        rejected: number of rejected inputs.
        bad_lines: ``path:line: what is wrong`` for lines that are not JSON objects.
    """

    failures: int = 0
    groups: list[FailureGroup] = field(default_factory=list)
    rejected: int = 0
    bad_lines: list[str] = field(default_factory=list)


def read_failure_log(root: str | Path | ObjectPath) -> FailureLog:
    """Read and group the failure and rejection logs of an output tree (a folder or an S3 prefix)."""
    root = store_path(root)
    log = FailureLog()
    groups: dict[tuple[str, str], FailureGroup] = {}
    for item in read_jsonl(root / FAILURES, log.bad_lines):
        log.failures += 1
        path = item.get("path") if isinstance(item.get("path"), str) else None
        stage = str(item.get("stage", "unknown"))
        reason = normalise_reason(str(item.get("reason", "no reason given")), path)
        key = (stage, reason)
        group = groups.setdefault(key, FailureGroup(stage=stage, reason=reason, example=path or ""))
        group.count += 1
    log.groups = sorted(groups.values(), key=lambda g: -g.count)
    log.rejected = len(read_jsonl(root / REJECTED, log.bad_lines))
    return log
