"""Input items: one audio file, or one sample (audio member + optional .json) of a tar shard."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ...store.names import format_id


@dataclass(frozen=True)
class Fingerprint:
    """What resume compares to recognise an unchanged input: size and mtime, or an S3 ETag."""

    size: int | None = None
    mtime_ns: int | None = None
    etag: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {k: v for k, v in (("size", self.size), ("mtime_ns", self.mtime_ns), ("etag", self.etag))
                if v is not None}


@dataclass(frozen=True)
class TarMember:
    """Where a WebDataset sample's members lie in its shard (byte offsets of the member data)."""

    shard: str
    key: str
    name: str
    offset: int
    size: int
    json_name: str | None = None
    json_offset: int | None = None
    json_size: int | None = None


@dataclass(frozen=True)
class Item:
    """One input to pre-encode.

    Args:
        index: position in the plan (sorted, datasets in config order); the output id.
        dataset_id: ``id`` of the dataset entry.
        path: the file, or ``shard#member`` for a WebDataset sample.
        relpath: path relative to the dataset root (``shard relpath/member`` for WebDataset).
        fingerprint: of the file, or of the shard for WebDataset samples.
        member: the tar member, for WebDataset samples.
        custom_metadata_module: the dataset's module path, if any.
        profile: AWS profile for S3 shards.
    """

    index: int
    dataset_id: str
    path: str
    relpath: str
    fingerprint: Fingerprint
    member: TarMember | None = None
    custom_metadata_module: str | None = None
    profile: str | None = None

    @property
    def id(self) -> str:
        """The 13-digit output id."""
        return format_id(self.index)

    def input_fingerprint(self) -> dict[str, Any]:
        """Fingerprint for resume, with the member's name, offset and size for tar samples."""
        fp = self.fingerprint.to_dict()
        if self.member is not None:
            fp.update(member=self.member.name, member_offset=self.member.offset, member_size=self.member.size)
        return fp
