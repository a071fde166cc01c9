"""Per-sample metadata: the ``<id>.json`` stored beside each latent.

stable-audio-tools writes ``path``, ``relpath``, ``timestamps``, ``seconds_start``, ``seconds_total``,
``padding_mask`` (one 0/1 value per latent frame), ``sample_rate`` and ``load_time``. We write the same
fields (no ``load_time``) plus ``dataset_id`` and ``input_fingerprint``, ``shard``/``key`` for samples
read from WebDataset shards, ``prompt`` (copied from a shard's ``text``), ``phase_inverted`` with
``--phase-flip``, and whatever a custom metadata module returns.

:class:`LatentMeta` gives the known fields types and keeps everything else; it writes the fields back
in the order they came in, so reading and writing a file reproduces it byte for byte.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from dataclasses import dataclass, field, fields
from typing import Any

import numpy as np


def json_safe(value: Any) -> Any:
    """Convert numpy/torch values to plain JSON types (NaN/Inf become None)."""
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    if hasattr(value, "detach"):  # torch tensor
        value = value.detach().cpu().numpy()
    if isinstance(value, np.ndarray):
        return json_safe(value.tolist())
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    return str(value)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _is_pair(value: Any) -> bool:
    return isinstance(value, list) and len(value) == 2 and all(_is_number(v) for v in value)


_CHECKS = {
    "path": lambda v: isinstance(v, str), "relpath": lambda v: isinstance(v, str), "timestamps": _is_pair,
    "seconds_start": _is_number, "seconds_total": _is_number, "padding_mask": lambda v: isinstance(v, list),
    "sample_rate": lambda v: isinstance(v, int) and not isinstance(v, bool), "load_time": _is_number,
    "dataset_id": lambda v: isinstance(v, str),
    "input_fingerprint": lambda v: isinstance(v, dict), "shard": lambda v: isinstance(v, str),
    "key": lambda v: isinstance(v, str), "prompt": lambda v: isinstance(v, str),
    "phase_inverted": lambda v: isinstance(v, bool),
}


@dataclass
class LatentMeta:
    """The metadata of one stored latent.

    A known field holds a value of its type or ``None`` (absent, ``null``, or of another type: such a value
    is kept in ``extra`` under its name, so nothing is lost). ``extra`` holds every other field (custom
    metadata, a WebDataset sample's own ``.json`` fields, fields of other tools).

    Attributes:
        padding_mask: one 0/1 value per latent frame ``[N]`` (use :meth:`mask` for a checked array).
        timestamps: ``[start, end]`` of the window as fractions of the file.
        input_fingerprint: what resume compares (size and mtime, or an ETag; member offsets in a shard).
    """

    path: str | None = None
    relpath: str | None = None
    timestamps: list[float] | None = None
    seconds_start: float | None = None
    seconds_total: float | None = None
    padding_mask: list[int] | None = None
    sample_rate: int | None = None
    load_time: float | None = None
    dataset_id: str | None = None
    input_fingerprint: dict[str, Any] | None = None
    shard: str | None = None
    key: str | None = None
    prompt: str | None = None
    phase_inverted: bool | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    order: list[str] = field(default_factory=list, repr=False, compare=False)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> LatentMeta:
        """Fields from a parsed ``<id>.json`` (or any JSON-ready dict); the key order is remembered."""
        known: dict[str, Any] = {}
        extra: dict[str, Any] = {}
        for name, value in data.items():
            check = _CHECKS.get(name)
            if check is not None and check(value):
                known[name] = value
            else:
                extra[name] = value
        return cls(**known, extra=extra, order=list(data))

    def _known(self) -> Iterator[tuple[str, Any]]:
        for f in fields(self):
            if f.name in _CHECKS:
                yield f.name, getattr(self, f.name)

    def to_dict(self) -> dict[str, Any]:
        """The JSON object: fields in the order they were read, then fields set since (known ones first)."""
        values = {name: value for name, value in self._known() if value is not None or name in self.order}
        out: dict[str, Any] = {}
        for name in self.order:
            if values.get(name) is not None or (name in values and name not in self.extra):
                out[name] = values[name]
            elif name in self.extra:
                out[name] = self.extra[name]
        for name, value in (*values.items(), *self.extra.items()):
            out.setdefault(name, value)
        return out

    def to_json(self) -> bytes:
        """The bytes of ``<id>.json``."""
        return json.dumps(self.to_dict(), ensure_ascii=False).encode("utf-8")

    def __contains__(self, name: str) -> bool:
        return name in self.to_dict()

    def get(self, name: str, default: Any = None) -> Any:
        """Any field by name, known or extra (``default`` when absent)."""
        return self.to_dict().get(name, default)

    def mask(self, frames: int) -> np.ndarray | None:
        """``padding_mask`` as booleans ``[frames]``; ``None`` when absent, of another length, or not 0/1."""
        mask = self.padding_mask
        if mask is None or len(mask) != frames:
            return None
        values = np.asarray(mask)
        if values.ndim != 1 or values.dtype.kind not in "iuf" or not np.isin(values, (0, 1)).all():
            return None
        return values.astype(bool)
