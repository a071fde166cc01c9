"""Reading ``failures.jsonl`` / ``rejected.jsonl`` and grouping failures by stage and kind of reason.

Reasons usually embed a path or numbers (``could not decode /a/b.mp3: 12 bytes``); grouping uses a
normalised reason where the failed path, quoted text, other paths and numbers are replaced by
placeholders, so that one cause shows as one line with a count and an example.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

FAILURES_NAME = "failures.jsonl"
REJECTED_NAME = "rejected.jsonl"

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


def _objects(path: Path, bad_lines: list[str]) -> list[dict[str, Any]]:
    """The JSON objects of a JSON-lines file (a missing file has none); malformed lines are noted."""
    if not path.is_file():
        return []
    out: list[dict[str, Any]] = []
    with open(path, encoding="utf-8", errors="replace") as f:
        for number, line in enumerate(f, start=1):
            if not line.strip():
                continue
            try:
                item = json.loads(line)
            except json.JSONDecodeError as err:
                bad_lines.append(f"{path}:{number}: not valid JSON ({err.msg})")
                item = {}
            if not isinstance(item, dict):
                bad_lines.append(f"{path}:{number}: expected a JSON object")
                item = {}
            out.append(item)
    return out


def read_failure_log(root: str | Path) -> FailureLog:
    """Read and group the failure and rejection logs of an output tree."""
    root = Path(root)
    log = FailureLog()
    groups: dict[tuple[str, str], FailureGroup] = {}
    for item in _objects(root / FAILURES_NAME, log.bad_lines):
        log.failures += 1
        path = item.get("path") if isinstance(item.get("path"), str) else None
        stage = str(item.get("stage", "unknown"))
        reason = normalise_reason(str(item.get("reason", "no reason given")), path)
        key = (stage, reason)
        group = groups.setdefault(key, FailureGroup(stage=stage, reason=reason, example=path or ""))
        group.count += 1
    log.groups = sorted(groups.values(), key=lambda g: -g.count)
    log.rejected = len(_objects(root / REJECTED_NAME, log.bad_lines))
    return log
