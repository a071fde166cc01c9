"""Records of inputs that were not encoded, and why.

The encode engine writes them to ``failures.jsonl``; nothing is dropped without one.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from typing import Any

#: Stages at which an input can fail.
STAGES = ("scan", "decode", "metadata", "custom_metadata", "encode")


@dataclass(frozen=True)
class Failure:
    """An input that could not be used.

    Args:
        path: the file, or ``shard#member`` for a WebDataset sample.
        stage: where it failed, one of :data:`STAGES`.
        reason: one sentence saying what is wrong.
        index: the item's index in the plan (None for inputs that failed before getting one).
        dataset_id: the ``id`` of its dataset entry.
    """

    path: str
    stage: str
    reason: str
    index: int | None = None
    dataset_id: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"kind": "failure", **asdict(self)}

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), ensure_ascii=False)


@dataclass(frozen=True)
class Rejection:
    """An input that loaded fine but was skipped on purpose (custom ``__reject__`` or silence)."""

    path: str
    reason: str
    index: int
    dataset_id: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"kind": "rejection", **asdict(self)}

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), ensure_ascii=False)
