"""The JSON-lines files at the root of an output tree: the manifest, the failure and rejection logs.

``manifest.jsonl`` lists the inputs the ids refer to, one JSON object per line (keys sorted; its entries are
typed in :mod:`preencode.store.manifest`); it is written when the output is created and rewritten by an
``--update`` that changes it, before anything is encoded. ``failures.jsonl`` and
``rejected.jsonl`` hold one record per input that was not encoded; they are rewritten whole at the end of
each run. Every write is atomic; each works on a local tree and on one in S3 (objects written whole).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from typing import Any

from .atomic import atomic_write
from .names import MANIFEST
from .objects import ObjectPath, StorePath


def manifest_line(id_: str, path: str, fingerprint: dict[str, Any]) -> str:
    """One input's manifest line (without the newline)."""
    return json.dumps({"id": id_, "path": path, "fingerprint": fingerprint}, sort_keys=True)


def write_manifest(output: StorePath, lines: list[str]) -> None:
    atomic_write(output / MANIFEST, "\n".join(lines) + "\n")


def read_manifest(output: StorePath) -> list[str] | None:
    """The manifest's lines, ``None`` when there is none."""
    path = output / MANIFEST
    if not path.exists():
        return None
    return path.read_text(encoding="utf-8").splitlines()


def write_jsonl(path: StorePath, records: Iterable[dict[str, Any]]) -> None:
    """Replace ``path`` with one JSON object per line."""
    atomic_write(path, "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records))


def _lines(path: StorePath) -> Iterator[str]:
    if isinstance(path, ObjectPath):
        yield from path.read_text(errors="replace").splitlines()
        return
    with open(path, encoding="utf-8", errors="replace") as f:
        yield from f


def read_jsonl(path: StorePath, problems: list[str]) -> list[dict[str, Any]]:
    """The objects of a JSON-lines file (none when it is missing).

    A line that is not a JSON object is noted in ``problems`` (``path:line: what is wrong``) and read as an
    empty object, so that counts include it; blank lines are skipped.
    """
    if not path.is_file():
        return []
    out: list[dict[str, Any]] = []
    for number, line in enumerate(_lines(path), start=1):
        if not line.strip():
            continue
        try:
            item = json.loads(line)
        except json.JSONDecodeError as err:
            problems.append(f"{path}:{number}: not valid JSON ({err.msg})")
            item = {}
        if not isinstance(item, dict):
            problems.append(f"{path}:{number}: expected a JSON object")
            item = {}
        out.append(item)
    return out
